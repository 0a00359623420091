"""Engine: find one flow instance's task instances by name and by status.

- `task_instances(flow_instance_id, task_name)`: when a task succeeds, the engine reads the rows
  of its direct downstream tasks (and their other upstream tasks) by name, instead of every task
  of the instance (docs/performance.md, "Engine").
- `task_instances(flow_instance_id, status)`: "is any task of this instance not done yet?" after
  each success, answered from the index instead of walking the instance's rows.

Both start with `flow_instance_id`, so they replace the single-column index of migration 0002.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_task_instances_flow_task", "task_instances", ["flow_instance_id", "task_name"])
    op.create_index("ix_task_instances_flow_status", "task_instances", ["flow_instance_id", "status"])
    op.drop_index("ix_task_instances_flow_instance_id", table_name="task_instances")


def downgrade() -> None:
    op.create_index("ix_task_instances_flow_instance_id", "task_instances", ["flow_instance_id"])
    op.drop_index("ix_task_instances_flow_status", table_name="task_instances")
    op.drop_index("ix_task_instances_flow_task", table_name="task_instances")
