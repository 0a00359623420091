"""An engine never runs more attempts at once than its slots, while outcomes, their claims and
the loop's turns interleave, and uses all of them. (Each counts its free slots and starts its
claims under one lock; the window in which a count taken before waiting for the lock went stale
is too narrow for this test to hit reliably — it guards the invariant, not that ordering.)"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from servicekit import Backend, bootstrap_root, flow_status_once_done

from batchd.api.context import Caller
from batchd.catalog import flows
from batchd.config import Settings
from batchd.engine import dispatcher
from batchd.engine.dispatcher import Engine
from batchd.engine.instances import create_flow_instance
from batchd.engine.status import Status
from batchd.runner import AttemptOutcome, AttemptSpec
from batchd.store.database import open_database


class Counting:
    """Runs nothing (a few random milliseconds each); remembers the most attempts at once.
    `runs_here`: whether the engine may start a successor ahead of its claim (`Executor`)."""

    def __init__(self, runs_here: bool = False) -> None:
        self.runs_here = runs_here
        self.now = self.most = 0
        self.ran: list[str] = []
        self.random = random.Random(7)

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, spec: AttemptSpec, on_started: object, cancel: asyncio.Event) -> AttemptOutcome:
        self.now += 1
        self.most = max(self.most, self.now)
        self.ran.append(spec.task_instance_id)
        try:
            await asyncio.sleep(self.random.uniform(0, 0.004))
        finally:
            self.now -= 1
        return AttemptOutcome(exit_code=0, started_ms=0, ended_ms=1)


class SlowWrites:
    """The engine's database, with each `run_write` held up a little (as on a busy machine), so
    that loop turns and outcomes overlap often."""

    def __init__(self, database: Any) -> None:
        self._database = database

    def __getattr__(self, name: str) -> Any:
        return getattr(self._database, name)

    async def run_write(self, work: Any, *, short: bool = False) -> Any:
        await asyncio.sleep(0.003)
        return await self._database.run_write(work, short=short)


async def scenario(settings: Settings, runs_here: bool) -> tuple[int, int, int, int]:
    """A fan-out of 20 branches, each a chain of two tasks (so that, where the executor allows
    it, each branch's second task starts ahead of its claim in the slot its first one frees)."""
    database = open_database(settings)
    await database.migrate()
    caller = Caller(org_id="o-slots", user_id="u-slots", user_name="tester")
    firsts, seconds = [f"t{i}" for i in range(1, 21)], [f"u{i}" for i in range(1, 21)]
    names = ["t0", *firsts, *seconds]
    async with database.transaction() as conn:
        root = await bootstrap_root(conn, caller)
        flow_id = (await flows.import_flow(conn, caller, {"flowName": "wide", "dirId": root, "flowJson": {
            "type": 0, "cycle": "D", "cron": "",
            "tasks": [{"name": n, "type": "COMMAND", "cmd": "true"} for n in names],
            "relations": [{"sourceTaskName": "t0", "targetTaskName": n, "rerun": True} for n in firsts]
            + [{"sourceTaskName": a, "targetTaskName": b, "rerun": True} for a, b in zip(firsts, seconds)]}}))["flowId"]
        instance_id = await create_flow_instance(conn, flow_id=flow_id, trigger_time_ms=0, origin="manual")
    executor = Counting(runs_here)
    engine = Engine(SlowWrites(database), settings, executor, slots=3)  # type: ignore[arg-type]
    await engine.start()
    try:
        # extra loop turns before every read, racing the outcomes' claims
        status = await flow_status_once_done(database, instance_id, tries=400, pause_s=0.002,
                                             each_try=lambda: dispatcher.wake_all(0))
    finally:
        await engine.stop()
        await database.dispose()
    return executor.most, len(executor.ran), len(set(executor.ran)), status


@pytest.mark.parametrize("runs_here", [False, True], ids=["claims only", "successors started ahead"])
def test_never_more_attempts_at_once_than_slots(backend: Backend, tmp_path: Path, runs_here: bool) -> None:
    settings = Settings.load(home=tmp_path / "home", database_url=backend.database_url, environ={}, timezone="UTC")
    most, ran, distinct, status = asyncio.run(scenario(settings, runs_here))
    assert status == Status.SUCCESS
    assert ran == distinct == 41  # every task once
    assert most == 3  # the slots were used, never exceeded
