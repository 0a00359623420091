"""Catalogue: a covering index for Search Flow and Get My Flow.

A `flows` row carries its whole definition (tens of KB for a large workflow), so on SQLite every
column stored after it (`update_time`, `create_time`) sits at the end of an overflow chain, and a
search that filtered and sorted over the table read every page of every workflow (~70 ms over
10,000 workflows of 50 tasks). This index holds everything Search Flow reads, so the search runs
on the index alone (bench/catalog_api.py, docs/performance.md).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_flows_search", "flows", ["org_id", "name", "flow_id", "update_time", "create_time", "start_date"]
    )


def downgrade() -> None:
    op.drop_index("ix_flows_search", table_name="flows")
