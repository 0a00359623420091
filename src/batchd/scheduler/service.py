"""The `Scheduler`: one loop per batchd process turning due fire times into flow instances.

Each pass of the loop does these steps (fires before the change poll, see `_pass`):

1. full load (at start, then every `resync_seconds` as a safety net): every enabled periodic
   flow (`type` 1, `active` 1) and, per flow, its newest instance of origin `schedule`, so a
   restart continues from the database and neither doubles nor floods (`plan` anchors);
2. changes (every `poll_seconds`, or at once after `notify()`): only the `flows` rows whose
   `update_time` is newer than the start of the previous read minus `CHANGE_OVERLAP_MS` (a
   transaction may commit a while after it took its `update_time`, and writers' clocks may be a
   little behind ours), plus the flows named by `notify(flow_id)` — so enable, disable, a new
   cron, delete and import are picked up without reading every workflow. Rows read again
   unchanged cost a comparison;
3. fires: every heap entry due by now, in batches of `batch_size` per transaction; each flow's
   row is read again inside that transaction, so a flow disabled, deleted or re-scheduled by any
   process since step 2 is re-planned instead of fired; each fire is
   one `engine.instances.create_flow_instances` call for the whole batch (one flow read, the
   stored documents copied as is, one executemany per table), which answers per fire: a refused
   fire (a workflow without tasks) is logged and skipped without undoing the others; an injected
   `create_instance` (tests) runs per fire and, when it refuses one, the batch is redone with a
   savepoint per fire; None means another process already made that fire — the
   instance id is the unique key that keeps several schedulers on one database from doubling it;
4. reschedule each fired flow at its next fire and sleep until the earliest due time, the next
   change poll, `notify()` or `stop()`, whichever comes first.

The loop does not sleep while entries are due: a pass that hit `batch_size` runs again at once.
A failing pass (database away) is logged and retried after `RETRY_SECONDS`; nothing is marked
fired unless its transaction committed, so the retry makes the same fires.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import Protocol, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from batchd.config import Settings
from batchd.cron import CronSyntaxError
from batchd.engine.dispatcher import wake_all
from batchd.engine.instances import (
    Creation,
    InstanceRequest,
    Snapshot,
    create_flow_instance,
    create_flow_instances,
    create_instances_now,
    plain_snapshot,
)
from batchd.errors import BatchdError
from batchd.scheduler import plan
from batchd.scheduler.plan import FireQueue, MissedFirePolicy, PolicyMode, ScheduledFlow
from batchd.scheduler.watch import FlowWriteWatch
from batchd.store.database import Database
from batchd.store.tables import flow_instances, flows

log = logging.getLogger("batchd.scheduler")

PERIODIC = 1
CHANGE_OVERLAP_MS = 5_000
RETRY_SECONDS = 1.0


class Clock(Protocol):
    """Where the scheduler reads time and waits; tests pass a `ManualClock`."""

    def now(self) -> float:
        """Epoch seconds."""

    async def wait(self, wake: asyncio.Event, deadline: float) -> None:
        """Return when `wake` is set or `now()` reaches `deadline`, whichever is first."""


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def wait(self, wake: asyncio.Event, deadline: float) -> None:
        timeout = deadline - time.time()
        if timeout <= 0 or wake.is_set():
            return
        try:
            await asyncio.wait_for(wake.wait(), timeout)
        except TimeoutError:
            pass


class ManualClock:
    """A clock that moves only when told (`advance`, `set`); waiters wake as it passes them."""

    def __init__(self, start: float) -> None:
        self._now = start
        self._tick = asyncio.Event()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self.set(self._now + seconds)

    def set(self, moment: float) -> None:
        self._now = moment
        self._tick.set()
        self._tick = asyncio.Event()

    async def wait(self, wake: asyncio.Event, deadline: float) -> None:
        while not wake.is_set() and self._now < deadline:
            waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(self._tick.wait())]
            _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in pending:
                waiter.cancel()


@dataclass(frozen=True)
class Fired:
    """One fire the scheduler handled: `instance_id` None when another process had made it."""

    flow_id: int
    fire_time: int  # epoch s, the nominal trigger time
    instance_id: str | None
    committed_at: float  # clock time after the commit


CreateInstance = Callable[..., Awaitable[str | None]]


class Scheduler:
    """Creates the instances of every enabled periodic workflow at its Quartz fire times.

    `run()` loops until `stop()`; `notify(flow_id)` tells it a flow changed so the change applies
    before the next poll. Writes to `flows` through this process's database (Import, Save,
    Enable, Disable, Delete) notify by themselves (`watch.FlowWriteWatch`).
    """

    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        clock: Clock | None = None,
        policy: MissedFirePolicy | None = None,
        poll_seconds: float = 1.0,
        resync_seconds: float = 300.0,
        batch_size: int = 200,
        create_instance: CreateInstance | None = None,
        on_fired: Callable[[Fired], None] | None = None,
        watch_writes: bool = True,
    ) -> None:
        self._database = database
        self._zone: dt.tzinfo = settings.zone
        self._clock: Clock = clock or SystemClock()
        # The app passes no policy: the configured one (BATCHD_SCHEDULER_MISSED_FIRES) applies.
        self._policy = policy or MissedFirePolicy(mode=cast(PolicyMode, settings.scheduler_missed_fires))
        self._poll_seconds = poll_seconds
        self._resync_seconds = resync_seconds
        self._batch_size = batch_size
        self._create_instance = create_instance
        self._on_fired = on_fired
        self._watch_writes = watch_writes  # FlowWriteWatch: this process's `flows` writes notify at once
        self._flows: dict[int, ScheduledFlow] = {}
        self._after: dict[int, int] = {}  # per flow: every fire up to this epoch s is handled
        self._queue = FireQueue()
        self._read_since_ms = 0  # clock time (ms) at which the previous read of `flows` began
        self._notified: set[int] = set()
        self._changes_requested = False
        self._next_resync = 0.0
        self._next_poll = 0.0
        self._wake = asyncio.Event()
        self._stopping = False
        self._running: asyncio.Future[None] | None = None
        self._waiting_until: float | None = None  # the deadline of the current wait, None when busy

    # --- public --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Loop until `stop()`; the steps are in the module docstring."""
        self._running = asyncio.get_running_loop().create_future()
        watch = FlowWriteWatch(self._database.engine, self.notify) if self._watch_writes else None
        try:
            while not self._stopping:
                self._waiting_until = None
                try:
                    busy = await self._pass()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("scheduler pass failed; retrying in %.0f s", RETRY_SECONDS)
                    await self._sleep_until(self._clock.now() + RETRY_SECONDS)
                    continue
                if busy:  # a full batch: more may be due, so no sleep (but let others run)
                    await asyncio.sleep(0)
                    continue
                due = self._queue.peek()
                deadline = self._next_poll if due is None else min(due, self._next_poll)
                await self._sleep_until(deadline)
        finally:
            if watch is not None:
                watch.close()
            self._running.set_result(None)
            self._running = None

    async def stop(self) -> None:
        """Wake the loop and return once it has finished its current pass."""
        self._stopping = True
        self._wake.set()
        if self._running is not None:
            await asyncio.shield(self._running)

    def notify(self, flow_id: int | None = None) -> None:
        """A flow changed (or, with None, possibly several): read the changes now."""
        if flow_id is not None:
            self._notified.add(flow_id)
        self._changes_requested = True
        self._wake.set()

    def next_due(self) -> int | None:
        """The earliest planned fire (epoch s) over all flows, or None."""
        return self._queue.peek()

    def planned(self, flow_id: int) -> ScheduledFlow | None:
        return self._flows.get(flow_id)

    def is_idle(self) -> bool:
        """True while the loop waits with nothing to do before its deadline (tests settle on it)."""
        return (
            self._waiting_until is not None and self._waiting_until > self._clock.now() and not self._wake.is_set()
        )

    # --- the pass ------------------------------------------------------------------------------

    async def _pass(self) -> bool:
        now = self._clock.now()
        if now >= self._next_resync:
            await self._load_all()
            self._next_resync = now + self._resync_seconds
            self._next_poll = now + self._poll_seconds
        # Fires before the change poll: both fall on whole seconds, and a fire need not wait for
        # the poll, since each fire re-reads its flow's row anyway (step 3).
        busy = await self._fire_due(int(self._clock.now()))
        if self._changes_requested or now >= self._next_poll:
            self._changes_requested = False
            await self._load_changes()
            self._next_poll = now + self._poll_seconds
        return busy

    async def _sleep_until(self, deadline: float) -> None:
        if self._stopping:
            return
        self._waiting_until = deadline
        await self._clock.wait(self._wake, deadline)
        self._wake.clear()

    # --- reading flows -------------------------------------------------------------------------

    async def _load_all(self) -> None:
        self._read_since_ms = int(self._clock.now() * 1000)
        # Reading only: a read transaction takes no write lock, so an Import right after does
        # not queue behind the scheduler's look at what it changed.
        async with self._database.read_transaction() as conn:
            rows = (await conn.execute(_FLOW_COLUMNS.where(flows.c.type == PERIODIC, flows.c.active == 1))).all()
            # Newest scheduled instances only for flows not planned yet: at start every flow (one
            # grouped scan), at a later resync the few that slipped past the change poll.
            fresh = [row.flow_id for row in rows if row.flow_id not in self._flows]
            last = await _last_fires(conn, None if len(fresh) == len(rows) else fresh)
        keep = {row.flow_id for row in rows}
        for flow_id in [f for f in self._flows if f not in keep]:
            self._forget(flow_id)
        for row in rows:
            self._apply(row, last.get(row.flow_id))
        log.info("scheduler: %d enabled periodic workflows", len(self._flows))

    async def _load_changes(self) -> None:
        named, self._notified = self._notified, set()
        since = self._read_since_ms - CHANGE_OVERLAP_MS
        self._read_since_ms = int(self._clock.now() * 1000)
        async with self._database.read_transaction() as conn:
            condition = flows.c.update_time > since
            if named:
                condition = sa.or_(condition, flows.c.flow_id.in_(named))
            rows = (await conn.execute(_FLOW_COLUMNS.where(condition))).all()
            fresh = [r for r in rows if _schedulable(r) and r.flow_id not in self._flows]
            last = await _last_fires(conn, [r.flow_id for r in fresh]) if fresh else {}
        for flow_id in named - {row.flow_id for row in rows}:
            self._forget(flow_id)  # deleted
        for row in rows:
            self._apply(row, last.get(row.flow_id))

    def _apply(self, row: sa.Row, last_fire_ms: int | None) -> bool:
        """Bring one flow's plan in line with its row; True when its fires are unchanged."""
        flow_id = row.flow_id
        current = self._flows.get(flow_id)
        if not _schedulable(row):
            self._forget(flow_id)
            return False
        if current is not None and current.update_time_ms == row.update_time:
            return True
        try:
            if current is not None and current.schedule_key == (row.cron, row.start_date):
                # Saved without a schedule change (description, tasks...): keep the plan.
                self._flows[flow_id] = replace(current, update_time_ms=row.update_time)
                return True
            if current is not None:  # a new cron or startTime applies from the moment it was saved
                anchor = max(self._after[flow_id], row.update_time // 1000)
            elif last_fire_ms is not None:  # continue after the newest scheduled instance
                anchor = last_fire_ms // 1000
            else:  # never fired: from the moment it was enabled (best known: its update_time)
                anchor = row.update_time // 1000
            flow = plan.scheduled_flow(
                flow_id=flow_id, cron=row.cron, zone=self._zone, start_date=row.start_date, anchor=anchor,
                update_time_ms=row.update_time,
            )
        except (CronSyntaxError, ValueError) as exc:
            log.warning("scheduler: workflow %s is not scheduled: %s", flow_id, exc)
            self._forget(flow_id)
            return False
        self._flows[flow_id] = flow
        self._after[flow_id] = anchor
        self._queue.schedule(flow_id, plan.next_fire(flow, anchor))
        return False

    def _forget(self, flow_id: int) -> None:
        self._flows.pop(flow_id, None)
        self._after.pop(flow_id, None)
        self._queue.remove(flow_id)

    # --- firing --------------------------------------------------------------------------------

    async def _fire_due(self, now: int) -> bool:
        """Create the instances due by `now`; True when a batch was full (more may be due)."""
        due = self._queue.pop_due(now)
        if not due:
            return False
        batch, rest = due[: self._batch_size], due[self._batch_size:]
        for due_time, flow_id in rest:  # back in the queue for the next, immediate pass
            self._queue.schedule(flow_id, due_time)
        try:
            try:
                fired = await self._fire_batch(batch, now, careful=False)
            except _Refused:  # the engine refused a fire: again, each fire in its own savepoint
                fired = await self._fire_batch(batch, now, careful=True)
        except BaseException:
            for due_time, flow_id in batch:  # nothing committed: the retry makes the same fires
                if flow_id in self._flows and flow_id not in self._queue:
                    self._queue.schedule(flow_id, due_time)
            raise
        committed_at = self._clock.now()
        if self._on_fired is not None:
            for flow_id, fire_time, instance_id in fired:
                self._on_fired(Fired(flow_id, fire_time, instance_id, committed_at))
        if fired:
            wake_all(0)  # committed: the engine admits the new instances now, not at its next poll
        return bool(rest)

    async def _fire_batch(
        self, batch: list[tuple[int, int]], now: int, *, careful: bool
    ) -> list[tuple[int, int, str | None]]:
        """Make `batch`'s fires: with the engine's batch creation, one transaction in one hop to
        the database's worker thread (`_fire_in_one_hop`); with an injected `create_instance`
        (tests), or for flows whose stored document only the model path reads, `_fire_batch_async`."""
        if self._create_instance is not None:
            return await self._fire_batch_async(batch, now, careful=careful)
        # Planned here, checked in the hop: a flow fires only if its row is still what the plan
        # was made from (the test of `_apply`); any other row is re-planned after the hop.
        plans: dict[int, _Plan] = {}
        for _, flow_id in batch:
            flow = self._flows.get(flow_id)
            if flow is not None:
                fires = plan.due_fires(flow, self._after[flow_id], now, self._policy).fires
                plans[flow_id] = _Plan(flow.update_time_ms, flow.schedule_key, tuple(fires))
        hop = await self._database.run_write(functools.partial(_fire_in_one_hop, plans=plans, zone=self._zone))
        found = {row.flow_id for row in hop.rows}
        for flow_id in plans.keys() - found:
            self._forget(flow_id)  # deleted
        for row in hop.rows:
            if row.flow_id not in hop.deferred:
                self._apply(row, None)
        fired: list[tuple[int, int, str | None]] = []
        for creation in hop.creations:
            request = creation.request
            if creation.refused is not None:  # e.g. a workflow without tasks: skip this fire
                log.warning("scheduler: workflow %s fire at %s not created: %s",
                            request.flow_id, request.trigger_time_ms // 1000, creation.refused)
            fired.append((request.flow_id, request.trigger_time_ms // 1000, creation.instance_id))
        for flow_id in hop.advanced:  # committed: every fire up to now is made (or, by the policy, skipped)
            if flow_id in self._flows:
                self._after[flow_id] = now
                self._queue.schedule(flow_id, plan.next_fire(self._flows[flow_id], now))
        if hop.deferred:
            fired += await self._fire_batch_async([(t, f) for t, f in batch if f in hop.deferred], now, careful=careful)
        return fired

    async def _fire_batch_async(
        self, batch: list[tuple[int, int]], now: int, *, careful: bool
    ) -> list[tuple[int, int, str | None]]:
        """One transaction for `batch` on the event loop's connection. Not `careful`: no
        savepoints (two fewer round trips per fire), and a refused fire raises `_Refused` so the
        caller redoes the batch carefully."""
        create = self._create_instance or create_flow_instance
        fired: list[tuple[int, int, str | None]] = []
        wanted: list[tuple[int, int]] = []
        advanced: dict[int, int] = {}
        async with self._database.transaction() as conn:
            rows = {
                row.flow_id: row
                for row in (await conn.execute(_FLOW_COLUMNS.where(flows.c.flow_id.in_([f for _, f in batch])))).all()
            }
            for _, flow_id in batch:
                row = rows.get(flow_id)
                if row is None:
                    self._forget(flow_id)
                    continue
                if not self._apply(row, None):  # disabled or re-scheduled since it was planned
                    continue
                flow = self._flows[flow_id]
                due = plan.due_fires(flow, self._after[flow_id], now, self._policy)
                wanted.extend((flow_id, fire_time) for fire_time in due.fires)
                advanced[flow_id] = now  # every fire up to now is made (or, by the policy, skipped)
            if self._create_instance is None:  # the engine's batch: a few statements for all fires
                requests = [
                    InstanceRequest(flow_id=flow_id, trigger_time_ms=fire_time * 1000, origin="schedule")
                    for flow_id, fire_time in wanted
                ]
                for (flow_id, fire_time), creation in zip(
                    wanted, await create_flow_instances(conn, requests, zone=self._zone), strict=True
                ):
                    if creation.refused is not None:  # e.g. a workflow without tasks: skip this fire
                        log.warning("scheduler: workflow %s fire at %s not created: %s",
                                    flow_id, fire_time, creation.refused)
                    fired.append((flow_id, fire_time, creation.instance_id))
            else:
                for flow_id, fire_time in wanted:
                    instance_id = await self._create_one(conn, create, flow_id, fire_time, careful)
                    fired.append((flow_id, fire_time, instance_id))
        for flow_id, after in advanced.items():  # committed: those fires are done
            if flow_id in self._flows:
                self._after[flow_id] = after
                self._queue.schedule(flow_id, plan.next_fire(self._flows[flow_id], after))
        return fired

    async def _create_one(
        self, conn: AsyncConnection, create: CreateInstance, flow_id: int, fire_time: int, careful: bool
    ) -> str | None:
        arguments = {"flow_id": flow_id, "trigger_time_ms": fire_time * 1000, "origin": "schedule", "zone": self._zone}
        if not careful:
            try:
                return await create(conn, **arguments)
            except BatchdError as exc:
                raise _Refused() from exc
        try:
            async with conn.begin_nested():
                return await create(conn, **arguments)
        except BatchdError as exc:  # e.g. a workflow without tasks: skip this fire, keep the rest
            log.warning("scheduler: workflow %s fire at %s not created: %s", flow_id, fire_time, exc)
            return None


class _Refused(Exception):
    """The engine refused a fire inside a batch without savepoints; the batch is redone."""


_FLOW_COLUMNS = sa.select(
    flows.c.flow_id, flows.c.type, flows.c.active, flows.c.cron, flows.c.start_date, flows.c.update_time
)


@dataclass(frozen=True)
class _Plan:
    """A flow's fires in a batch and the row values the plan was made from."""

    update_time_ms: int
    schedule_key: tuple[str, str]
    fires: tuple[int, ...]


@dataclass(frozen=True)
class _Hop:
    rows: list[sa.Row]  # the batch's flows as read in the transaction (a missing one was deleted)
    advanced: list[int]  # flows whose fires were made
    deferred: set[int]  # flows left to `_fire_batch_async` (model path)
    creations: list[Creation]


_HOP_COLUMNS = _FLOW_COLUMNS.add_columns(flows.c.org_id, flows.c.creator, flows.c.definition)


def _fire_in_one_hop(conn: sa.Connection, *, plans: dict[int, _Plan], zone: dt.tzinfo) -> _Hop:
    """The batch's transaction, on the database's worker thread: one SELECT of the flows (what the
    plan checks and what an instance copies), then the engine's inserts (`create_instances_now`)."""
    rows = conn.execute(_HOP_COLUMNS.where(flows.c.flow_id.in_(list(plans)))).all()
    requests: list[InstanceRequest] = []
    snapshots: dict[int, Snapshot] = {}
    advanced: list[int] = []
    deferred: set[int] = set()
    for row in rows:
        planned = plans[row.flow_id]
        if not (_schedulable(row) and (row.update_time == planned.update_time_ms
                                       or (row.cron, row.start_date) == planned.schedule_key)):
            continue  # disabled or re-scheduled since it was planned: `_apply` re-plans it
        snapshot = plain_snapshot(row)
        if snapshot is None:
            deferred.add(row.flow_id)
            continue
        snapshots[row.flow_id] = snapshot
        advanced.append(row.flow_id)
        requests.extend(InstanceRequest(flow_id=row.flow_id, trigger_time_ms=fire * 1000, origin="schedule")
                        for fire in planned.fires)
    return _Hop(rows, advanced, deferred, create_instances_now(conn, requests, snapshots, zone=zone))


def _schedulable(row: sa.Row) -> bool:
    return row.type == PERIODIC and row.active == 1 and bool(row.cron.strip())


async def _last_fires(conn: AsyncConnection, flow_ids: Iterable[int] | None) -> dict[int, int]:
    """Per flow (every flow, or those of `flow_ids`), the trigger time (epoch ms) of its newest
    instance of origin `schedule`: each flow's instances walked newest first on
    `flow_instances(flow_id, trigger_time, origin)` until the first scheduled one (usually the
    first), from the index alone — not a scan of every stored instance (migration 0011)."""
    newest = (
        sa.select(flow_instances.c.trigger_time)
        .where(flow_instances.c.flow_id == flows.c.flow_id, flow_instances.c.origin == "schedule")
        .order_by(flow_instances.c.trigger_time.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = sa.select(flows.c.flow_id, newest)
    if flow_ids is None:
        return {flow_id: last for flow_id, last in (await conn.execute(query)).all() if last is not None}
    wanted, found = list(flow_ids), {}
    for first in range(0, len(wanted), 500):
        chunk = query.where(flows.c.flow_id.in_(wanted[first:first + 500]))
        found.update({flow_id: last for flow_id, last in (await conn.execute(chunk)).all() if last is not None})
    return found
