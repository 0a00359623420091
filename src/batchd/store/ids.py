"""Numeric ids the API exposes (flowId, taskId), allocated from named counters.

An id is taken with `UPDATE id_counters SET value = value + 1 ... RETURNING value` inside the
caller's transaction: the row lock serialises concurrent allocators on PostgreSQL (SQLite already
serialises writers), and a rolled-back request gives its id back. A counter row is created on
first use, so a new counter name needs no migration.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from batchd.store.statements import insert_if_absent
from batchd.store.tables import id_counters


async def next_id(conn: AsyncConnection, name: str) -> int:
    """The next value of counter `name` (1 for a new counter); never returns the same value twice."""
    return (await next_ids(conn, name, 1))[0]


async def next_ids(conn: AsyncConnection, name: str, count: int) -> list[int]:
    """The next `count` values of counter `name` in one statement (an import takes one per task)."""
    if count < 1:
        return []
    increment = (
        sa.update(id_counters)
        .where(id_counters.c.name == name)
        .values(value=id_counters.c.value + count)
        .returning(id_counters.c.value)
    )
    value = (await conn.execute(increment)).scalar_one_or_none()
    if value is None:
        await insert_if_absent(conn, id_counters, name=name, value=0)
        value = (await conn.execute(increment)).scalar_one()
    return list(range(int(value) - count + 1, int(value) + 1))


async def reserve_at_least(conn: AsyncConnection, name: str, value: int) -> None:
    """Make sure `next_id(name)` returns more than `value`: used when a caller picked an id itself."""
    await insert_if_absent(conn, id_counters, name=name, value=0)
    await conn.execute(
        sa.update(id_counters)
        .where(id_counters.c.name == name)
        .values(value=sa.case((id_counters.c.value < value, value), else_=id_counters.c.value))
    )

