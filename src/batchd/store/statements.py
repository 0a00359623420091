"""Statements whose spelling differs between SQLite and PostgreSQL, written once for both."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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


class Prepared:
    """A Core statement compiled once per dialect and run straight on the DB-API cursor.

    For the engine's hot path, which runs ~8 small statements per finished task: SQLAlchemy's
    `Connection.execute` costs ~50 µs per statement even with its compiled cache (execution
    context, parameter processing, result metadata, Row objects), several times what SQLite
    needs to run one of them. Here the statement is still written once in Core and compiled by
    SQLAlchemy for whichever database the connection is on, but each run is a bare
    `cursor.execute` and the rows come back as named tuples.

    Only for statements whose parameters and result columns need no type conversion (integers,
    text, booleans going in; integers and text coming out): no bind or result processor runs.
    """

    __slots__ = ("_statement", "_column_keys", "_compiled")

    def __init__(self, statement: sa.Executable, *, column_keys: Sequence[str] | None = None) -> None:
        self._statement = statement
        self._column_keys = list(column_keys) if column_keys is not None else None
        self._compiled: dict[str, _Compiled] = {}

    @property
    def statement(self) -> sa.Executable:
        return self._statement

    def execute(self, conn: sa.Connection, params: Mapping[str, Any]) -> _Result:
        """Run on `conn`'s transaction; the cursor's answer (rows read at once, rowcount)."""
        compiled = self._compiled.get(conn.dialect.name)
        if compiled is None:
            compiled = self._compiled[conn.dialect.name] = _Compiled.of(self._statement, conn.dialect,
                                                                          self._column_keys)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(compiled.sql, compiled.bind(params))
            rows = []
            if cursor.description:
                row = compiled.row or compiled.row_of(cursor.description)
                rows = [row(*values) for values in cursor.fetchall()]
            return _Result(rows, cursor.rowcount)
        finally:
            cursor.close()


@dataclass(frozen=True, slots=True)
class _Result:
    rows: list[Any]
    rowcount: int

    def first(self) -> Any:
        return self.rows[0] if self.rows else None


@dataclass(slots=True)
class _Compiled:
    sql: str
    defaults: dict[str, Any]
    positions: tuple[str, ...] | None  # bind names in order, for a positional paramstyle
    row: Callable[..., Any] | None = None  # named tuple of the result columns, made at first use

    @classmethod
    def of(cls, statement: sa.Executable, dialect: sa.Dialect, column_keys: list[str] | None) -> _Compiled:
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)  # type: ignore[attr-defined]
        if compiled.post_compile_params:  # expanding IN lists, LIMITs some dialects render literally
            raise ValueError("Prepared runs a statement as compiled: write an IN list as numbered bind parameters")
        return cls(sql=compiled.string, defaults=dict(compiled.construct_params(_check=False)),
                   positions=tuple(compiled.positiontup) if compiled.positional else None)

    def row_of(self, description: Sequence[Sequence[Any]]) -> Callable[..., Any]:
        self.row = namedtuple("Row", [column[0] for column in description], rename=True)  # type: ignore[misc]
        return self.row

    def bind(self, params: Mapping[str, Any]) -> Any:
        values = {**self.defaults, **params} if self.defaults else params
        return tuple(values[name] for name in self.positions) if self.positions is not None else values
