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
    # Get Flow's answer for the current version, made when the row is written (migration 0009,
    # `catalog.rendering`); NULL where it cannot be stored (flows with references, whose
    # upstream names are looked up on every read) or was not made: Get then reads the document.
    sa.Column("detail", sa.Text, nullable=True),
    sa.Index(None, "org_id", "name"),
    # Everything Search Flow reads (migration 0003): the rows themselves carry the large definition.
    sa.Index("ix_flows_search", "org_id", "name", "flow_id", "update_time", "create_time", "start_date"),
    sa.Index("ix_flows_update_time", "update_time"),  # the scheduler's change poll (migration 0004)
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

# --- engine: flow instances, task instances, attempts (migration 0002; owned by batchd.engine) --

# One run of a workflow. `definition` and `parameters` are snapshots taken at creation, so editing
# the workflow never changes a run already made. Deleting the workflow deletes its instances.
flow_instances = sa.Table(
    "flow_instances",
    metadata,
    sa.Column("instance_id", sa.String(96), primary_key=True),  # {flowId}-{suffix}
    sa.Column("flow_id", sa.BigInteger, sa.ForeignKey("flows.flow_id", ondelete="CASCADE"), nullable=False),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("flow_name", NAME, nullable=False),
    sa.Column("flow_type", sa.Integer, nullable=False),
    sa.Column("creator", NAME, nullable=False),
    sa.Column("owners", sa.Text, nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),  # manual | schedule
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("is_cancelled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("trigger_time", EPOCH_MS, nullable=False),
    sa.Column("cal_dt", sa.String(10), nullable=False),  # yyyy-MM-dd, date(trigger) - 1 day
    sa.Column("start_time", EPOCH_MS, nullable=True),
    sa.Column("end_time", EPOCH_MS, nullable=True),
    sa.Column("created_at", EPOCH_MS, nullable=False),
    sa.Column("updated_at", EPOCH_MS, nullable=False),
    sa.Column("start_task_id", sa.BigInteger, nullable=True),  # Trigger Flow From Task
    sa.Column("definition", sa.Text, nullable=False),  # the flow's stored document at creation
    sa.Column("parameters", sa.Text, nullable=False),  # effective [{"key","value"}] JSON text
    # One workflow's instances, newest first (List Flow Instances), and its newest scheduled
    # fire (the scheduler's start-up); migration 0011 merged the two indexes of 0004 and 0005.
    sa.Index("ix_flow_instances_flow_trigger_origin", "flow_id", "trigger_time", "origin"),
    sa.Index(None, "org_id", "trigger_time"),
    # RUNNING instances oldest first, for claims (migration 0007).
    sa.Index("ix_flow_instances_status_trigger", "status", "trigger_time"),
    # One workflow's instances by start time, started and not (partial, covering: migration 0010).
    sa.Index("ix_flow_instances_flow_started", "flow_id", "start_time", "trigger_time", "instance_id",
             sqlite_where=sa.text("start_time IS NOT NULL"), postgresql_where=sa.text("start_time IS NOT NULL")),
    sa.Index("ix_flow_instances_flow_unstarted", "start_time", "flow_id", "trigger_time", "instance_id",
             sqlite_where=sa.text("start_time IS NULL"), postgresql_where=sa.text("start_time IS NULL")),
)

task_instances = sa.Table(
    "task_instances",
    metadata,
    sa.Column("instance_id", sa.String(96), primary_key=True),  # {taskId}-{suffix}
    sa.Column(
        "flow_instance_id",
        sa.String(96),
        sa.ForeignKey("flow_instances.instance_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("task_id", sa.BigInteger, nullable=False),
    sa.Column("task_name", NAME, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("run_num", sa.Integer, nullable=False, server_default="0"),  # attempts started
    sa.Column("recall_num", sa.Integer, nullable=False, server_default="0"),  # retries consumed
    sa.Column("is_timeout", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("not_before", EPOCH_MS, nullable=True),  # retry / waitCode delay
    sa.Column("start_time", EPOCH_MS, nullable=True),
    sa.Column("end_time", EPOCH_MS, nullable=True),
    sa.Column("created_at", EPOCH_MS, nullable=False),
    # Tasks by status; "any task of this instance not done?"; a running instance's READY
    # tasks (migration 0012): seeks on (status, instance) instead of walks over the instance.
    sa.Index("ix_task_instances_status_flow", "status", "flow_instance_id"),
    # A succeeded task's downstream rows by name (migrations 0006, 0008, 0013). Only one index is
    # led by the instance id: each costs every new instance random page writes
    # (docs/performance.md, "History"). No status in it: status changes must not rewrite it.
    sa.Index("ix_task_instances_flow_task", "flow_instance_id", "task_name"),
)

# One attempt of a task instance. `owner_*` and `lease_until` say which batchd process runs it;
# an open attempt (ended NULL) whose owner is gone is declared dead by crash recovery.
task_attempts = sa.Table(
    "task_attempts",
    metadata,
    sa.Column(
        "task_instance_id",
        sa.String(96),
        sa.ForeignKey("task_instances.instance_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("owner", sa.String(128), nullable=False),  # host:pid:random of the claiming process
    sa.Column("owner_host", NAME, nullable=False),
    sa.Column("owner_pid", sa.Integer, nullable=False),
    sa.Column("lease_until", EPOCH_MS, nullable=False),
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("pgid", sa.Integer, nullable=True),
    sa.Column("started_at", EPOCH_MS, nullable=False),
    sa.Column("ended_at", EPOCH_MS, nullable=True),
    sa.Column("exit_code", sa.Integer, nullable=True),
    sa.Column("timed_out", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("outcome", sa.String(16), nullable=True),  # SUCCESS, FAIL, TIMEOUT, WAIT, CANCEL, INTERNAL_ERROR
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("log_path", sa.Text, nullable=False),
    # Open attempts by owner (crash recovery, lease renewal; migration 0013): partial, so a
    # closed attempt leaves it and the index stays as small as the work running now.
    sa.Index("ix_task_attempts_open", "owner",
             sqlite_where=sa.text("ended_at IS NULL"), postgresql_where=sa.text("ended_at IS NULL")),
)
