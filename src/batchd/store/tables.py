"""Every table of batchd as SQLAlchemy Core `metadata`; the migrations create exactly these.

Portability rules (SQLite and PostgreSQL run the same statements):

- Times are `BIGINT` epoch milliseconds, UTC. SQLite has no time zone-aware timestamp type, and
  the EnOS API speaks epoch ms on input anyway; formatting to the API's strings happens at the edge.
- JSON documents (`definition`) are `TEXT` holding JSON: the API transports them as text, and
  neither database needs to look inside.
- Ids the API exposes as numbers (`flow_id`, `task_id`) come from `id_counters` (see `store.ids`),
  not from autoincrement, so an import can ask for a given id and the counter can skip past it.
- Foreign keys are enforced on SQLite too (`PRAGMA foreign_keys=ON` on every connection).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = sa.String(64)
NAME = sa.String(255)
EPOCH_MS = sa.BigInteger

# --- identity: organisations (EnOS OUs), their users and service accounts --------------------

orgs = sa.Table(
    "orgs",
    metadata,
    sa.Column("org_id", ID, primary_key=True),
    sa.Column("name", NAME, nullable=False),
    sa.Column("created_at", EPOCH_MS, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("org_id", ID, sa.ForeignKey("orgs.org_id"), nullable=False, index=True),
    sa.Column("name", NAME, nullable=False),
    sa.Column("locked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", EPOCH_MS, nullable=False),
)

# The secret is stored as issued: the EnOS signature is a hash keyed by the secret itself, so the
# server must know it to verify a call. Protect the database like a key store.
service_accounts = sa.Table(
    "service_accounts",
    metadata,
    sa.Column("access_key", ID, primary_key=True),
    sa.Column("secret_key", ID, nullable=False),
    sa.Column("org_id", ID, sa.ForeignKey("orgs.org_id"), nullable=False, index=True),
    sa.Column("created_at", EPOCH_MS, nullable=False),
    sa.Column("revoked_at", EPOCH_MS, nullable=True),
)

access_tokens = sa.Table(
    "access_tokens",
    metadata,
    sa.Column("token", ID, primary_key=True),
    sa.Column(
        "access_key",
        ID,
        sa.ForeignKey("service_accounts.access_key", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("expires_at", EPOCH_MS, nullable=False),
)

# Signatures (and token-service encryptions) seen inside the accepted clock window; a second use
# is a replay. Rows older than the window can never match again and are pruned.
used_signatures = sa.Table(
    "used_signatures",
    metadata,
    sa.Column("signature", sa.String(128), primary_key=True),
    sa.Column("seen_at", EPOCH_MS, nullable=False, index=True),
)

# --- catalogue: directories, flows and their versions, dependencies, tasks ------------------

directories = sa.Table(
    "directories",
    metadata,
    sa.Column("dir_id", sa.String(32), primary_key=True),  # 32 lower-case hex chars, like EnOS
    sa.Column("org_id", ID, sa.ForeignKey("orgs.org_id"), nullable=False),
    sa.Column("parent_id", sa.String(32), sa.ForeignKey("directories.dir_id"), nullable=True),
    sa.Column("name", NAME, nullable=False),
    sa.Column("created_at", EPOCH_MS, nullable=False),
    sa.UniqueConstraint("org_id", "parent_id", "name"),
)

flows = sa.Table(
    "flows",
    metadata,
    sa.Column("flow_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("org_id", ID, sa.ForeignKey("orgs.org_id"), nullable=False),
    sa.Column("dir_id", sa.String(32), sa.ForeignKey("directories.dir_id"), nullable=False),
    sa.Column("name", NAME, nullable=False),
    sa.Column("creator", NAME, nullable=False),
    sa.Column("owners", sa.Text, nullable=False),
    sa.Column("visitors", sa.Text, nullable=False),
    sa.Column("type", sa.Integer, nullable=False),
    sa.Column("active", sa.Integer, nullable=False),
    sa.Column("cron", sa.String(255), nullable=False),
    sa.Column("cycle", sa.String(8), nullable=False),
    sa.Column("start_date", sa.String(32), nullable=False),
    sa.Column("entry", sa.Integer, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("create_time", EPOCH_MS, nullable=False),
    sa.Column("update_time", EPOCH_MS, nullable=False),
    sa.Column("update_user", NAME, nullable=False),
    sa.Index(None, "org_id", "name"),
)

flow_versions = sa.Table(
    "flow_versions",
    metadata,
    sa.Column("flow_id", sa.BigInteger, sa.ForeignKey("flows.flow_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("saved_by", NAME, nullable=False),
    sa.Column("saved_at", EPOCH_MS, nullable=False),
)

flow_dependencies = sa.Table(
    "flow_dependencies",
    metadata,
    sa.Column("flow_id", sa.BigInteger, sa.ForeignKey("flows.flow_id", ondelete="CASCADE"), primary_key=True),
    # No cascade upstream: a flow others depend on must not disappear under them (62104).
    sa.Column("upstream_flow_id", sa.BigInteger, sa.ForeignKey("flows.flow_id"), primary_key=True, index=True),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("task_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("flow_id", sa.BigInteger, sa.ForeignKey("flows.flow_id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", NAME, nullable=False),
    sa.UniqueConstraint("flow_id", "name"),
)

id_counters = sa.Table(
    "id_counters",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)
