"""The Scheduler on a real database (SQLite and PostgreSQL) with a manual clock.

Every workflow fires each second (`*/1 * * * * ?`); the clock moves only when a test says so, and
`settle` waits until the scheduler has finished its pass for the current clock time. Instances are
made by the engine's real `create_flow_instance`, so the instance id is the real unique key.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from servicekit import Backend

from batchd.api.context import Caller
from batchd.catalog import directories as dirs
from batchd.catalog import flow_store
from batchd.catalog import flows as ops
from batchd.config import Settings
from batchd.scheduler.plan import MissedFirePolicy
from batchd.scheduler.service import Fired, ManualClock, Scheduler
from batchd.store import identity
from batchd.store.database import Database, open_database
from batchd.store.tables import flow_instances, flows

pytestmark = pytest.mark.anyio

ZONE = "Europe/Berlin"
T0 = int(dt.datetime(2026, 5, 5, 12, 0, 0, tzinfo=ZoneInfo(ZONE)).timestamp())  # the clock's start
EVERY_SECOND = "*/1 * * * * ?"


ALICE = Caller(org_id="o1", user_id="u1", user_name="alice")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(backend: Backend, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", database_url=backend.database_url, timezone=ZONE)


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = open_database(settings)
    await db.migrate()
    async with db.transaction() as conn:
        await identity.create_org(conn, "o1", "o1")
        await identity.add_user(conn, org_id="o1", user_id="u1", name="alice")
    yield db
    await db.dispose()


class Harness:
    """Schedulers on a shared manual clock, with helpers to arrange flows and read instances."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self.clock = ManualClock(T0)
        self.tasks: list[tuple[Scheduler, asyncio.Task[None]]] = []
        self.fired: list[Fired] = []
        self.flows_made = 0

    def start(self, database: Database | None = None, **options: Any) -> Scheduler:
        options.setdefault("poll_seconds", 1.0)
        scheduler = Scheduler(
            database or self.database, self.settings, clock=self.clock, on_fired=self.fired.append, **options
        )
        self.tasks.append((scheduler, asyncio.create_task(scheduler.run())))
        return scheduler

    async def stop(self, scheduler: Scheduler) -> None:
        await asyncio.wait_for(scheduler.stop(), 5)
        for entry in [e for e in self.tasks if e[0] is scheduler]:
            await asyncio.wait_for(entry[1], 5)
            self.tasks.remove(entry)

    async def settle(self) -> None:
        """Wait until every running scheduler has finished its pass for the clock's time."""
        async def settled() -> None:
            while not all(s.is_idle() for s, _ in self.tasks):
                for _, task in self.tasks:
                    if task.done():
                        task.result()  # surface a crashed loop
                await asyncio.sleep(0.005)

        await asyncio.wait_for(settled(), 20)

    async def tick(self, seconds: int = 1, times: int = 1) -> None:
        for _ in range(times):
            self.clock.advance(seconds)
            await self.settle()

    async def add_flow(self, *, cron: str = EVERY_SECOND, start: str = "2026-01-01", active: bool = True) -> int:
        async with self.database.transaction() as conn:
            root = (await dirs.list_directories(conn, ALICE))[0]["key"]
            self.flows_made += 1
            body = {"flowName": f"f{self.flows_made}", "dirId": root, "flowJson": {
                "type": 1, "cycle": "mi", "cron": cron, "owners": "alice", "startTime": start,
                "tasks": [{"name": "a", "type": "COMMAND", "cmd": "echo a"}],
            }}
            flow_id = (await ops.import_flow(conn, ALICE, body))["flowId"]
        await self.update(flow_id, active=int(active), cron=cron, start_date=start)
        return flow_id

    async def update(self, flow_id: int, **values: Any) -> None:
        """Change a flow's row as the catalogue does: update_time is the (manual) clock's now."""
        async with self.database.transaction() as conn:
            await conn.execute(
                sa.update(flows).where(flows.c.flow_id == flow_id).values(update_time=int(self.clock.now() * 1000), **values)
            )

    async def trigger_times(self, flow_id: int) -> list[int]:
        """Epoch seconds of the flow's scheduled instances, in order (asserting ids are unique)."""
        async with self.database.transaction() as conn:
            rows = (await conn.execute(
                sa.select(flow_instances.c.instance_id, flow_instances.c.trigger_time)
                .where(flow_instances.c.flow_id == flow_id, flow_instances.c.origin == "schedule")
                .order_by(flow_instances.c.trigger_time)
            )).all()
        assert len({r.instance_id for r in rows}) == len(rows)
        return [r.trigger_time // 1000 for r in rows]

    async def close(self) -> None:
        for scheduler, _ in list(self.tasks):
            await self.stop(scheduler)


@pytest.fixture
async def harness(database: Database, settings: Settings) -> AsyncIterator[Harness]:
    h = Harness(database, settings)
    yield h
    await h.close()


def seconds(first: int, last: int) -> list[int]:
    return list(range(T0 + first, T0 + last + 1))


async def test_one_instance_per_fire(harness: Harness) -> None:
    flow_id = await harness.add_flow()
    harness.start()
    await harness.settle()
    await harness.tick(times=5)
    assert await harness.trigger_times(flow_id) == seconds(1, 5)
    async with harness.database.transaction() as conn:
        row = (await conn.execute(sa.select(flow_instances).where(flow_instances.c.trigger_time == (T0 + 1) * 1000))).one()
    assert row.instance_id == f"{flow_id}-20260505120001" and row.cal_dt == "2026-05-04" and row.status == 0


async def test_two_schedulers_on_one_database_make_each_fire_once(harness: Harness, settings: Settings) -> None:
    flow_ids = [await harness.add_flow() for _ in range(3)]
    other = open_database(settings)  # a second process has its own engine and connections
    try:
        harness.start()
        harness.start(other)
        await harness.settle()
        await harness.tick(times=4)
        for flow_id in flow_ids:
            assert await harness.trigger_times(flow_id) == seconds(1, 4)
        made = [f for f in harness.fired if f.instance_id is not None]
        assert len(made) == 12 and len(harness.fired) == 24  # each fire tried twice, made once
    finally:
        await harness.close()
        await other.dispose()


async def test_restart_neither_doubles_nor_floods(harness: Harness, settings: Settings) -> None:
    flow_id = await harness.add_flow()
    first = harness.start()
    await harness.settle()
    await harness.tick(times=3)
    await harness.stop(first)
    # Restart at once: continues after the newest scheduled instance, nothing made twice.
    second = harness.start(open_database(settings))
    await harness.settle()
    await harness.tick(times=2)
    assert await harness.trigger_times(flow_id) == seconds(1, 5)
    await harness.stop(second)
    # Ten minutes down: 600 missed fires become one (the latest), then it carries on.
    harness.clock.advance(600)
    harness.start(open_database(settings))
    await harness.settle()
    await harness.tick(times=2)
    assert await harness.trigger_times(flow_id) == seconds(1, 5) + [T0 + 605, T0 + 606, T0 + 607]


async def test_restart_with_the_all_policy_catches_up_to_its_cap(harness: Harness, settings: Settings) -> None:
    flow_id = await harness.add_flow()
    harness.clock.advance(300)
    harness.start(policy=MissedFirePolicy(mode="all", cap=10))
    await harness.settle()
    assert await harness.trigger_times(flow_id) == seconds(291, 300)


async def test_disable_stops_new_instances_and_enable_resumes(harness: Harness) -> None:
    flow_id = await harness.add_flow()
    scheduler = harness.start(policy=MissedFirePolicy(grace_seconds=2))
    await harness.settle()
    await harness.tick(times=2)
    await harness.update(flow_id, active=0)
    scheduler.notify(flow_id)
    await harness.tick(times=5)
    assert await harness.trigger_times(flow_id) == seconds(1, 2)
    assert scheduler.planned(flow_id) is None
    # Enabled again after 5 s paused (beyond the 2 s grace): the latest missed fire, then on.
    await harness.update(flow_id, active=1)
    scheduler.notify(flow_id)
    await harness.settle()
    await harness.tick()
    assert await harness.trigger_times(flow_id) == seconds(1, 2) + seconds(7, 8)


async def test_a_disable_by_another_process_is_seen_before_the_next_fire(harness: Harness) -> None:
    flow_id = await harness.add_flow()
    harness.start(poll_seconds=3600)  # no poll in this test: only the fire-time check can see it
    await harness.settle()
    await harness.tick(times=2)
    await harness.update(flow_id, active=0)
    await harness.tick(times=3)
    assert await harness.trigger_times(flow_id) == seconds(1, 2)


async def test_changes_are_picked_up_by_the_poll_without_notify(harness: Harness) -> None:
    scheduler = harness.start(poll_seconds=2)
    await harness.settle()
    flow_id = await harness.add_flow()  # imported and enabled by "another process"
    await harness.tick(times=2)  # the poll at +2 s finds it; it fires from its enable time on
    await harness.tick(times=2)
    assert await harness.trigger_times(flow_id) == seconds(1, 4)
    await harness.update(flow_id, cron="0/5 * * * * ?")  # a new cron, saved at +4 s
    await harness.tick(times=8)
    assert await harness.trigger_times(flow_id) == seconds(1, 4) + [T0 + 5, T0 + 10]
    assert scheduler.planned(flow_id).cron.text == "0/5 * * * * ?"


async def test_a_cron_change_does_not_back_fill_the_new_schedule(harness: Harness) -> None:
    flow_id = await harness.add_flow(cron="0 0 * * * ?")
    scheduler = harness.start()
    await harness.settle()
    harness.clock.advance(30 * 60)  # 12:30: a new cron that would have fired at 12:15
    await harness.update(flow_id, cron="0 15,45 * * * ?")
    scheduler.notify(flow_id)
    await harness.settle()
    assert await harness.trigger_times(flow_id) == []
    assert scheduler.next_due() == T0 + 45 * 60


async def test_start_time_in_the_future_and_deleted_flows(harness: Harness) -> None:
    later = await harness.add_flow(start="2026-05-06")
    gone = await harness.add_flow()
    scheduler = harness.start()
    await harness.settle()
    await harness.tick(times=2)
    async with harness.database.transaction() as conn:
        await flow_store.delete_flow_rows(conn, gone)
    scheduler.notify(gone)
    await harness.tick(times=2)
    assert await harness.trigger_times(later) == []
    assert scheduler.planned(gone) is None and scheduler.planned(later) is not None
    assert scheduler.next_due() == int(dt.datetime(2026, 5, 6, tzinfo=ZoneInfo(ZONE)).timestamp())


async def test_a_flow_that_cannot_be_instantiated_does_not_block_the_others(harness: Harness) -> None:
    good, bad = await harness.add_flow(), await harness.add_flow()
    seen: list[int] = []

    async def create(conn: Any, *, flow_id: int, **kwargs: Any) -> str | None:
        from batchd.engine.instances import create_flow_instance
        from batchd.errors import IllegalState

        seen.append(flow_id)
        if flow_id == bad:
            await conn.execute(sa.update(flows).where(flows.c.flow_id == good).values(name="rolled back"))
            raise IllegalState("This workflow has no task. You cannot trigger it.")
        return await create_flow_instance(conn, flow_id=flow_id, **kwargs)

    harness.start(create_instance=create)
    await harness.settle()
    await harness.tick(times=2)
    assert await harness.trigger_times(good) == seconds(1, 2) and await harness.trigger_times(bad) == []
    assert set(seen) == {good, bad}
    async with harness.database.transaction() as conn:  # the refused fire's writes were undone
        assert (await conn.execute(sa.select(flows.c.name).where(flows.c.flow_id == good))).scalar_one() != "rolled back"


async def test_stop_returns_promptly_while_idle(harness: Harness) -> None:
    scheduler = harness.start()
    await harness.settle()
    loop = asyncio.get_running_loop()
    began = loop.time()
    await harness.stop(scheduler)
    assert loop.time() - began < 0.5


async def test_the_resync_finds_a_change_the_poll_could_not_see(harness: Harness) -> None:
    # The enable below stands for another process's write: this process's write watch (which
    # would notify at once) is off, so only the poll and the resync can find it.
    scheduler = harness.start(resync_seconds=10, watch_writes=False)
    await harness.settle()
    flow_id = await harness.add_flow()
    harness.clock.advance(-3600)  # enabled with a time far behind the poll's window
    await harness.update(flow_id, active=1)
    harness.clock.advance(3600)
    await harness.tick(times=5)
    assert scheduler.planned(flow_id) is None and await harness.trigger_times(flow_id) == []
    await harness.tick(times=5)  # the resync at +10 s: an hour since "enable", so the latest fire
    assert scheduler.planned(flow_id) is not None
    assert await harness.trigger_times(flow_id) == [T0 + 10]


async def test_batch_creation_copies_the_stored_definition_and_answers_per_request(harness: Harness) -> None:
    """`create_flow_instances` (the scheduler's path): the snapshot is the document Get Flow's
    model would serialise, task rows are the flow's tasks, and each request gets its own answer."""
    from batchd.catalog.shapes import to_document
    from batchd.engine.instances import InstanceRequest, create_flow_instance, create_flow_instances
    from batchd.errors import IllegalState, InvalidParameter
    from batchd.store.tables import task_instances

    flow_id = await harness.add_flow(active=False)
    async with harness.database.transaction() as conn:
        root = (await dirs.list_directories(conn, ALICE))[0]["key"]
        body = {"flowName": "params", "dirId": root, "flowJson": {
            "type": 0, "cycle": "D", "owners": "alice", "parameters": '[{"key":"x","value":"1"},{"key":"y","value":"2"}]',
            "tasks": [{"name": "a", "type": "COMMAND", "cmd": "echo ${x}"}, {"name": "b", "type": "COMMAND", "cmd": "b"}],
            "relations": [{"sourceTaskName": "a", "targetTaskName": "b", "rerun": True}],
        }}
        with_params = (await ops.import_flow(conn, ALICE, body))["flowId"]
        empty = (await ops.import_flow(conn, ALICE, {"flowName": "empty", "dirId": root, "flowJson": {
            "type": 0, "cycle": "D", "owners": "alice", "tasks": []}}))["flowId"]
    t = T0 * 1000
    requests = [
        InstanceRequest(flow_id=flow_id, trigger_time_ms=t, origin="schedule"),
        InstanceRequest(flow_id=with_params, trigger_time_ms=t, origin="schedule", parameters={"y": "9", "z": "3"}),
        InstanceRequest(flow_id=flow_id, trigger_time_ms=t, origin="schedule"),  # same id again
        InstanceRequest(flow_id=empty, trigger_time_ms=t, origin="schedule"),
        InstanceRequest(flow_id=999_999, trigger_time_ms=t, origin="schedule"),
    ]
    async with harness.database.transaction() as conn:
        answers = await create_flow_instances(conn, requests, zone=ZoneInfo(ZONE))
        again = await create_flow_instances(conn, requests[:2], zone=ZoneInfo(ZONE))
    assert [a.instance_id for a in answers] == [f"{flow_id}-20260505120000", f"{with_params}-20260505120000",
                                                None, None, None]
    assert isinstance(answers[3].refused, IllegalState) and isinstance(answers[4].refused, InvalidParameter)
    assert [a.instance_id for a in again] == [None, None]
    async with harness.database.transaction() as conn:
        stored = await flow_store.find_flow(conn, with_params)
        row = (await conn.execute(sa.select(flow_instances).where(
            flow_instances.c.instance_id == f"{with_params}-20260505120000"))).one()
        tasks = (await conn.execute(sa.select(task_instances.c.task_name, task_instances.c.status, task_instances.c.task_id)
                                    .where(task_instances.c.flow_instance_id == row.instance_id)
                                    .order_by(task_instances.c.task_name))).all()
        # Trigger From Task shares the implementation: b alone runs, a is SKIP (status 10).
        from_b = await create_flow_instance(conn, flow_id=with_params, trigger_time_ms=t + 60_000, origin="manual",
                                            start_task_id=tasks[1].task_id, zone=ZoneInfo(ZONE))
        skipped = (await conn.execute(sa.select(task_instances.c.task_name, task_instances.c.status)
                                      .where(task_instances.c.flow_instance_id == from_b)
                                      .order_by(task_instances.c.task_name))).all()
    assert row.definition == to_document(stored.definition)
    assert row.flow_name == "params" and row.owners == "alice" and row.cal_dt == "2026-05-04"
    assert row.parameters == '[{"key":"x","value":"1"},{"key":"y","value":"9"},{"key":"z","value":"3"}]'
    assert [(r.task_name, r.status) for r in tasks] == [("a", 0), ("b", 0)]
    assert [(r.task_name, r.status) for r in skipped] == [("a", 10), ("b", 0)]


async def test_the_missed_fire_policy_comes_from_the_settings(harness: Harness, settings: Settings) -> None:
    """BATCHD_SCHEDULER_MISSED_FIRES=none: after downtime nothing is caught up (default: the latest)."""
    flow_id = await harness.add_flow()
    first = harness.start()
    await harness.settle()
    await harness.tick(times=2)
    await harness.stop(first)
    harness.clock.advance(600)
    configured = Settings.load(home=settings.home, database_url=settings.database_url, timezone=ZONE,
                               environ={"BATCHD_SCHEDULER_MISSED_FIRES": "none"})
    harness.tasks.append(
        (s := Scheduler(harness.database, configured, clock=harness.clock, on_fired=harness.fired.append),
         asyncio.create_task(s.run())))
    await harness.settle()
    await harness.tick()
    assert await harness.trigger_times(flow_id) == seconds(1, 2) + [T0 + 603]


async def test_a_write_to_flows_in_this_process_applies_without_waiting_for_the_poll(harness: Harness) -> None:
    """Import/Save/Enable/Disable/Delete commit through the process's database: the scheduler
    hears of it at once (FlowWriteWatch), even with an hour-long change poll."""
    scheduler = harness.start(poll_seconds=3600)
    await harness.settle()
    flow_id = await harness.add_flow()  # imported and enabled after the scheduler's full load
    await harness.settle()
    assert scheduler.planned(flow_id) is not None
    await harness.tick(times=2)
    assert await harness.trigger_times(flow_id) == seconds(1, 2)
    await harness.update(flow_id, active=0)
    await harness.settle()
    assert scheduler.planned(flow_id) is None
    async with harness.database.transaction() as conn:  # a rolled-back write notifies nothing
        await conn.execute(sa.update(flows).where(flows.c.flow_id == flow_id).values(active=1))
        await conn.rollback()
    await harness.tick(times=2)
    assert await harness.trigger_times(flow_id) == seconds(1, 2)


async def test_a_changed_document_is_copied_by_the_next_fire(harness: Harness) -> None:
    """The batch's parse of each stored document is remembered per flow (`plain_snapshot`); a
    new text — here written behind the catalogue's back, update_time unchanged — is read anew."""
    import json

    from batchd.store.tables import task_instances

    flow_id = await harness.add_flow()
    harness.start()
    await harness.settle()
    await harness.tick()
    async with harness.database.transaction() as conn:
        document = json.loads((await conn.execute(sa.select(flows.c.definition).where(flows.c.flow_id == flow_id))).scalar_one())
        document["parameters"] = '[{"key":"k","value":"v2"}]'
        document["tasks"].append({**document["tasks"][0], "name": "b", "taskId": document["tasks"][0]["taskId"] + 1000})
        changed = json.dumps(document)
        await conn.execute(sa.update(flows).where(flows.c.flow_id == flow_id).values(definition=changed))
    await harness.tick()
    async with harness.database.transaction() as conn:
        rows = (await conn.execute(sa.select(flow_instances.c.instance_id, flow_instances.c.definition,
                                             flow_instances.c.parameters)
                                   .where(flow_instances.c.flow_id == flow_id).order_by(flow_instances.c.trigger_time))).all()
        tasks = (await conn.execute(sa.select(task_instances.c.task_name)
                                    .where(task_instances.c.flow_instance_id == rows[1].instance_id)
                                    .order_by(task_instances.c.task_name))).scalars().all()
    assert rows[0].definition != changed and rows[0].parameters == "[]"
    assert rows[1].definition == changed and rows[1].parameters == '[{"key":"k","value":"v2"}]'
    assert tasks == ["a", "b"]


async def test_a_flow_with_references_fires_through_the_model_path(harness: Harness) -> None:
    """A document the batch cannot copy as is (flow/task references: their names are shown as
    they are now) is left out of the worker's transaction and made by the async path, in the
    same pass."""
    async with harness.database.transaction() as conn:
        root = (await dirs.list_directories(conn, ALICE))[0]["key"]
        await ops.import_flow(conn, ALICE, {"flowName": "up", "dirId": root, "flowJson": {
            "type": 0, "cycle": "D", "owners": "alice", "tasks": [{"name": "x", "type": "COMMAND", "cmd": "x"}]}})
        linked = (await ops.import_flow(conn, ALICE, {"flowName": "down", "dirId": root, "flowJson": {
            "type": 1, "cycle": "mi", "cron": EVERY_SECOND, "owners": "alice", "startTime": "2026-01-01",
            "tasks": [{"name": "a", "type": "COMMAND", "cmd": "echo a"}],
            "flowLinks": [{"linkId": "0", "sourceFlowName": "up"}],
            "linkRelations": [{"linkId": "0", "targetTaskName": "a", "rerun": False}]}}))["flowId"]
    await harness.update(linked, active=1)
    plain = await harness.add_flow()
    harness.start()
    await harness.settle()
    await harness.tick(times=2)
    assert await harness.trigger_times(linked) == seconds(1, 2)
    assert await harness.trigger_times(plain) == seconds(1, 2)


async def test_start_up_reads_the_newest_scheduled_fire_of_each_flow(harness: Harness) -> None:
    """`_last_fires`: manual instances newer than the last scheduled one do not count; a flow
    with none scheduled has no entry; all flows, or the ones asked for."""
    from batchd.engine.instances import create_flow_instance
    from batchd.scheduler.service import _last_fires

    a, b, c = [await harness.add_flow(active=False) for _ in range(3)]
    async with harness.database.transaction() as conn:
        for flow_id, when, origin in [(a, 60, "schedule"), (a, 120, "schedule"), (a, 600, "manual"),
                                      (b, 60, "manual"), (c, 180, "schedule")]:
            await create_flow_instance(conn, flow_id=flow_id, trigger_time_ms=(T0 + when) * 1000, origin=origin,
                                       zone=ZoneInfo(ZONE))
        every = await _last_fires(conn, None)
        some = await _last_fires(conn, [a, b])
    assert every == {a: (T0 + 120) * 1000, c: (T0 + 180) * 1000}
    assert some == {a: (T0 + 120) * 1000}
