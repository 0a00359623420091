"""`task_instances(status)` becomes `(status, flow_instance_id)`.

Two per-task questions are asked one instance at a time: "is any task of this instance left?"
(after every task with nothing downstream) walked the instance's part of `(flow_instance_id,
task_name, status)` until a task not done, so each leaf of a fan-out walked past all the leaves
done before it (O(n) per task, O(n²) per run); "which READY tasks has this running instance?"
(the claim) went through `(status)`, i.e. every READY row of every instance.
With the instance id beside the status both become seeks: a few index entries per task whatever
the size of the workflow. Queries by status alone use the index's prefix as before. No index
is added: the status index was already rewritten at every status change; its entries only grow
by the instance id, and a finished instance's entries sit together instead of in row order.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_task_instances_status_flow", "task_instances", ["status", "flow_instance_id"])
    op.drop_index("ix_task_instances_status", table_name="task_instances")


def downgrade() -> None:
    op.create_index("ix_task_instances_status", "task_instances", ["status"])
    op.drop_index("ix_task_instances_status_flow", table_name="task_instances")
