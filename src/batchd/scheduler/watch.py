"""`FlowWriteWatch`: tells the scheduler at once when this process committed a write to `flows`.

Import, Save, Enable, Disable and Delete all write the `flows` table through the process's one
`Database`; instead of each API route remembering to call `Scheduler.notify`, the scheduler
listens to the engine: a DML statement on `flows` marks the connection, a rollback clears the
mark, and when the connection goes back to the pool (after its commit has finished, so the
scheduler's read sees the row) the mark becomes `notify()`. The change poll (`poll_seconds`) and
the resync remain the net for writes by other processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from batchd.store.tables import flows

_MARK = "batchd.scheduler.flows_written"


class FlowWriteWatch:
    """Installed for the life of `Scheduler.run()`; `close()` removes the listeners."""

    def __init__(self, engine: AsyncEngine, on_change: Callable[[], None]) -> None:
        self._engine = engine.sync_engine
        self._pool = engine.sync_engine.pool
        self._on_change = on_change
        self._loop = asyncio.get_running_loop()
        event.listen(self._engine, "after_execute", self._after_execute)
        event.listen(self._engine, "rollback", self._rollback)
        event.listen(self._pool, "checkin", self._checkin)

    def close(self) -> None:
        event.remove(self._engine, "after_execute", self._after_execute)
        event.remove(self._engine, "rollback", self._rollback)
        event.remove(self._pool, "checkin", self._checkin)

    def _after_execute(self, conn: sa.Connection, statement: Any, *_: Any) -> None:
        if getattr(statement, "is_dml", False) and getattr(statement, "table", None) is flows:
            conn.info[_MARK] = True

    def _rollback(self, conn: sa.Connection) -> None:
        conn.info.pop(_MARK, None)

    def _checkin(self, _dbapi_connection: Any, record: Any) -> None:
        if record is not None and record.info.pop(_MARK, None):
            try:
                here = asyncio.get_running_loop() is self._loop
            except RuntimeError:
                here = False
            if here:  # the usual case: the async driver's greenlet runs on the loop's thread
                self._on_change()
            else:
                self._loop.call_soon_threadsafe(self._on_change)
