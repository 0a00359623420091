"""A batchd that was frozen past its lease (SIGSTOP, a paused VM) finds, when it resumes, that a
batchd on another machine declared its attempt dead and runs the task again as a new attempt.
Its own copy must then be killed at its next cancel check: the task reads RUNNING again, but
under the other machine's attempt. A first version judged by the status alone and let both
copies run to their ends."""

from __future__ import annotations

import asyncio
from pathlib import Path

from servicekit import Backend, IdleExecutor, claim_single_task

from batchd.config import Settings
from batchd.engine import progress, recovery
from batchd.engine.dispatcher import LEASE_MS, Engine
from batchd.engine.progress import DefinitionCache, Owner
from batchd.runner.records import CancelEvent
from batchd.store.database import open_database

NOW = 1_700_000_000_000
OTHER_MACHINE = Owner(owner="machine-b:4242:bbbb", host="machine-b", pid=4242)


async def scenario(settings: Settings, tmp_path: Path) -> dict[str, object]:
    database = open_database(settings)
    await database.migrate()
    cache = DefinitionCache()
    engine = Engine(database, settings, IdleExecutor(), slots=2)
    log_of = lambda flow_instance, task_instance: tmp_path / "logs" / f"{task_instance}.log"  # noqa: E731
    found: dict[str, object] = {}
    try:
        claim = await claim_single_task(database, "o-elsewhere", "frozen", owner=engine.owner, now=NOW,
                                        lease_ms=LEASE_MS, cache=cache, log_of=log_of)
        kill = CancelEvent()
        engine._running[claim.task_instance_id] = (claim.attempt, kill, None)  # type: ignore[assignment]
        await engine._check_cancels()
        found["killed while its own"] = kill.is_set()

        # This batchd is frozen; the other machine sees the lease lapse, declares the attempt
        # dead (it cannot kill a process on this machine) and runs the task again.
        later = NOW + LEASE_MS + 60_000
        async with database.transaction() as conn:
            found["declared dead"] = await recovery.declare_dead_attempts(conn, OTHER_MACHINE, later, cache)
            await conn.run_sync(progress.schedule_pass, later, cache)
            retried = await conn.run_sync(progress.claim_ready, OTHER_MACHINE, 1, later, LEASE_MS, cache, log_of)
        found["retried as"] = [c.attempt for c in retried]

        await engine._check_cancels()  # this batchd resumes
        found["killed once retried elsewhere"] = kill.is_set()
    finally:
        await database.dispose()
    return found


def test_a_copy_whose_task_was_retried_elsewhere_is_killed(backend: Backend, tmp_path: Path) -> None:
    settings = Settings.load(home=tmp_path / "home", database_url=backend.database_url, environ={}, timezone="UTC")
    found = asyncio.run(scenario(settings, tmp_path))
    assert found["killed while its own"] is False
    assert len(found["declared dead"]) == 1  # type: ignore[arg-type]
    assert found["retried as"] == [2]
    assert found["killed once retried elsewhere"] is True
