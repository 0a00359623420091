"""Statements whose spelling differs between SQLite and PostgreSQL, written once for both."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


async def insert_if_absent(conn: AsyncConnection, table: sa.Table, **values: Any) -> bool:
    """Insert one row unless its primary key exists; True when this call inserted it.

    `ON CONFLICT DO NOTHING` rather than catching IntegrityError: on PostgreSQL a failed insert
    aborts the whole transaction, and the caller's transaction must survive a duplicate.
    """
    statement = _INSERTS[conn.dialect.name](table).values(**values)
    keys = list(table.primary_key.columns)
    # RETURNING rather than rowcount: drivers disagree on rowcount after DO NOTHING.
    result = await conn.execute(statement.on_conflict_do_nothing(index_elements=keys).returning(*keys))
    return result.first() is not None


async def insert_many_if_absent(conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]]) -> list[Any]:
    """Insert many rows in one executemany, skipping those whose primary key exists; the first
    primary-key column of each row this call inserted (`insert_if_absent` for a batch)."""
    keys = list(table.primary_key.columns)
    statement = _INSERTS[conn.dialect.name](table).on_conflict_do_nothing(index_elements=keys).returning(keys[0])
    return list((await conn.execute(statement, rows)).scalars())
