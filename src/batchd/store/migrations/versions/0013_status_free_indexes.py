"""Indexes that an attempt's status changes do not rewrite.

Every outcome-and-claim transaction writes each page it changes to SQLite's WAL at its commit,
and the commit was the largest single cost of a finished task (~85 µs of ~400 µs; on PostgreSQL
each changed index entry is WAL and a dead tuple too). Two indexes were rewritten by it for no
reader's sake:

- `task_instances(flow_instance_id, task_name, status)` becomes `(flow_instance_id, task_name)`.
  Its `status` was there to answer "any task left?" and "READY tasks of this instance" from the
  index alone; both moved to `(status, flow_instance_id)` in migration 0012, and the one reader
  left (a success's downstream rows by name) reads `not_before` from the row anyway. Without
  `status` a task's three status changes per run no longer touch it.
- `task_attempts(ended_at)` becomes a partial index of the open attempts, by owner. Its only
  readers ask for open attempts (crash recovery: `ended_at IS NULL`; the lease renewal: one
  owner's open attempts). Closed attempts, every attempt ever run, no longer sit in it; opening
  and closing an attempt touch the same small page instead of one at each end of the index.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_OPEN = "ended_at IS NULL"


def upgrade() -> None:
    op.create_index("ix_task_instances_flow_task", "task_instances", ["flow_instance_id", "task_name"])
    op.drop_index("ix_task_instances_flow_task_status", table_name="task_instances")
    op.create_index("ix_task_attempts_open", "task_attempts", ["owner"],
                    sqlite_where=sa.text(_OPEN), postgresql_where=sa.text(_OPEN))
    op.drop_index("ix_task_attempts_ended_at", table_name="task_attempts")


def downgrade() -> None:
    op.create_index("ix_task_attempts_ended_at", "task_attempts", ["ended_at"])
    op.drop_index("ix_task_attempts_open", table_name="task_attempts")
    op.create_index("ix_task_instances_flow_task_status", "task_instances",
                    ["flow_instance_id", "task_name", "status"])
    op.drop_index("ix_task_instances_flow_task", table_name="task_instances")
