"""An attempt whose batchd ran on *another machine* is declared dead only when its lease has
expired: a surviving batchd cannot see that machine's processes, so it must neither steal a task
that may still be running there (no task twice at the same time) nor leave it hanging once the
lease lapses (the task is retried per retryLimit, on the survivor)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from servicekit import Backend, claim_single_task

from batchd.config import Settings
from batchd.engine import progress, recovery
from batchd.engine.progress import DefinitionCache, Owner
from batchd.engine.status import Status
from batchd.store.database import open_database
from batchd.store.tables import task_attempts, task_instances

LEASE_MS = 30_000
NOW = 1_700_000_000_000
MACHINE_A = Owner(owner="machine-a:4242:aaaa", host="machine-a", pid=4242)
MACHINE_B = Owner(owner="machine-b:4242:bbbb", host="machine-b", pid=4242)


async def scenario(settings: Settings, tmp_path: Path) -> dict[str, object]:
    database = open_database(settings)
    await database.migrate()
    cache = DefinitionCache()
    log_of = lambda flow_instance, task_instance: tmp_path / "logs" / f"{task_instance}.log"  # noqa: E731
    found: dict[str, object] = {}
    try:
        claim = await claim_single_task(database, "o-lease", "leased", owner=MACHINE_A, now=NOW,
                                        lease_ms=LEASE_MS, cache=cache, log_of=log_of)
        found["claimed_by_a"] = claim.attempt

        async def survivor_looks(at: int) -> list[str]:
            async with database.transaction() as conn:
                return await recovery.declare_dead_attempts(conn, MACHINE_B, at, cache)

        async def task_row() -> sa.Row:
            async with database.transaction() as conn:
                return (await conn.execute(sa.select(task_instances).where(
                    task_instances.c.instance_id == claim.task_instance_id))).one()

        found["within_lease"] = await survivor_looks(NOW + LEASE_MS - 1)
        found["status_within_lease"] = (await task_row()).status
        found["after_lease"] = await survivor_looks(NOW + LEASE_MS + 1)
        row = await task_row()
        found["status_after_lease"], found["recall_num"] = row.status, row.recall_num
        async with database.transaction() as conn:
            first = (await conn.execute(sa.select(task_attempts).where(
                task_attempts.c.task_instance_id == claim.task_instance_id, task_attempts.c.attempt == 1))).one()
        found["first_outcome"], found["first_error"] = first.outcome, first.error
        later = NOW + LEASE_MS + 60_000  # past any retryInterval
        async with database.transaction() as conn:
            await conn.run_sync(progress.schedule_pass, later, cache)
            retried = await conn.run_sync(progress.claim_ready, MACHINE_B, 1, later, LEASE_MS, cache, log_of)
        found["retried"] = [(c.task_instance_id == claim.task_instance_id, c.attempt) for c in retried]
        found["log"] = log_of("", claim.task_instance_id).read_text()
    finally:
        await database.dispose()
    return found


def test_another_machines_attempt_is_dead_only_after_its_lease(backend: Backend, tmp_path: Path) -> None:
    settings = Settings.load(home=tmp_path / "home", database_url=backend.database_url, environ={}, timezone="UTC")
    found = asyncio.run(scenario(settings, tmp_path))
    assert found["claimed_by_a"] == 1
    # Machine A may still be running it: the survivor leaves it alone while the lease holds ...
    assert found["within_lease"] == []
    assert found["status_within_lease"] == Status.RUNNING
    # ... and once it lapsed, declares it dead, consuming one retry rather than failing the flow.
    assert len(found["after_lease"]) == 1
    assert found["status_after_lease"] != Status.RUNNING
    assert found["recall_num"] == 1
    assert found["first_outcome"] == "INTERNAL_ERROR"
    assert "machine-a:4242:aaaa" in str(found["first_error"])
    assert "died with batchd" in str(found["log"])
    # The retry runs on the surviving machine as attempt 2.
    assert found["retried"] == [(True, 2)]
