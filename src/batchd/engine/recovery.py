"""Crash recovery: attempts whose batchd process is gone are declared dead, safely.

An open attempt (`ended_at` NULL) belongs to the process named in its row. It is dead when
- its lease expired (its process stopped renewing it: crashed, frozen, or its machine is gone), or
- its process ran on this machine and is no longer alive (kill -9, OOM): no need to wait for the
  lease, so a restarted server recovers at once; a previous incarnation with our own pid counts.

For each dead attempt, in this order and inside one transaction: its leftover process group is
killed so that nothing runs twice at the same time (only possible on the machine it ran on; the
engine stores an attempt's pid only with its outcome, so the group is found by the attempt's
marker in its processes' environment), a line saying it died with batchd is appended to its
log, and the attempt is recorded as
INTERNAL_ERROR, which retries the task per `retryLimit` (or ends it INTERNAL_ERROR and fails
the flow). Flow instances that were accepted but never started need nothing: they are rows, and
the scheduling pass admits them.

Before those, every process on this machine that carries a dead batchd's owner marker is
killed, attempt row or not: a batchd starts a chain's next task just before the transaction
that claims it commits (`Engine._start_ahead`), so a crash in between leaves a process whose
claim never happened, and whose task would otherwise run a second time beside it once its
upstream task is retried. The owner marker holds a random part, so only that batchd's children
carry it.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from batchd.engine.progress import INTERRUPTED, DefinitionCache, Owner, Result, record_outcome
from batchd.runner import kill_process_group
from batchd.runner.process import marked_groups, process_alive
from batchd.store.tables import task_attempts

DIED_LINE = "batchd: this attempt died with batchd (process {owner} is gone); its process group was killed\n"


def _is_dead(row: sa.Row, me: Owner, now: int) -> bool:
    if row.owner == me.owner:
        return False
    if row.lease_until < now:
        return True
    if row.owner_host != me.host:
        return False
    return row.owner_pid == me.pid or not process_alive(row.owner_pid)


async def declare_dead_attempts(conn: AsyncConnection, me: Owner, now: int, cache: DefinitionCache) -> list[str]:
    """Declare every dead attempt dead (see the module doc); the task instance ids concerned."""
    rows = (await conn.execute(sa.select(task_attempts).where(task_attempts.c.ended_at.is_(None)))).all()
    dead = [row for row in rows if _is_dead(row, me, now)]
    for owner in sorted({row.owner for row in dead if row.owner_host == me.host}):
        for pgid in marked_groups(None, owner=owner) - {os.getpgrp()}:
            await kill_process_group(pgid, grace_seconds=0)
    for row in dead:
        if row.owner_host == me.host:
            # Only a group whose processes carry this task instance's marker is killed (pids are
            # reused); without a recorded pid, the groups carrying the marker are found by it.
            groups = {row.pgid} if row.pgid else marked_groups(row.task_instance_id, owner=row.owner)
            for pgid in groups - {os.getpgrp()}:
                await kill_process_group(pgid, task_instance_id=row.task_instance_id, grace_seconds=0)
        try:
            path = Path(row.log_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as log:
                stamp = dt.datetime.now(tz=dt.timezone.utc).isoformat(timespec="seconds")
                log.write(f"\n{stamp} " + DIED_LINE.format(owner=row.owner))
                log.flush()
                os.fsync(log.fileno())
        except OSError:
            pass  # the log is a courtesy; the attempt row records the death either way
        await conn.run_sync(record_outcome, row.task_instance_id, row.attempt, Result(
            verdict=INTERRUPTED, exit_code=None, timed_out=False,
            error=f"batchd process {row.owner} died during the attempt", ended_ms=now, pid=row.pgid,
        ), cache)
    return [row.task_instance_id for row in dead]
