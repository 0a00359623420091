"""Fewer indexes on the instance tables, so a long history does not slow down new instances.

Every index whose key is not "newest last" (the instance ids, anything led by a flow id or a flow
instance id) puts each new row on a random page of a b-tree that, with 1,000,000 stored
instances, is far larger than SQLite's page cache; each such index cost a scheduler batch of 33
fires about a millisecond more than with an empty history (docs/performance.md, "History").

- `flow_instances(flow_id, status)` goes: the engine's "is this workflow busy" check now starts
  from the RUNNING instances (`flow_instances(status, trigger_time)`); queries by workflow use
  `flow_instances(flow_id, trigger_time)`, which also serves the foreign key's cascade.
- `task_instances(flow_instance_id, task_name)` and `(flow_instance_id, status)` (migration
  0006) become one `(flow_instance_id, task_name, status)`: downstream tasks by name, and
  "any task left?" / "READY tasks of this instance" answered from the index alone.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_task_instances_flow_task_status", "task_instances",
                    ["flow_instance_id", "task_name", "status"])
    op.drop_index("ix_task_instances_flow_task", table_name="task_instances")
    op.drop_index("ix_task_instances_flow_status", table_name="task_instances")
    op.drop_index("ix_flow_instances_flow_id_status", table_name="flow_instances")


def downgrade() -> None:
    op.create_index("ix_flow_instances_flow_id_status", "flow_instances", ["flow_id", "status"])
    op.create_index("ix_task_instances_flow_status", "task_instances", ["flow_instance_id", "status"])
    op.create_index("ix_task_instances_flow_task", "task_instances", ["flow_instance_id", "task_name"])
    op.drop_index("ix_task_instances_flow_task_status", table_name="task_instances")
