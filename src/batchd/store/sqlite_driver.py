"""`OneHopConnection`: aiosqlite with one trip to its worker thread per statement.

aiosqlite runs each sqlite3 call on the connection's own thread and hands the result back to the
event loop; SQLAlchemy's adapter makes four such trips per statement (create cursor, execute,
fetch all rows, close cursor). On the project's 2-core VM a trip costs ~0.1 ms, far more than
SQLite needs to read a row, so an empty transaction took ~0.8 ms and each statement ~0.5 ms.

Here a cursor is created, executed, drained and closed in one trip (the rows, description,
rowcount and lastrowid are kept for SQLAlchemy to read afterwards). A deferred `BEGIN` travels
with the transaction's first statement instead of alone: SQLite starts a deferred transaction
only at its first statement anyway, so nothing changes but that a read transaction that runs no
statement (Get Current Time) makes no trip at all. (`BEGIN IMMEDIATE` still goes alone and at
once: whoever calls begin() may rely on holding the write lock when it returns.) A commit or
rollback with no transaction open (the pool's reset when a connection comes back after its
commit) makes no trip either.

Everything that touches sqlite3 still runs on the worker thread, in order; only the
`in_transaction` flag is read from the loop's thread, while no call is in flight on the
connection (SQLAlchemy serialises a connection's calls).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import aiosqlite


class _Drained:
    """What one statement left behind, read by SQLAlchemy after `execute` returns."""

    __slots__ = ("description", "rowcount", "lastrowid", "rows")

    def __init__(self, cursor: sqlite3.Cursor, rows: list[Any]) -> None:
        self.description = cursor.description
        self.rowcount = cursor.rowcount
        self.lastrowid = cursor.lastrowid
        self.rows = rows


def _run(conn: sqlite3.Connection, begin: str | None, many: bool, sql: str, parameters: Any) -> _Drained:
    """On the worker thread: the transaction's deferred `begin`, then the whole life of one cursor."""
    if begin is not None:
        conn.execute(begin)
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(sql, parameters)
        elif parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return _Drained(cursor, rows)
    finally:
        cursor.close()


class OneHopCursor:
    """The subset of `aiosqlite.Cursor` SQLAlchemy's adapter uses, one trip per execute."""

    arraysize = 1

    def __init__(self, connection: OneHopConnection) -> None:
        self._connection = connection
        self._result: _Drained | None = None

    async def __aenter__(self) -> OneHopCursor:
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Any = None) -> OneHopCursor:
        if not parameters and sql.strip().upper() in ("BEGIN", "BEGIN DEFERRED"):
            self._connection.pending_begin = sql
            self._result = None
            return self
        self._result = await self._connection.run(False, sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Any) -> OneHopCursor:
        self._result = await self._connection.run(True, sql, parameters)
        return self

    def _take(self, size: int | None) -> list[Any]:
        if self._result is None:
            return []
        rows = self._result.rows
        taken = rows if size is None else rows[:size]
        self._result.rows = [] if size is None else rows[size:]
        return taken

    async def fetchall(self) -> list[Any]:
        return self._take(None)

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._take(size if size is not None else self.arraysize)

    async def fetchone(self) -> Any:
        rows = self._take(1)
        return rows[0] if rows else None

    async def close(self) -> None:
        """The sqlite3 cursor is already closed; only the buffered rows remain to drop."""
        if self._result is not None:
            self._result.rows = []

    @property
    def description(self) -> Sequence[Any] | None:
        return self._result.description if self._result else None

    @property
    def rowcount(self) -> int:
        return self._result.rowcount if self._result else -1

    @property
    def lastrowid(self) -> int | None:
        return self._result.lastrowid if self._result else None


class _CursorOpener:
    """`connection.cursor()` is used as `await cursor.__aenter__()`: no trip needed."""

    def __init__(self, cursor: OneHopCursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> OneHopCursor:
        return self._cursor

    def __await__(self) -> Any:
        return self.__aenter__().__await__()


class OneHopConnection(aiosqlite.Connection):
    """An aiosqlite connection whose cursors make one trip per statement (module docstring)."""

    pending_begin: str | None = None  # a BEGIN not sent yet: it goes with the next statement

    def cursor(self) -> _CursorOpener:  # type: ignore[override]
        return _CursorOpener(OneHopCursor(self))

    async def run(self, many: bool, sql: str, parameters: Any) -> _Drained:
        begin, self.pending_begin = self.pending_begin, None
        return await self._execute(_run, self._conn, begin, many, sql, parameters)

    def _idle(self) -> bool:
        """No transaction to end: its BEGIN was never sent, or none was started. Safe to read
        here: SQLAlchemy has no other call in flight on this connection."""
        self.pending_begin = None
        return self._connection is not None and not self._connection.in_transaction

    async def commit(self) -> None:
        if not self._idle():
            await super().commit()

    async def rollback(self) -> None:
        if not self._idle():
            await super().rollback()


def one_hop_connector(path: str) -> Callable[[], Any]:
    """An `async_creator` for `create_async_engine`: opens `path` as a `OneHopConnection`."""

    async def connect() -> OneHopConnection:
        # check_same_thread=False only so that `rollback` may read `in_transaction`; every call
        # that runs SQL still goes through the connection's one worker thread.
        connection = OneHopConnection(partial(sqlite3.connect, path, check_same_thread=False), 64)
        connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite: never block exit
        return await connection

    return connect
