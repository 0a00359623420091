"""The scheduler's start-up and one workflow's instances by trigger time read by index (migration
0011 merged the two flow-led indexes of `flow_instances` into `(flow_id, trigger_time, origin)`).

Checked on SQLite, where batchd never runs ANALYZE, so the plan is what the schema and the
statement make it: with 1,000,000 stored instances a scan would read all of them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from batchd.config import Settings
from batchd.store.database import open_database
from batchd.store.tables import flow_instances

INDEX = "ix_flow_instances_flow_trigger_origin"


def plan_of(tmp_path: Path, sql: str) -> str:
    async def explain() -> str:
        database = open_database(Settings.load(home=tmp_path, environ={}, timezone="UTC"))
        try:
            await database.migrate()
            async with database.transaction() as conn:
                rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)
                return "\n".join(str(row[-1]) for row in rows)
        finally:
            await database.dispose()

    return asyncio.run(explain())


def literal(statement: sa.Select) -> str:
    from sqlalchemy.dialects import sqlite

    return str(statement.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))


def test_start_up_walks_each_flows_newest_instances_on_the_index_alone(tmp_path: Path) -> None:
    from batchd.scheduler import service

    captured: list[sa.Select] = []

    class Recorder:
        async def execute(self, statement: sa.Select) -> object:
            captured.append(statement)

            class Empty:
                def all(self) -> list[object]:
                    return []

            return Empty()

    asyncio.run(service._last_fires(Recorder(), None))  # type: ignore[arg-type]
    asyncio.run(service._last_fires(Recorder(), [1, 2]))  # type: ignore[arg-type]
    for statement in captured:
        plan = plan_of(tmp_path, literal(statement))
        assert f"SEARCH flow_instances USING COVERING INDEX {INDEX} (flow_id=?)" in plan, plan
        assert "SCAN flow_instances" not in plan and "TEMP B-TREE" not in plan, plan


def test_one_workflows_instances_newest_first_come_from_the_flow_index(tmp_path: Path) -> None:
    """List Flow Instances of one workflow (default order) and a reference's "instance of this
    business date" look-up: the workflow's own index entries, no scan of the history."""
    newest_first = (sa.select(flow_instances.c.instance_id).where(flow_instances.c.flow_id == 7)
                    .order_by(flow_instances.c.trigger_time.desc(), flow_instances.c.instance_id).limit(20))
    count = sa.select(sa.func.count()).select_from(flow_instances).where(flow_instances.c.flow_id == 7)
    by_date = (sa.select(flow_instances.c.instance_id)
               .where(flow_instances.c.flow_id == 7, flow_instances.c.cal_dt == "2026-01-01")
               .order_by(flow_instances.c.trigger_time.desc()).limit(1))
    for statement in (newest_first, count, by_date):
        plan = plan_of(tmp_path, literal(statement))
        assert f"USING INDEX {INDEX} (flow_id=?)" in plan or f"USING COVERING INDEX {INDEX} (flow_id=?)" in plan, plan
        assert "SCAN" not in plan, plan
