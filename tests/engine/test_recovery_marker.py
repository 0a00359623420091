"""batchd killed while an attempt runs (its pid is only stored with the outcome): the restarted
batchd still finds and ends the orphaned process group, by the task instance id and the owner
every attempt's processes carry in their environment, before the task is retried. Every other
process of the dead batchd dies too, attempt row or not (a successor started ahead of its claim,
`Engine._start_ahead`); another batchd's task that has the same instance id lives on."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
from pathlib import Path

import sqlalchemy as sa
from servicekit import Backend, claim_single_task

from batchd.config import Settings
from batchd.engine import recovery
from batchd.engine.progress import DefinitionCache, Owner
from batchd.engine.status import Status
from batchd.runner.process import MARKER, OWNER_MARKER
from batchd.store.database import open_database
from batchd.store.tables import task_attempts, task_instances

NOW = 1_700_000_000_000


def a_dead_pid() -> int:
    finished = subprocess.Popen(["true"])
    finished.wait()
    return finished.pid


def sleeper(marker: str, owner: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "600"], env={**os.environ, MARKER: marker, OWNER_MARKER: owner},
                            start_new_session=True)


async def scenario(settings: Settings, tmp_path: Path) -> dict[str, object]:
    database = open_database(settings)
    await database.migrate()
    cache = DefinitionCache()
    dead_pid = a_dead_pid()
    crashed = Owner(owner=f"{socket.gethostname()}:{dead_pid}:dead", host=socket.gethostname(), pid=dead_pid)
    me = Owner(owner=f"{socket.gethostname()}:{os.getpid()}:me", host=socket.gethostname(), pid=os.getpid())
    found: dict[str, object] = {}
    try:
        claim = await claim_single_task(database, "o-marker", "orphan", owner=crashed, now=NOW, lease_ms=30_000,
                                        cache=cache, log_of=lambda _f, t: tmp_path / "logs" / f"{t}.log")
        # The crashed batchd had started the process but never recorded its pid.
        orphan = sleeper(claim.task_instance_id, crashed.owner)
        # Another batchd on this machine (another home, another database) whose task happens to
        # have the same instance id lives on; a process the crashed one started for a task it had
        # not claimed yet (no attempt row) must die, or it would run beside that task's claim.
        namesake = sleeper(claim.task_instance_id, "elsewhere:1:other")
        unclaimed = sleeper("someone-else-123", crashed.owner)
        try:
            async with database.transaction() as conn:
                found["declared"] = await recovery.declare_dead_attempts(conn, me, NOW + 1, cache)
            found["orphan_exit"] = await asyncio.to_thread(orphan.wait, 10)
            found["unclaimed_exit"] = await asyncio.to_thread(unclaimed.wait, 10)
            found["namesake_running"] = namesake.poll() is None
        finally:
            for process in (orphan, namesake, unclaimed):
                if process.poll() is None:
                    process.kill()
                    process.wait()
        async with database.transaction() as conn:
            attempt = (await conn.execute(sa.select(task_attempts).where(
                task_attempts.c.task_instance_id == claim.task_instance_id))).one()
            task = (await conn.execute(sa.select(task_instances).where(
                task_instances.c.instance_id == claim.task_instance_id))).one()
        found["pid_recorded"], found["outcome"] = attempt.pgid, attempt.outcome
        found["task_status"], found["recall_num"] = task.status, task.recall_num
        found["task_instance_id"] = claim.task_instance_id
    finally:
        await database.dispose()
    return found


def test_an_orphan_without_a_recorded_pid_is_found_by_its_marker_and_killed(backend: Backend, tmp_path: Path
                                                                            ) -> None:
    settings = Settings.load(home=tmp_path / "home", database_url=backend.database_url, environ={}, timezone="UTC")
    found = asyncio.run(scenario(settings, tmp_path))
    assert found["declared"] == [found["task_instance_id"]]
    assert found["pid_recorded"] is None
    assert found["orphan_exit"] in (-signal.SIGTERM, -signal.SIGKILL)
    assert found["unclaimed_exit"] in (-signal.SIGTERM, -signal.SIGKILL)
    assert found["namesake_running"] is True
    assert found["outcome"] == "INTERNAL_ERROR"
    assert (found["task_status"], found["recall_num"]) == (Status.WAIT, 1)  # retried per retryLimit 1
