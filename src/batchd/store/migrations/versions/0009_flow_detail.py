"""`flows.detail`: Get Flow's answer, stored when the flow is written (`catalog.rendering`).

Get Flow used to decode the flow's 30 KB document and encode FlowDetail again on every call; now
each write that changes the answer stores it, and a Get sends it as it is. NULL means "read the
full way" (flows with references, whose upstream names can change without a write to them).

Rows written before this revision get their answer here, made by the catalogue code that will
read it (docs/decisions.md, "Get Flow's stored answer"): a read cannot write it back later (Get
runs in a read transaction, or one statement), and leaving the rows NULL would leave every
existing flow on the slow path until its next write. The rows are read in chunks by flow id, so
the memory needed does not grow with the table.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

CHUNK = 500

# The columns `flow_store.rendering_of_row` reads, spelled out: this revision must keep reading
# the table as it is at this revision, whatever later ones add.
_ROWS = sa.text(
    "SELECT flow_id, org_id, dir_id, definition, active, creator, create_time, update_time, update_user,"
    " entry, version FROM flows WHERE flow_id > :after ORDER BY flow_id LIMIT :chunk"
)
_SET = sa.text("UPDATE flows SET detail = :detail WHERE flow_id = :flow_id")


def upgrade() -> None:
    op.add_column("flows", sa.Column("detail", sa.Text, nullable=True))
    from batchd.catalog.flow_store import rendering_of_row

    conn = op.get_bind()
    after = 0
    while True:
        rows = conn.execute(_ROWS, {"after": after, "chunk": CHUNK}).all()
        if not rows:
            break
        rendered = [{"flow_id": row.flow_id, "detail": detail} for row in rows
                    if (detail := rendering_of_row(row)) is not None]
        if rendered:
            conn.execute(_SET, rendered)
        after = rows[-1].flow_id


def downgrade() -> None:
    op.drop_column("flows", "detail")
