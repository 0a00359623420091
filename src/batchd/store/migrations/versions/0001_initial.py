"""Initial schema: identity (orgs, users, service accounts, tokens, replay guard) and catalogue.

Written out by hand rather than from `tables.metadata`: a migration is a frozen record of what
the schema was at that revision, and must not change when `tables.py` changes later.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(64)
NAME = sa.String(255)
DIR_ID = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "orgs",
        sa.Column("org_id", ID, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("org_id", name="pk_orgs"),
    )
    op.create_table(
        "users",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("locked", sa.Boolean, server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.org_id"], name="fk_users_org_id_orgs"),
        sa.PrimaryKeyConstraint("user_id", name="pk_users"),
    )
    op.create_index("ix_users_org_id", "users", ["org_id"])
    op.create_table(
        "service_accounts",
        sa.Column("access_key", ID, nullable=False),
        sa.Column("secret_key", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.org_id"], name="fk_service_accounts_org_id_orgs"),
        sa.PrimaryKeyConstraint("access_key", name="pk_service_accounts"),
    )
    op.create_index("ix_service_accounts_org_id", "service_accounts", ["org_id"])
    op.create_table(
        "access_tokens",
        sa.Column("token", ID, nullable=False),
        sa.Column("access_key", ID, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["access_key"],
            ["service_accounts.access_key"],
            name="fk_access_tokens_access_key_service_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token", name="pk_access_tokens"),
    )
    op.create_index("ix_access_tokens_access_key", "access_tokens", ["access_key"])
    op.create_table(
        "used_signatures",
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("seen_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("signature", name="pk_used_signatures"),
    )
    op.create_index("ix_used_signatures_seen_at", "used_signatures", ["seen_at"])

    op.create_table(
        "directories",
        sa.Column("dir_id", DIR_ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("parent_id", DIR_ID, nullable=True),
        sa.Column("name", NAME, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.org_id"], name="fk_directories_org_id_orgs"),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["directories.dir_id"], name="fk_directories_parent_id_directories"
        ),
        sa.PrimaryKeyConstraint("dir_id", name="pk_directories"),
        sa.UniqueConstraint("org_id", "parent_id", "name", name="uq_directories_org_id_parent_id_name"),
    )
    op.create_table(
        "flows",
        sa.Column("flow_id", sa.BigInteger, autoincrement=False, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("dir_id", DIR_ID, nullable=False),
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
        sa.Column("create_time", sa.BigInteger, nullable=False),
        sa.Column("update_time", sa.BigInteger, nullable=False),
        sa.Column("update_user", NAME, nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.org_id"], name="fk_flows_org_id_orgs"),
        sa.ForeignKeyConstraint(["dir_id"], ["directories.dir_id"], name="fk_flows_dir_id_directories"),
        sa.PrimaryKeyConstraint("flow_id", name="pk_flows"),
    )
    op.create_index("ix_flows_org_id_name", "flows", ["org_id", "name"])
    op.create_table(
        "flow_versions",
        sa.Column("flow_id", sa.BigInteger, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("saved_by", NAME, nullable=False),
        sa.Column("saved_at", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["flow_id"], ["flows.flow_id"], name="fk_flow_versions_flow_id_flows", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("flow_id", "version", name="pk_flow_versions"),
    )
    op.create_table(
        "flow_dependencies",
        sa.Column("flow_id", sa.BigInteger, nullable=False),
        sa.Column("upstream_flow_id", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["flow_id"], ["flows.flow_id"], name="fk_flow_dependencies_flow_id_flows", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["upstream_flow_id"], ["flows.flow_id"], name="fk_flow_dependencies_upstream_flow_id_flows"
        ),
        sa.PrimaryKeyConstraint("flow_id", "upstream_flow_id", name="pk_flow_dependencies"),
    )
    op.create_index("ix_flow_dependencies_upstream_flow_id", "flow_dependencies", ["upstream_flow_id"])
    op.create_table(
        "tasks",
        sa.Column("task_id", sa.BigInteger, autoincrement=False, nullable=False),
        sa.Column("flow_id", sa.BigInteger, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.ForeignKeyConstraint(["flow_id"], ["flows.flow_id"], name="fk_tasks_flow_id_flows", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("task_id", name="pk_tasks"),
        sa.UniqueConstraint("flow_id", "name", name="uq_tasks_flow_id_name"),
    )
    op.create_table(
        "id_counters",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_id_counters"),
    )


def downgrade() -> None:
    for table in (
        "id_counters",
        "tasks",
        "flow_dependencies",
        "flow_versions",
        "flows",
        "directories",
        "used_signatures",
        "access_tokens",
        "service_accounts",
        "users",
        "orgs",
    ):
        op.drop_table(table)
