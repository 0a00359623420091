"""The cancel check kills an attempt only when its task is no longer RUNNING — never one that
started while the check was reading (an outcome's transaction claims and starts the next tasks
at any moment). A first version judged every attempt running after the read by that read, and
killed such newcomers at random: a 1,000-task fan-out ended with some tasks CANCEL and its flow
RUNNING for ever."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from servicekit import Backend, IdleExecutor, bootstrap_root

from batchd.api.context import Caller
from batchd.catalog import flows
from batchd.config import Settings
from batchd.engine import progress
from batchd.engine.dispatcher import LEASE_MS, Engine
from batchd.engine.instances import create_flow_instance
from batchd.engine.progress import DefinitionCache
from batchd.store.database import Database, open_database
from batchd.store.tables import flow_instances


class ClaimsDuringReads:
    """The engine's database, except that each read transaction first lets `during_read` run,
    as an outcome's claims can land while the cancel check waits for its answer."""

    def __init__(self, database: Database, during_read: Any) -> None:
        self._database = database
        self._during_read = during_read

    @asynccontextmanager
    async def read_transaction(self) -> AsyncIterator[Any]:
        async with self._database.read_transaction() as conn:
            await self._during_read()
            yield conn


async def scenario(settings: Settings) -> dict[str, bool]:
    database = open_database(settings)
    await database.migrate()
    caller = Caller(org_id="o-cc", user_id="u-cc", user_name="tester")
    cache = DefinitionCache()
    engine = Engine(database, settings, IdleExecutor(), slots=2)
    try:
        async with database.transaction() as conn:
            root = await bootstrap_root(conn, caller)
            flow_id = (await flows.import_flow(conn, caller, {"flowName": "two", "dirId": root, "flowJson": {
                "type": 0, "cycle": "D", "cron": "",
                "tasks": [{"name": n, "type": "COMMAND", "cmd": "true"} for n in ("a", "b")]}}))["flowId"]
            instance_id = await create_flow_instance(conn, flow_id=flow_id, trigger_time_ms=0, origin="manual")

        def claim_one(conn: Any) -> list[progress.Claim]:
            progress.schedule_pass(conn, 1, cache)
            return progress.claim_ready(conn, engine.owner, 1, 1, LEASE_MS, cache, engine._log_path)

        (first,) = await database.run_write(claim_one)
        events = {first.task_instance_id: asyncio.Event()}
        engine._running[first.task_instance_id] = (first.attempt, events[first.task_instance_id], None)  # type: ignore[assignment]

        async def second_starts() -> None:
            if len(events) == 1:
                (second,) = await database.run_write(claim_one)
                events[second.task_instance_id] = asyncio.Event()
                engine._running[second.task_instance_id] = (second.attempt, events[second.task_instance_id], None)  # type: ignore[assignment]

        engine.database = ClaimsDuringReads(database, second_starts)  # type: ignore[assignment]
        await engine._check_cancels()
        found = {"two running": len(events) == 2, "none cancelled": not any(e.is_set() for e in events.values())}

        async with database.transaction() as conn:
            status = (await conn.execute(sa.select(flow_instances.c.status).where(
                flow_instances.c.instance_id == instance_id))).scalar_one()
            await conn.run_sync(progress.cancel_flow_instance, instance_id, status, 2)
        await engine._check_cancels()
        found["all cancelled after Cancel"] = all(e.is_set() for e in events.values())
        return found
    finally:
        await database.dispose()


def test_an_attempt_started_during_a_cancel_check_is_not_cancelled(backend: Backend, tmp_path: Path) -> None:
    settings = Settings.load(home=tmp_path / "home", database_url=backend.database_url, environ={}, timezone="UTC")
    assert asyncio.run(scenario(settings)) == {
        "two running": True, "none cancelled": True, "all cancelled after Cancel": True}
