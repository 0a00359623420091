"""Engine: flow instances, task instances and their attempts.

Written out by hand (see 0001): this is the schema as of this revision.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.String(64)
NAME = sa.String(255)
INSTANCE_ID = sa.String(96)


def upgrade() -> None:
    op.create_table(
        "flow_instances",
        sa.Column("instance_id", INSTANCE_ID, nullable=False),
        sa.Column("flow_id", sa.BigInteger, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("flow_name", NAME, nullable=False),
        sa.Column("flow_type", sa.Integer, nullable=False),
        sa.Column("creator", NAME, nullable=False),
        sa.Column("owners", sa.Text, nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("is_cancelled", sa.Boolean, server_default=sa.false(), nullable=False),
        sa.Column("trigger_time", sa.BigInteger, nullable=False),
        sa.Column("cal_dt", sa.String(10), nullable=False),
        sa.Column("start_time", sa.BigInteger, nullable=True),
        sa.Column("end_time", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("start_task_id", sa.BigInteger, nullable=True),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.ForeignKeyConstraint(["flow_id"], ["flows.flow_id"], name="fk_flow_instances_flow_id_flows",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("instance_id", name="pk_flow_instances"),
    )
    op.create_index("ix_flow_instances_flow_id_status", "flow_instances", ["flow_id", "status"])
    op.create_index("ix_flow_instances_org_id_trigger_time", "flow_instances", ["org_id", "trigger_time"])
    op.create_index("ix_flow_instances_status", "flow_instances", ["status"])
    op.create_table(
        "task_instances",
        sa.Column("instance_id", INSTANCE_ID, nullable=False),
        sa.Column("flow_instance_id", INSTANCE_ID, nullable=False),
        sa.Column("task_id", sa.BigInteger, nullable=False),
        sa.Column("task_name", NAME, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("run_num", sa.Integer, server_default="0", nullable=False),
        sa.Column("recall_num", sa.Integer, server_default="0", nullable=False),
        sa.Column("is_timeout", sa.Boolean, server_default=sa.false(), nullable=False),
        sa.Column("not_before", sa.BigInteger, nullable=True),
        sa.Column("start_time", sa.BigInteger, nullable=True),
        sa.Column("end_time", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(["flow_instance_id"], ["flow_instances.instance_id"],
                                name="fk_task_instances_flow_instance_id_flow_instances", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("instance_id", name="pk_task_instances"),
    )
    op.create_index("ix_task_instances_flow_instance_id", "task_instances", ["flow_instance_id"])
    op.create_index("ix_task_instances_status", "task_instances", ["status"])
    op.create_table(
        "task_attempts",
        sa.Column("task_instance_id", INSTANCE_ID, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("owner_host", NAME, nullable=False),
        sa.Column("owner_pid", sa.Integer, nullable=False),
        sa.Column("lease_until", sa.BigInteger, nullable=False),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("pgid", sa.Integer, nullable=True),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("ended_at", sa.BigInteger, nullable=True),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("timed_out", sa.Boolean, server_default=sa.false(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("log_path", sa.Text, nullable=False),
        sa.ForeignKeyConstraint(["task_instance_id"], ["task_instances.instance_id"],
                                name="fk_task_attempts_task_instance_id_task_instances", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("task_instance_id", "attempt", name="pk_task_attempts"),
    )
    op.create_index("ix_task_attempts_ended_at", "task_attempts", ["ended_at"])


def downgrade() -> None:
    op.drop_table("task_attempts")
    op.drop_table("task_instances")
    op.drop_table("flow_instances")
