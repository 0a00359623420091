"""A success in a fan-in releases the downstream task only once every upstream task is done,
whether the other upstream tasks' states are read from the database or known to the caller as
still running here (`record_outcome(running_here=...)`, which then reads nothing), on both
databases."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from servicekit import Backend, bootstrap_root

from batchd.api.context import Caller
from batchd.catalog import flows
from batchd.config import Settings
from batchd.engine import progress
from batchd.engine.instances import create_flow_instance
from batchd.engine.progress import DefinitionCache, Owner, Result
from batchd.engine.status import Status
from batchd.store.database import open_database
from batchd.store.tables import task_instances

OWNER = Owner(owner="here:1:test", host="here", pid=1)


def success(at: int) -> Result:
    return Result(verdict="SUCCESS", exit_code=0, timed_out=False, error=None, ended_ms=at)


async def scenario(settings: Settings, tell_running: bool) -> list[dict[str, int]]:
    """a -> (b, c) -> d: a succeeds, b and c are claimed, b succeeds while c runs (said or
    not), then c succeeds. The statuses by task name after each of b's and c's successes."""
    database = open_database(settings)
    await database.migrate()
    cache = DefinitionCache()
    caller = Caller(org_id="o-fan", user_id="u-fan", user_name="tester")
    try:
        async with database.transaction() as conn:
            root = await bootstrap_root(conn, caller)
            flow_id = (await flows.import_flow(conn, caller, {"flowName": "diamond", "dirId": root, "flowJson": {
                "type": 0, "cycle": "D", "cron": "",
                "tasks": [{"name": n, "type": "COMMAND", "cmd": "true"} for n in "abcd"],
                "relations": [{"sourceTaskName": s, "targetTaskName": t, "rerun": True}
                              for s, t in ("ab", "ac", "bd", "cd")]}}))["flowId"]
            instance_id = await create_flow_instance(conn, flow_id=flow_id, trigger_time_ms=0, origin="manual")

        def step(work: Any) -> Any:
            return database.run_write(work)

        def statuses(conn: sa.Connection) -> dict[str, int]:
            return dict(conn.execute(sa.select(task_instances.c.task_name, task_instances.c.status).where(
                task_instances.c.flow_instance_id == instance_id)).all())

        def claim(conn: sa.Connection) -> dict[str, progress.Claim]:
            return {c.task.name: c for c in progress.claim_ready(conn, OWNER, 4, 10, 30_000, cache,
                                                                 lambda f, t: Path("/nowhere") / f"{t}.log")}

        await step(lambda conn: progress.schedule_pass(conn, 10, cache))
        (a,) = (await step(claim)).values()
        await step(lambda conn: progress.record_outcome(conn, a.task_instance_id, a.attempt, success(11), cache))
        claimed = await step(claim)
        b, c = claimed["b"], claimed["c"]
        seen = []
        await step(lambda conn: progress.record_outcome(conn, b.task_instance_id, b.attempt, success(12), cache,
                                                        running_here={"c"} if tell_running else ()))
        seen.append(await step(statuses))
        await step(lambda conn: progress.record_outcome(conn, c.task_instance_id, c.attempt, success(13), cache))
        seen.append(await step(statuses))
        return seen
    finally:
        await database.dispose()


@pytest.mark.parametrize("tell_running", [False, True], ids=["read", "told"])
def test_the_fan_in_task_waits_for_its_last_upstream_task(backend: Backend, tmp_path: Path,
                                                          tell_running: bool) -> None:
    settings = Settings.load(home=tmp_path / "home", database_url=backend.database_url, environ={}, timezone="UTC")
    after_b, after_c = asyncio.run(scenario(settings, tell_running))
    assert after_b == {"a": Status.SUCCESS, "b": Status.SUCCESS, "c": Status.RUNNING, "d": Status.INIT}
    assert after_c == {"a": Status.SUCCESS, "b": Status.SUCCESS, "c": Status.SUCCESS, "d": Status.READY}
