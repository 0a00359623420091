"""The sweep is the net under incremental readiness: a task whose upstream task succeeded but
which nobody made READY (an older batchd's outcome, a crash between two steps) still runs once an
engine starts, and the run finishes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from servicekit import Backend, bootstrap_root, flow_status_once_done

from batchd.api.context import Caller
from batchd.catalog import flows
from batchd.config import Settings
from batchd.engine import progress
from batchd.engine.dispatcher import Engine
from batchd.engine.instances import create_flow_instance
from batchd.engine.progress import DefinitionCache
from batchd.engine.status import Status
from batchd.runner import AttemptOutcome, AttemptSpec
from batchd.store.database import open_database
from batchd.store.tables import task_instances


class Succeeding:
    """Runs nothing; every attempt succeeds. Records which tasks it was given."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, spec: AttemptSpec, on_started: object, cancel: asyncio.Event) -> AttemptOutcome:
        self.ran.append(spec.task_instance_id)
        return AttemptOutcome(exit_code=0, started_ms=0, ended_ms=1)


async def scenario(settings: Settings) -> tuple[list[str], dict[str, int], int]:
    database = open_database(settings)
    await database.migrate()
    caller = Caller(org_id="o-sweep", user_id="u-sweep", user_name="tester")
    async with database.transaction() as conn:
        root = await bootstrap_root(conn, caller)
        flow_id = (await flows.import_flow(conn, caller, {"flowName": "left-behind", "dirId": root, "flowJson": {
            "type": 0, "cycle": "D", "cron": "",
            "tasks": [{"name": n, "type": "COMMAND", "cmd": "true"} for n in ("first", "second")],
            "relations": [{"sourceTaskName": "first", "targetTaskName": "second", "rerun": True}]}}))["flowId"]
        instance_id = await create_flow_instance(conn, flow_id=flow_id, trigger_time_ms=0, origin="manual")
    async with database.transaction() as conn:
        await conn.run_sync(progress.schedule_pass, 1, DefinitionCache())  # admitted: RUNNING, "first" READY
        # "first" succeeded, but the step that releases "second" never ran.
        await conn.execute(sa.update(task_instances).where(task_instances.c.task_name == "first")
                           .values(status=int(Status.SUCCESS), end_time=1))
    executor = Succeeding()
    engine = Engine(database, settings, executor, slots=2)
    await engine.start()
    try:
        status = await flow_status_once_done(database, instance_id, tries=200, pause_s=0.05)
    finally:
        await engine.stop()
    async with database.transaction() as conn:
        tasks = dict((await conn.execute(sa.select(task_instances.c.task_name, task_instances.c.status))).all())
    await database.dispose()
    return [ran.split("-")[0] for ran in executor.ran], tasks, status


def test_a_task_nobody_released_still_runs_after_the_sweep(backend: Backend, tmp_path: Path) -> None:
    settings = Settings.load(home=tmp_path / "home", database_url=backend.database_url, environ={}, timezone="UTC")
    ran, tasks, status = asyncio.run(scenario(settings))
    assert status == Status.SUCCESS
    assert tasks == {"first": Status.SUCCESS, "second": Status.SUCCESS}
    assert len(ran) == 1  # only "second" ran; "first" was already done
