"""Engine: RUNNING flow instances in trigger-time order, `flow_instances(status, trigger_time)`.

Claiming the next READY task walks the RUNNING instances oldest first and, for each, its READY
tasks through `task_instances(flow_instance_id, status)` (migration 0006), stopping as soon as it
has enough. With only `flow_instances(status)` SQLite started from every READY task instead and
sorted them all — each claim in a 1,000-task fan-out sorted up to 999 rows. This index replaces
the single-column one, which it covers.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_flow_instances_status_trigger", "flow_instances", ["status", "trigger_time"])
    op.drop_index("ix_flow_instances_status", table_name="flow_instances")


def downgrade() -> None:
    op.create_index("ix_flow_instances_status", "flow_instances", ["status"])
    op.drop_index("ix_flow_instances_status_trigger", table_name="flow_instances")
