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
    keys = [column.name for column in table.primary_key.columns]
    result = await conn.execute(statement.on_conflict_do_nothing(index_elements=keys))
    return result.rowcount == 1
