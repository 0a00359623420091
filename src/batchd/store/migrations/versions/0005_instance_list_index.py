"""List Flow Instances of one workflow sorted by trigger time: `flow_instances(flow_id, trigger_time)`.

The usual list call (one workflow, newest first, paged) had no index matching both its filter and
its order: SQLite, without statistics, walked `(org_id, trigger_time)` — every instance of the
organisation — or took the workflow's rows from `(flow_id, status)` and sorted them. With
1,000,000 finished instances that made the call grow with the history (docs/performance.md,
"History"). This index serves the filter and the default order (trigger time) at once.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_flow_instances_flow_trigger", "flow_instances", ["flow_id", "trigger_time"])


def downgrade() -> None:
    op.drop_index("ix_flow_instances_flow_trigger", table_name="flow_instances")
