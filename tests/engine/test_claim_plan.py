"""The engine's per-task statements read by index, never by sorting or scanning all instances.

Each finished task costs a claim (the next READY tasks, oldest instance first) and a look at its
direct downstream tasks; with a workflow of 1,000 tasks either one done by a sort or a scan
makes every step grow with the workflow (docs/performance.md, "Engine"). Checked on SQLite, where
batchd never runs ANALYZE, so the plan is what the schema and the statement make it.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import sqlalchemy as sa

from batchd.config import Settings
from batchd.engine import progress
from batchd.store.database import open_database
from batchd.store.tables import flow_instances, task_attempts


def plan_of(tmp_path: Path, statement: sa.TextClause | sa.Select, parameters: dict[str, object]) -> str:
    async def explain() -> str:
        database = open_database(Settings.load(home=tmp_path, environ={}, timezone="UTC"))
        try:
            await database.migrate()
            bound = statement.bindparams(**parameters) if isinstance(statement, sa.TextClause) else \
                statement.params(**parameters)
            async with database.transaction() as conn:
                sql = str(bound.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
                rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)
                return "\n".join(str(row[-1]) for row in rows)
        finally:
            await database.dispose()

    return asyncio.run(explain())


def test_a_claim_walks_running_instances_in_order_without_sorting(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, progress._READY_TASKS.statement, {"limit": 2})
    assert plan.splitlines()[0].startswith("SEARCH f USING INDEX ix_flow_instances_status_trigger")
    # each running instance's READY tasks by a seek, not every READY task of every instance
    assert "SEARCH t USING INDEX ix_task_instances_status_flow (status=? AND flow_instance_id=?)" in plan, plan
    assert "SCAN" not in plan and "TEMP B-TREE" not in plan


def test_whether_an_instance_has_a_task_left_is_a_seek_not_a_walk_over_its_tasks(tmp_path: Path) -> None:
    """Asked after every task with nothing downstream (each leaf of a fan-out): walking the
    instance's tasks until one is not done made a 1,000-leaf fan-out quadratic."""
    statement = progress._ANY_TASK_LEFT.statement
    plan = plan_of(tmp_path, statement, {"instance_id": "1-x"})
    assert "USING COVERING INDEX ix_task_instances_status_flow (status=? AND flow_instance_id=?)" in plan, plan
    assert "SCAN" not in plan


def test_a_success_reads_its_downstream_tasks_by_name(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, progress._tasks_by_name(2).statement,
                   {"instance_id": "1-x", "name_0": "a", "name_1": "b"})
    assert "USING INDEX ix_task_instances_flow_task (flow_instance_id=? AND task_name=?)" in plan, plan
    assert "SCAN" not in plan


def test_one_workflows_start_time_order_comes_from_indexes_alone(tmp_path: Path) -> None:
    """List Flow Instances of one workflow by startTime: every instance of the workflow is
    ordered, so reading their rows (a long history's worth of random pages) is what must not
    happen; the two partial indexes of migration 0010 hold every key the order needs."""
    from batchd.engine.operations import _start_order_keys

    for descending in (False, True):
        plan = plan_of(tmp_path, _start_order_keys(7, descending).limit(20).offset(20), {})
        assert "USING COVERING INDEX ix_flow_instances_flow_unstarted" in plan, plan
        assert "USING COVERING INDEX ix_flow_instances_flow_started" in plan, plan
        assert "SCAN flow_instances" not in plan and "USING INDEX" not in plan, plan  # no row read


def test_per_task_statements_read_no_instance_column_stored_after_the_snapshot() -> None:
    """On SQLite a row's columns are stored in order and the snapshot (`definition`, tens to
    hundreds of KB) spills into overflow pages: reading a column after it walks them all, ~0.3 ms
    per claim for a 2,000-task workflow. The claim and the outcome read only columns before it
    (the instance's parameters come from the engine's per-instance cache)."""
    order = [column.name for column in flow_instances.c]
    before_snapshot = set(order[:order.index("definition")])
    claimed = set(re.findall(r"\bf\.(\w+)", str(progress._READY_TASKS.statement)))
    selected = [getattr(column, "element", column) for column in progress._ATTEMPT_ROW.statement.selected_columns]
    outcome = {column.name for column in selected if getattr(column, "table", None) is flow_instances}
    assert claimed and outcome  # the statements do read instance columns
    assert claimed <= before_snapshot, claimed - before_snapshot
    assert outcome <= before_snapshot, outcome - before_snapshot


def test_a_listed_page_reads_no_instance_column_stored_after_the_snapshot() -> None:
    """A console refreshing List Flow Instances reads each page's rows again; for instances it
    listed before, their snapshot fields and parameters come from `instances.ListedFlow` (reading
    `parameters` walked a 1 MB snapshot's overflow pages, ~5 ms per refresh)."""
    from batchd.engine.operations import _LISTED_COLUMNS

    order = [column.name for column in flow_instances.c]
    listed = {column.name for column in _LISTED_COLUMNS}
    assert {"instance_id", "status", "created_at"} <= listed
    assert listed <= set(order[:order.index("definition")]), listed - set(order[:order.index("definition")])


def test_open_attempts_are_read_from_the_partial_index_of_open_attempts(tmp_path: Path) -> None:
    """Crash recovery reads every open attempt and the lease renewal one owner's: both from
    `ix_task_attempts_open`, which holds only attempts not ended, however many ran before."""
    recovery_plan = plan_of(tmp_path, sa.select(task_attempts).where(task_attempts.c.ended_at.is_(None)), {})
    assert "USING INDEX ix_task_attempts_open" in recovery_plan, recovery_plan
    renewal = sa.select(task_attempts.c.attempt).where(task_attempts.c.owner == "host:1:abc",
                                                       task_attempts.c.ended_at.is_(None))
    renewal_plan = plan_of(tmp_path, renewal, {})
    assert "USING INDEX ix_task_attempts_open (owner=?)" in renewal_plan, renewal_plan
