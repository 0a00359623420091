"""Scheduler: indexes for finding each workflow's newest scheduled fire and recent changes.

- `flow_instances(flow_id, origin, trigger_time)`: at start (and for each newly enabled workflow)
  the scheduler asks for the newest instance of origin `schedule` per workflow; without this index
  that scanned every stored instance, which with 1,000,000 finished instances made start-up and
  fire lag grow with the history (docs/performance.md).
- `flows(update_time)`: the scheduler's change poll reads the workflows saved since its last look.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_flow_instances_last_fire", "flow_instances", ["flow_id", "origin", "trigger_time"])
    op.create_index("ix_flows_update_time", "flows", ["update_time"])


def downgrade() -> None:
    op.drop_index("ix_flows_update_time", table_name="flows")
    op.drop_index("ix_flow_instances_last_fire", table_name="flow_instances")
