"""Two engines on one database (two batchd processes on one PostgreSQL, or one SQLite file) never
claim the same task: every task instance runs exactly once and every flow instance succeeds.

Each workflow is a diamond (t0, then t1..t4 side by side, then t5 after all of them), so the
fan-in task's upstream tasks finish at the same time in both engines: each success must see the
others', or t5 never becomes READY. The periodic sweep that would hide such a miss is turned off.
Or a chain, whose tasks after the first each start ahead of their claim in the engine that ran
the one before (`Engine._start_ahead`) while the other engine claims and sweeps beside it.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from servicekit import Backend, bootstrap_root

from batchd.api.context import Caller
from batchd.catalog import flows
from batchd.config import Settings
from batchd.engine import dispatcher
from batchd.engine.dispatcher import Engine
from batchd.engine.instances import create_flow_instance
from batchd.engine.progress import Owner
from batchd.engine.status import Status
from batchd.runner import AttemptOutcome, AttemptSpec
from batchd.store.database import open_database
from batchd.store.tables import flow_instances, task_attempts

FLOWS, TASKS = 6, 6


class RecordingExecutor:
    """Runs nothing: records which attempt it was given and succeeds after a short pause. It
    says its attempts run here, so the engines start chains' successors ahead."""

    runs_here = True

    def __init__(self, runs: list[tuple[str, int]], order: list[tuple[str, str]]) -> None:
        self.runs = runs
        self.order = order

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, spec: AttemptSpec, on_started: object, cancel: asyncio.Event) -> AttemptOutcome:
        self.runs.append((spec.task_instance_id, spec.attempt))
        self.order.append((spec.env["BATCHD_FLOW_INSTANCE_ID"], spec.command))
        await asyncio.sleep(0.01)
        return AttemptOutcome(exit_code=0, started_ms=0, ended_ms=1)


async def scenario(settings: Settings, shape: str
                   ) -> tuple[list[tuple[str, int]], list[tuple[str, str]], list[int], int]:
    database = open_database(settings)
    await database.migrate()
    caller = Caller(org_id="o-claims", user_id="u-claims", user_name="tester")
    async with database.transaction() as conn:
        root = await bootstrap_root(conn, caller)
        for f in range(FLOWS):
            tasks = [{"name": f"t{i}", "type": "COMMAND", "cmd": f"echo t{i}"} for i in range(TASKS)]
            middle = range(1, TASKS - 1)
            relations = [{"sourceTaskName": "t0", "targetTaskName": f"t{i}", "rerun": True} for i in middle]
            relations += [{"sourceTaskName": f"t{i}", "targetTaskName": f"t{TASKS - 1}", "rerun": True}
                          for i in middle]
            if shape == "chain":
                relations = [{"sourceTaskName": f"t{i}", "targetTaskName": f"t{i + 1}", "rerun": True}
                             for i in range(TASKS - 1)]
            flow_id = (await flows.import_flow(conn, caller, {"flowName": f"f{f}", "dirId": root, "flowJson": {
                "type": 0, "cycle": "D", "cron": "", "tasks": tasks, "relations": relations}}))["flowId"]
            await create_flow_instance(conn, flow_id=flow_id, trigger_time_ms=0, origin="manual")
    runs: list[tuple[str, int]] = []
    order: list[tuple[str, str]] = []
    engines = [Engine(database, settings, RecordingExecutor(runs, order), slots=3) for _ in range(2)]
    # Both engines live in this one process; give the second the identity of another live process
    # (our parent) so that crash recovery does not take it for a dead incarnation of the first.
    engines[1].owner = Owner(owner="other:process", host=engines[0].owner.host, pid=os.getppid())
    for engine in engines:
        await engine.start()
    try:
        for _ in range(300):
            async with database.transaction() as conn:
                statuses = list((await conn.execute(sa.select(flow_instances.c.status))).scalars())
            if all(s == Status.SUCCESS for s in statuses):
                break
            await asyncio.sleep(0.05)
    finally:
        for engine in engines:
            await engine.stop()
    async with database.transaction() as conn:
        attempts = (await conn.execute(sa.select(sa.func.count()).select_from(task_attempts))).scalar_one()
    await database.dispose()
    return runs, order, statuses, attempts


@pytest.mark.parametrize("shape", ["diamond", "chain"])
def test_two_engines_never_claim_the_same_task(backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               shape: str) -> None:
    monkeypatch.setattr(dispatcher, "SWEEP_EVERY_S", 3600.0)  # only the sweep at start
    settings = Settings.load(home=tmp_path / "home", database_url=backend.database_url, environ={}, timezone="UTC")
    runs, order, statuses, attempts = asyncio.run(scenario(settings, shape))
    assert statuses == [Status.SUCCESS] * FLOWS
    assert sorted(runs) == sorted(set(runs)) and len(runs) == FLOWS * TASKS == attempts
    assert {attempt for _, attempt in runs} == {1}
    if shape == "chain":  # each workflow's tasks one after the other, in chain order
        by_instance: dict[str, list[str]] = {}
        for instance_id, command in order:
            by_instance.setdefault(instance_id, []).append(command)
        assert list(by_instance.values()) == [[f"echo t{i}" for i in range(TASKS)]] * FLOWS
