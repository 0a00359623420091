"""List Flow Instances of one workflow by startTime, read from the partial indexes of migration
0010, pages exactly as the general listing orders them: not started yet first ascending and
last descending, ties newest trigger first — on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from servicekit import Backend, bootstrap_root

from batchd.api.context import Caller
from batchd.catalog import flows
from batchd.config import Settings
from batchd.engine import operations
from batchd.engine.instances import create_flow_instance
from batchd.store.database import open_database
from batchd.store.tables import flow_instances

MINUTE_MS = 60_000


async def scenario(settings: Settings) -> tuple[dict[str, list[list[str]]], list[tuple[str, int | None]]]:
    database = open_database(settings)
    await database.migrate()
    caller = Caller(org_id="o-order", user_id="u-order", user_name="tester")
    rng = random.Random(5)
    try:
        async with database.transaction() as conn:
            root = await bootstrap_root(conn, caller)
            flow_id = (await flows.import_flow(conn, caller, {"flowName": "runs", "dirId": root, "flowJson": {
                "type": 0, "cycle": "D", "cron": "", "tasks": [{"name": "t", "type": "COMMAND", "cmd": "true"}]}}))["flowId"]
            for i in range(23):
                instance_id = await create_flow_instance(conn, flow_id=flow_id, trigger_time_ms=i * MINUTE_MS,
                                                         origin="manual")
                # a third never started; the others started at one of a few times (ties)
                start = None if i % 3 == 0 else rng.choice([5, 6, 7]) * MINUTE_MS
                await conn.execute(sa.update(flow_instances).where(flow_instances.c.instance_id == instance_id)
                                   .values(start_time=start))
        pages: dict[str, list[list[str]]] = {}
        async with database.read_transaction() as conn:
            for order in ("ASC", "DESC"):
                for path, extra in (("indexes", {}), ("general", {"type": 0})):  # a filter: the general path
                    pages[f"{order} {path}"] = [
                        [item["instanceId"] for item in (await operations.list_flow_instances(conn, caller, {
                            "flowId": flow_id, **extra,
                            "pagination": {"pageNo": page, "pageSize": 5,
                                           "sorters": [{"field": "startTime", "order": order}]}},
                            zone=dt.timezone.utc))["flowInsts"]]
                        for page in range(1, 7)]
            rows: Any = (await conn.execute(sa.select(flow_instances.c.instance_id, flow_instances.c.start_time)
                                            .where(flow_instances.c.flow_id == flow_id))).all()
        return pages, [tuple(row) for row in rows]
    finally:
        await database.dispose()


def test_start_time_pages_from_indexes_match_the_general_order(backend: Backend, tmp_path: Path) -> None:
    settings = Settings.load(home=tmp_path / "home", database_url=backend.database_url, environ={}, timezone="UTC")
    pages, rows = asyncio.run(scenario(settings))
    start = dict(rows)
    trigger = {instance_id: instance_id.rsplit("-", 1)[1] for instance_id in start}
    unstarted = sorted((i for i in start if start[i] is None), key=lambda i: trigger[i], reverse=True)

    def by_start(descending: bool) -> list[str]:
        started = [i for i in start if start[i] is not None]
        started.sort(key=lambda i: trigger[i], reverse=True)  # ties: newest trigger first
        started.sort(key=lambda i: start[i], reverse=descending)  # stable
        return unstarted + started if not descending else started + unstarted

    for order, descending in (("ASC", False), ("DESC", True)):
        expected = by_start(descending)
        assert sum(pages[f"{order} indexes"], []) == expected
        assert pages[f"{order} indexes"] == pages[f"{order} general"]
        assert [len(page) for page in pages[f"{order} indexes"]] == [5, 5, 5, 5, 3, 0]
