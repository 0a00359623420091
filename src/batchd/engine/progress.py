"""The engine's work on the tables, each function one step inside the caller's transaction.

The functions take a synchronous `sqlalchemy.Connection`. The hot path (an outcome and the next
claims) runs them on the database's worker thread in one hop (`Database.run_write`): through the
async layer each statement cost a trip of its own to the driver's thread, ~0.2 ms, about ten
times what SQLite needs to run it. Code on the event loop calls them with
`await conn.run_sync(fn, ...)` on its async connection: one implementation of the writes.

- `record_outcome`: an attempt's result through the transition table (success, waitCode, retry,
  final FAIL/TIMEOUT), failing the flow at once when a task fails for good; a success makes its
  direct downstream tasks READY and finishes the flow after its last task, in the same
  transaction, so progress costs a few rows per task, not a pass over the instance.
- `claim_ready`: compare-and-set READY → RUNNING plus the attempt row; two processes on one
  PostgreSQL never claim the same task (the UPDATE's `WHERE status = READY` decides).
- `schedule_pass`: admit queued flow instances (one RUNNING per workflow, FIFO by trigger time,
  never before the trigger time) and evaluate their tasks once, release WAIT tasks whose retry
  time passed and whose cross-workflow references are satisfied; `sweep` re-evaluates every task
  of some running instances (the net under the incremental steps).
- `declare_dead`: crash recovery of an attempt whose batchd is gone.
- `cancel_flow_instance`: Cancel Flow Instance on the tables; the owning process kills the
  processes when it sees its RUNNING task is no longer RUNNING.

Every status change goes through `transitions`; nothing here assigns a status on its own.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa

from batchd.catalog.model import FlowDefinition, TaskDefinition
from batchd.catalog.shapes import from_document
from batchd.engine.status import DONE_FOR_DOWNSTREAM, FAILED, NOT_DONE_FOR_DOWNSTREAM, PENDING, QUEUED, Status
from batchd.engine.transitions import FlowEvent, TaskEvent, flow_target, task_target
from batchd.store.statements import Prepared
from batchd.store.tables import flow_instances, task_attempts, task_instances

ENGINE_LOCK_KEY = 0x62A7C4E  # PostgreSQL advisory lock serialising scheduling passes
#: How long after a waitCode exit the task is run again when it has no retryInterval.
WAIT_CODE_RECHECK_SECONDS = 10
#: Attempt outcomes recorded in task_attempts.outcome.
OUTCOME_SUCCESS, OUTCOME_FAIL, OUTCOME_TIMEOUT = "SUCCESS", "FAIL", "TIMEOUT"
OUTCOME_WAIT, OUTCOME_CANCEL, OUTCOME_INTERNAL = "WAIT", "CANCEL", "INTERNAL_ERROR"
K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, kw_only=True)
class RunGraph:
    """A flow instance's snapshot with its relations indexed both ways, built once per instance,
    and the instance's effective parameters (fixed at creation, like the snapshot).

    Readiness is decided per finished task (its direct downstream tasks), so the engine needs
    "who is downstream of X" and "who is upstream of Y" without walking every relation each time.
    The parameters are kept here rather than read with each claim: on SQLite the column comes
    after the snapshot in the row, and reading it walks the snapshot's overflow pages (~0.3 ms
    per claim for a 2,000-task workflow).
    """

    definition: FlowDefinition
    tasks: dict[str, TaskDefinition]  # by name (FlowDefinition.task walks the list)
    upstream: dict[str, tuple[str, ...]]
    downstream: dict[str, tuple[str, ...]]
    linked: frozenset[str]  # tasks that are the target of a cross-workflow reference
    parameters: dict[str, str]  # the instance's effective parameters, key -> value
    # `feeders_of`'s answers, filled as asked; shared by the instances of one snapshot
    feeders: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, repr=False)

    def feeders_of(self, task_name: str) -> tuple[str, ...]:
        """The other upstream tasks of `task_name`'s downstream tasks (sorted): while one of them
        is not done, its downstream tasks cannot start. In a 10-wide layered DAG, the rest of
        the task's layer."""
        found = self.feeders.get(task_name)
        if found is None:
            found = self.feeders[task_name] = tuple(sorted(
                {name for target in self.downstream.get(task_name, ()) for name in self.upstream.get(target, ())}
                - {task_name}))
        return found

    @classmethod
    def of(cls, definition: FlowDefinition) -> RunGraph:
        """From the parsed snapshot, with no instance's parameters yet (`DefinitionCache.get`
        gives each instance the graph with its own)."""
        upstream: dict[str, list[str]] = {}
        downstream: dict[str, list[str]] = {}
        for relation in definition.relations:
            upstream.setdefault(relation.target, []).append(relation.source)
            downstream.setdefault(relation.source, []).append(relation.target)
        return cls(definition=definition, tasks={task.name: task for task in definition.tasks},
                   upstream={name: tuple(names) for name, names in upstream.items()},
                   downstream={name: tuple(names) for name, names in downstream.items()},
                   linked=frozenset(relation.target for relation in definition.link_relations),
                   parameters={})


class DefinitionCache:
    """Parsed snapshots by flow instance id; a snapshot never changes, so it is parsed once.

    Instances of one workflow version have the same snapshot text, so the parsed graph is also
    kept by the text's digest: a scheduled workflow's next run, or a rerun, starts without
    parsing its definition again (~25 ms for 1,000 tasks in 9,900 relations, before the first
    task could start). Used from the event loop and the database's worker thread, hence the
    lock around changes.
    """

    def __init__(self, limit: int = 512, shapes: int = 64) -> None:
        self._items: dict[str, RunGraph] = {}
        self._shapes: dict[bytes, RunGraph] = {}  # by snapshot digest, as `RunGraph.of` makes them
        self._limit = limit
        self._shape_limit = shapes
        self._lock = threading.Lock()

    def get(self, instance_id: str, stored: tuple[str, str] | None = None) -> RunGraph | None:
        """The instance's graph; built from `stored` (its `definition` and `parameters` columns)
        when not cached yet, None when neither."""
        found = self._items.get(instance_id)
        if found is None and stored is not None:
            document, parameters = stored
            digest = hashlib.blake2b(document.encode("utf-8", "surrogatepass"), digest_size=16).digest()
            shape = self._shapes.get(digest)
            if shape is None:
                shape = RunGraph.of(from_document(document))
            graph = replace(shape, parameters={item["key"]: item["value"] for item in json.loads(parameters)})
            with self._lock:
                _remember(self._shapes, digest, shape, self._shape_limit)
                found = _remember(self._items, instance_id, graph, self._limit)
        return found


def _remember(items: dict[K, V], key: K, value: V, limit: int) -> V:
    """`items[key]`, set to `value` if missing, dropping the oldest entry when full."""
    if key not in items and len(items) >= limit:
        items.pop(next(iter(items)))
    return items.setdefault(key, value)


def _load_graph(conn: sa.Connection, cache: DefinitionCache, instance_id: str) -> RunGraph:
    found = cache.get(instance_id)
    if found is None:
        document, parameters = conn.execute(
            sa.select(flow_instances.c.definition, flow_instances.c.parameters)
            .where(flow_instances.c.instance_id == instance_id)
        ).one()
        found = cache.get(instance_id, (document, parameters))
    assert found is not None
    return found


def _lock_engine(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ENGINE_LOCK_KEY})


_CAS_STATEMENTS: dict[tuple[str, tuple[str, ...]], Prepared] = {}


def _cas(table: sa.Table, columns: tuple[str, ...]) -> Prepared:
    """`UPDATE table SET <columns> WHERE instance_id = :_id AND status = :_from`, built once per
    column set: a status change is the engine's commonest statement, and building and keying a
    fresh statement costs more than SQLite takes to run it."""
    key = (table.name, columns)
    made = _CAS_STATEMENTS.get(key)
    if made is None:
        made = _CAS_STATEMENTS[key] = Prepared(
            sa.update(table)
            .where(table.c.instance_id == sa.bindparam("_id"), table.c.status == sa.bindparam("_from"))
            .values({name: sa.bindparam(f"_{name}") for name in columns}))
    return made


def _compare_and_set(conn: sa.Connection, table: sa.Table, instance_id: str, status: int,
                     values: dict[str, object]) -> bool:
    """Write `values` if the row still has `status`; False when a concurrent change (a cancel,
    another process's claim) got there first, and this change is dropped."""
    changed = _cas(table, tuple(values)).execute(
        conn, {"_id": instance_id, "_from": int(status), **{f"_{name}": value for name, value in values.items()}})
    return changed.rowcount == 1


def _set_flow(conn: sa.Connection, instance_id: str, status: int, event: FlowEvent, now: int,
              **values: object) -> Status | None:
    target = flow_target(status, event)
    if target is not None and target != status:
        if not _compare_and_set(conn, flow_instances, instance_id, status,
                                {"status": int(target), "updated_at": now, **values}):
            return None
    return target


def _set_task(conn: sa.Connection, instance_id: str, status: int, event: TaskEvent,
              **values: object) -> Status | None:
    target = task_target(status, event)
    if target is not None:
        if not _compare_and_set(conn, task_instances, instance_id, status, {"status": int(target), **values}):
            return None
    return target


# --- the scheduling pass ----------------------------------------------------------------------


def schedule_pass(conn: sa.Connection, now: int, cache: DefinitionCache) -> None:
    """Admit queued flow instances (evaluating an admitted instance's tasks once) and release
    WAIT tasks whose time has come.

    Ordinary progress needs nothing more: a success makes its downstream tasks READY in the
    outcome's own transaction (`record_outcome`). `sweep` is the net under that.
    """
    _lock_engine(conn)
    for instance_id, cal_dt in _admit_flows(conn, now):
        _advance_tasks(conn, instance_id, cal_dt, now, cache)
    _release_waiting(conn, now, cache)


def running_instances(conn: sa.Connection) -> list[str]:
    return list(conn.execute(
        sa.select(flow_instances.c.instance_id).where(flow_instances.c.status == int(Status.RUNNING))
    ).scalars())


def sweep(conn: sa.Connection, instance_ids: Sequence[str], now: int, cache: DefinitionCache) -> None:
    """Re-evaluate every task of those of `instance_ids` still RUNNING: the net under the
    incremental steps (rows written by an older batchd, anything a crash left half-decided).
    It reads every task row of each instance, so the engine sweeps in small chunks, each its
    own transaction, at start and every few seconds."""
    _lock_engine(conn)
    running = conn.execute(
        sa.select(flow_instances.c.instance_id, flow_instances.c.cal_dt)
        .where(flow_instances.c.instance_id.in_(list(instance_ids)),
               flow_instances.c.status == int(Status.RUNNING))
    ).all()
    for instance_id, cal_dt in running:
        _advance_tasks(conn, instance_id, cal_dt, now, cache)


def _admit_flows(conn: sa.Connection, now: int) -> list[tuple[str, str]]:
    """Start what may start; the (instance id, cal_dt) of each instance admitted."""
    queued = conn.execute(
        sa.select(flow_instances.c.instance_id, flow_instances.c.flow_id, flow_instances.c.status,
                  flow_instances.c.trigger_time, flow_instances.c.cal_dt)
        .where(flow_instances.c.status.in_([int(s) for s in QUEUED]))
        .order_by(flow_instances.c.flow_id, flow_instances.c.trigger_time, flow_instances.c.instance_id)
    ).all()
    if not queued:
        return []
    # A workflow is busy while an instance RUNS, or while a failed/cancelled one still has a live
    # task: the next instance must not run a task next to its predecessor's copy. Read from the
    # running side (few rows, by status) rather than per queued workflow.
    busy = set(conn.execute(_BUSY_FLOWS).scalars())
    first_seen: set[int] = set()
    admitted: list[tuple[str, str]] = []
    for row in queued:
        head = row.flow_id not in first_seen
        first_seen.add(row.flow_id)
        if head and row.flow_id not in busy and row.trigger_time <= now:
            if _set_flow(conn, row.instance_id, row.status, FlowEvent.ADMIT, now, start_time=now):
                admitted.append((row.instance_id, row.cal_dt))
        else:
            _set_flow(conn, row.instance_id, row.status, FlowEvent.QUEUE, now)
    return admitted


_BUSY_FLOWS = sa.union(
    sa.select(flow_instances.c.flow_id).where(flow_instances.c.status == int(Status.RUNNING)),
    sa.select(flow_instances.c.flow_id)
    .join(task_instances, task_instances.c.flow_instance_id == flow_instances.c.instance_id)
    .where(task_instances.c.status == int(Status.RUNNING)),
)


def _advance_tasks(conn: sa.Connection, instance_id: str, cal_dt: str, now: int,
                   cache: DefinitionCache) -> None:
    """Evaluate every task of one RUNNING instance: READY/WAIT where upstreams are done, or
    finish the instance when every task is."""
    rows = conn.execute(
        sa.select(task_instances.c.instance_id, task_instances.c.task_name, task_instances.c.status,
                  task_instances.c.not_before)
        .where(task_instances.c.flow_instance_id == instance_id)
    ).all()
    if all(row.status in DONE_FOR_DOWNSTREAM for row in rows):
        _finish_flow(conn, instance_id, now)
        return
    graph = _load_graph(conn, cache, instance_id)
    by_name = {row.task_name: row for row in rows}
    _offer(conn, graph, [row for row in rows if row.status in (Status.INIT, Status.WAIT)
                         and _upstream_done(graph, row.task_name, by_name)], cal_dt, now)


def _upstream_done(graph: RunGraph, task_name: str, by_name: dict[str, sa.Row]) -> bool:
    return all(by_name[name].status in DONE_FOR_DOWNSTREAM
               for name in graph.upstream.get(task_name, ()) if name in by_name)


def _offer(conn: sa.Connection, graph: RunGraph, rows: list[sa.Row], cal_dt: str, now: int) -> None:
    """Tasks whose upstream tasks are done: READY, or WAIT while a task's not-before time (retry,
    waitCode) or one of its cross-workflow references is still pending. One compare-and-set
    statement per (status, event) group: the root of a 1,000-task fan-out releases 999 tasks."""
    groups: dict[tuple[int, TaskEvent], list[str]] = {}
    for row in rows:
        waiting = (row.not_before is not None and row.not_before > now) or (
            row.task_name in graph.linked
            and not _links_satisfied(conn, graph.definition, row.task_name, cal_dt))
        groups.setdefault((row.status, TaskEvent.BLOCKED if waiting else TaskEvent.UNBLOCKED), []).append(
            row.instance_id)
    for (status, event), instance_ids in groups.items():
        target = task_target(status, event)
        if target is not None and target != status:
            _cas_many(len(instance_ids)).execute(
                conn, {"_from": int(status), "_status": int(target), **_numbered("_id", instance_ids)})


def _numbered(prefix: str, values: Sequence[str]) -> dict[str, str]:
    """`{prefix_0: values[0], ...}`: the parameters of a statement made by `_in_list`."""
    return {f"{prefix}_{index}": value for index, value in enumerate(values)}


def _in_list(column: sa.Column[object], prefix: str, count: int,
             values: Sequence[object] = ()) -> sa.BinaryExpression[bool]:
    """`count` numbered parameters for an IN list (with `values` when given): `Prepared` runs a
    statement as compiled, so a list's length is part of it (SQLAlchemy's expanding parameters,
    literal lists included, are resolved per execution: the work `Prepared` avoids)."""
    return column.in_([sa.bindparam(f"{prefix}_{index}", *values[index:index + 1], type_=column.type)
                       for index in range(count)])


@functools.lru_cache(maxsize=64)
def _cas_many(count: int) -> Prepared:
    return Prepared(
        sa.update(task_instances)
        .where(_in_list(task_instances.c.instance_id, "_id", count), task_instances.c.status == sa.bindparam("_from"))
        .values(status=sa.bindparam("_status")))


def _release_waiting(conn: sa.Connection, now: int, cache: DefinitionCache) -> None:
    """WAIT tasks of RUNNING instances whose not-before time passed and whose references are met."""
    rows = conn.execute(
        sa.select(task_instances.c.instance_id, task_instances.c.task_name, task_instances.c.status,
                  task_instances.c.not_before, task_instances.c.flow_instance_id, flow_instances.c.cal_dt)
        .join(flow_instances, flow_instances.c.instance_id == task_instances.c.flow_instance_id)
        .where(task_instances.c.status == int(Status.WAIT), flow_instances.c.status == int(Status.RUNNING),
               sa.or_(task_instances.c.not_before.is_(None), task_instances.c.not_before <= now))
    ).all()
    for row in rows:
        _offer(conn, _load_graph(conn, cache, row.flow_instance_id), [row], row.cal_dt, now)


def _release_downstream(conn: sa.Connection, graph: RunGraph, instance_id: str, task_name: str,
                        flow_status: int, cal_dt: str, now: int, running_here: Collection[str] = ()
                        ) -> Status | None:
    """After `task_name` succeeded: offer its direct downstream tasks whose upstreams are now all
    done, and finish the instance when no task is left. Reads only the rows it decides on.
    Nothing starts in an instance that is no longer RUNNING (a failed one lets running branches
    finish, but starts nothing after them)."""
    if flow_status != Status.RUNNING:
        return None
    downstream = graph.downstream.get(task_name, ())
    if downstream:
        # First the downstream tasks' other upstream tasks: in a fan-in, usually one of them is
        # still to run, and then neither a downstream row nor "any task left?" need be read.
        feeders = graph.feeders_of(task_name)
        waiting = set(running_here).intersection(feeders) if running_here else set()
        blocks = functools.partial(_waits_for, graph, waiting)
        if waiting and all(map(blocks, downstream)):
            return None  # a feeder still runs here: nothing can start, and the instance is not done
        unknown = [name for name in feeders if name not in waiting]
        if unknown:
            waiting.update(row.task_name for row in _tasks_by_name(len(unknown)).execute(
                conn, {"instance_id": instance_id, **_numbered("name", unknown)}).rows
                if row.status not in DONE_FOR_DOWNSTREAM)
        candidates = [target for target in downstream if not blocks(target)] if waiting else list(downstream)
        if not candidates:
            return None  # a task is still to run (a feeder): the instance is not done
        rows = _tasks_by_name(len(candidates)).execute(
            conn, {"instance_id": instance_id, **_numbered("name", sorted(candidates))}).rows
        by_name = {row.task_name: row for row in rows}
        offered = [row for row in (by_name.get(target) for target in candidates)
                   if row is not None and row.status in (Status.INIT, Status.WAIT)]
        if offered:
            _offer(conn, graph, offered, cal_dt, now)
        if offered or waiting or any(row.status not in DONE_FOR_DOWNSTREAM for row in rows):
            return None  # a task is still to run: the instance is not done
    left = _ANY_TASK_LEFT.execute(conn, {"instance_id": instance_id}).first()
    return None if left is not None else _finish_flow(conn, instance_id, now)


def _waits_for(graph: RunGraph, waiting: set[str], target: str) -> bool:
    """Whether one of `target`'s upstream tasks is in `waiting` (not done)."""
    return not waiting.isdisjoint(graph.upstream.get(target, ()))


@functools.lru_cache(maxsize=64)
def _tasks_by_name(count: int) -> Prepared:
    return Prepared(
        sa.select(task_instances.c.instance_id, task_instances.c.task_name, task_instances.c.status,
                  task_instances.c.not_before, task_instances.c.run_num)
        .where(task_instances.c.flow_instance_id == sa.bindparam("instance_id"),
               _in_list(task_instances.c.task_name, "name", count)))


#: Covered by `(status, flow_instance_id)`: one seek per not-done status (migration 0012).
_ANY_TASK_LEFT = Prepared(
    sa.select(task_instances.c.status)
    .where(task_instances.c.flow_instance_id == sa.bindparam("instance_id"),
           _in_list(task_instances.c.status, "left", len(NOT_DONE_FOR_DOWNSTREAM),
                    [int(s) for s in NOT_DONE_FOR_DOWNSTREAM])).limit(1))


def _finish_flow(conn: sa.Connection, instance_id: str, now: int) -> Status | None:
    """ALL_DONE: the instance ends when its last task did; its new status."""
    status, end = conn.execute(
        sa.select(flow_instances.c.status, sa.select(sa.func.max(task_instances.c.end_time))
                  .where(task_instances.c.flow_instance_id == instance_id).scalar_subquery())
        .where(flow_instances.c.instance_id == instance_id)
    ).one()
    return _set_flow(conn, instance_id, status, FlowEvent.ALL_DONE, now, end_time=end or now)


def _links_satisfied(conn: sa.Connection, definition: FlowDefinition, task_name: str, cal_dt: str) -> bool:
    """Every reference pointing at `task_name` has succeeded for the same business date."""
    for relation in definition.link_relations:
        if relation.target != task_name:
            continue
        flow_link = next((f for f in definition.flow_links if f.link_id == relation.link_id), None)
        if flow_link is not None:
            found = conn.execute(sa.select(flow_instances.c.instance_id).where(
                flow_instances.c.flow_id == flow_link.source_flow_id, flow_instances.c.cal_dt == cal_dt,
                flow_instances.c.status == int(Status.SUCCESS)).limit(1))
            if found.first() is None:
                return False
        task_link = next((t for t in definition.task_links if t.link_id == relation.link_id), None)
        if task_link is not None:
            found = conn.execute(
                sa.select(task_instances.c.instance_id)
                .join(flow_instances, flow_instances.c.instance_id == task_instances.c.flow_instance_id)
                .where(flow_instances.c.flow_id == task_link.source_flow_id, flow_instances.c.cal_dt == cal_dt,
                       task_instances.c.task_id == task_link.source_task_id,
                       task_instances.c.status == int(Status.SUCCESS)).limit(1))
            if found.first() is None:
                return False
    return True


# --- claims -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Owner:
    """The batchd process that runs attempts: written into every attempt it claims."""

    owner: str  # host:pid:random
    host: str
    pid: int


@dataclass(frozen=True, kw_only=True)
class Successor:
    """The one task a claimed task unlocks by itself: its only downstream task, whose only
    upstream task it is, found INIT (never run, no retry pending) when the claim was made.

    When the claimed task succeeds, this process starts the successor's attempt at once, in the
    slot just freed, and claims it in the transaction that records the success
    (`claim_started`): a chain's next task then runs while that transaction commits, instead of
    after it. Nobody else can claim the successor first: it becomes READY only in that
    transaction, and is claimed in it."""

    task_instance_id: str
    task: TaskDefinition
    attempt: int  # the attempt it starts as: its run_num + 1 when found


@dataclass(frozen=True, kw_only=True)
class Claim:
    """A task instance this process now runs, with everything needed to build its AttemptSpec."""

    task_instance_id: str
    flow_instance_id: str
    attempt: int
    task: TaskDefinition
    flow: FlowDefinition
    trigger_time_ms: int
    cal_dt: str
    parameters: dict[str, str]
    log_path: Path
    successor: Successor | None = None

    def ahead(self, log_path_of: Callable[[str, str], Path]) -> Claim | None:
        """The claim of `successor`, to start before it is made (`Successor`); None without one."""
        successor = self.successor
        if successor is None:
            return None
        return replace(self, task_instance_id=successor.task_instance_id, attempt=successor.attempt,
                       task=successor.task, log_path=log_path_of(self.flow_instance_id, successor.task_instance_id),
                       successor=None)


def _successor(conn: sa.Connection, graph: RunGraph, flow_instance_id: str, task_name: str) -> Successor | None:
    """`task_name`'s `Successor` in its instance, or None: it has several downstream tasks (the
    slot it frees could serve only one, and which one is the claim's to decide by priority),
    the one it has waits for other tasks or a cross-workflow reference, or is not INIT."""
    downstream = graph.downstream.get(task_name, ())
    if len(downstream) != 1:
        return None
    (name,) = downstream
    if graph.upstream.get(name) != (task_name,) or name in graph.linked:
        return None
    row = _tasks_by_name(1).execute(conn, {"instance_id": flow_instance_id, "name_0": name}).first()
    if row is None or row.status != Status.INIT or row.not_before is not None:
        return None
    return Successor(task_instance_id=row.instance_id, task=graph.tasks[name], attempt=row.run_num + 1)


def claim_ready(conn: sa.Connection, owner: Owner, limit: int, now: int, lease_ms: int,
                cache: DefinitionCache, log_path_of: Callable[[str, str], Path]) -> list[Claim]:
    """Claim up to `limit` READY tasks of RUNNING flows, highest priorityLevel first, oldest trigger first."""
    if limit <= 0:
        return []
    candidates = _READY_TASKS.execute(conn, {"limit": limit * 4}).rows
    ranked = []
    for row in candidates:
        graph = _load_graph(conn, cache, row.flow_instance_id)
        task = graph.tasks[row.task_name]
        ranked.append((-task.priority_level, row, task, graph))
    ranked.sort(key=lambda item: item[0])  # stable: trigger time order within one priority
    claims: list[Claim] = []
    for _, row, task, graph in ranked[:limit]:
        claimed = _CLAIM.execute(conn, {
            "_id": row.instance_id, "_from": int(Status.READY), "_status": _CLAIMED, "_now": now,
        }).first()
        if claimed is None:
            continue  # another process claimed it first
        attempt = claimed.run_num
        log_path = log_path_of(row.flow_instance_id, row.instance_id)
        _new_attempt(conn, owner, row.instance_id, attempt, now, lease_ms, log_path)
        claims.append(Claim(
            task_instance_id=row.instance_id, flow_instance_id=row.flow_instance_id, attempt=attempt, task=task,
            flow=graph.definition, trigger_time_ms=row.trigger_time, cal_dt=row.cal_dt,
            parameters=graph.parameters, log_path=log_path,
            successor=_successor(conn, graph, row.flow_instance_id, task.name),
        ))
    return claims


def claim_started(conn: sa.Connection, owner: Owner, started: Claim, now: int, lease_ms: int,
                  cache: DefinitionCache) -> Claim | None:
    """Claim a `Successor` whose attempt already runs (`Claim.ahead`), after the outcome that
    unlocks it was recorded in this transaction: the claim as made (with its own successor), or
    None when the task is not READY as its attempt number expects (the flow was cancelled or
    failed meanwhile, the outcome was stale): then it was never ours, and its process must be
    killed before anything else runs it."""
    claimed = _CLAIM_AS.execute(conn, {
        "_id": started.task_instance_id, "_from": int(Status.READY), "_status": _CLAIMED, "_now": now,
        "_run_num": started.attempt - 1,
    }).first()
    if claimed is None:
        return None
    _new_attempt(conn, owner, started.task_instance_id, started.attempt, now, lease_ms, started.log_path)
    graph = _load_graph(conn, cache, started.flow_instance_id)
    return replace(started, successor=_successor(conn, graph, started.flow_instance_id, started.task.name))


def _new_attempt(conn: sa.Connection, owner: Owner, task_instance_id: str, attempt: int, now: int, lease_ms: int,
                 log_path: Path) -> None:
    _NEW_ATTEMPT.execute(conn, {
        "task_instance_id": task_instance_id, "attempt": attempt, "owner": owner.owner, "owner_host": owner.host,
        "owner_pid": owner.pid, "lease_until": now + lease_ms, "started_at": now, "log_path": str(log_path),
    })


#: READY tasks of RUNNING instances, oldest trigger first. Written as CROSS JOIN with the join
#: condition in WHERE (valid on both databases) because SQLite then walks the running instances
#: in order (`flow_instances(status, trigger_time)`) and each one's READY tasks by index,
#: stopping at the limit; joined the other way round it sorted every READY task of every
#: instance on every claim. Within an instance, SQLite gives tasks in creation (definition)
#: order; PostgreSQL in an order of its choosing (priorityLevel is applied afterwards either way).
_READY_TASKS = Prepared(sa.text(
    "SELECT t.instance_id, t.task_name, t.flow_instance_id, f.trigger_time, f.cal_dt"
    " FROM flow_instances f CROSS JOIN task_instances t"
    " WHERE t.flow_instance_id = f.instance_id AND f.status = :running AND t.status = :ready"
    " ORDER BY f.trigger_time LIMIT :limit"
).bindparams(running=int(Status.RUNNING), ready=int(Status.READY)))
_CLAIM = Prepared(
    sa.update(task_instances)
    .where(task_instances.c.instance_id == sa.bindparam("_id"), task_instances.c.status == sa.bindparam("_from"))
    .values(status=sa.bindparam("_status"), run_num=task_instances.c.run_num + 1, not_before=None,
            start_time=sa.func.coalesce(task_instances.c.start_time, sa.bindparam("_now")), end_time=None)
    .returning(task_instances.c.run_num))
_CLAIMED = int(task_target(Status.READY, TaskEvent.CLAIM) or Status.RUNNING)
#: `_CLAIM` only if the attempt about to be counted is the one already started.
_CLAIM_AS = Prepared(_CLAIM.statement.where(task_instances.c.run_num == sa.bindparam("_run_num")))
_NEW_ATTEMPT = Prepared(task_attempts.insert(), column_keys=(
    "task_instance_id", "attempt", "owner", "owner_host", "owner_pid", "lease_until", "started_at", "log_path"))


# --- outcomes ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Result:
    """What became of one attempt: the runner's verdict (`batchd.runner.verdict.classify`) or
    INTERRUPTED when batchd died or stopped under it (not the task's fault)."""

    verdict: str  # a batchd.runner.verdict.Verdict value, or INTERRUPTED
    exit_code: int | None
    timed_out: bool
    error: str | None
    ended_ms: int
    consume_retry: bool = True  # False for a clean shutdown of batchd: the task did nothing wrong
    pid: int | None = None  # the attempt's process (and process group), when one started


_ATTEMPT_ROW = Prepared(
    sa.select(task_instances.c.status, task_instances.c.recall_num, task_instances.c.task_name,
              task_instances.c.flow_instance_id, flow_instances.c.status.label("flow_status"),
              flow_instances.c.cal_dt, task_attempts.c.ended_at)
    .join(flow_instances, flow_instances.c.instance_id == task_instances.c.flow_instance_id)
    .join(task_attempts, sa.and_(task_attempts.c.task_instance_id == task_instances.c.instance_id,
                                 task_attempts.c.attempt == sa.bindparam("attempt")))
    .where(task_instances.c.instance_id == sa.bindparam("task_instance_id"))
    .with_for_update(of=flow_instances))
_CLOSE_ATTEMPT = Prepared(
    sa.update(task_attempts)
    .where(task_attempts.c.task_instance_id == sa.bindparam("_task_instance_id"),
           task_attempts.c.attempt == sa.bindparam("_attempt"))
    .values({name: sa.bindparam(name) for name in (
        "ended_at", "exit_code", "timed_out", "outcome", "error", "pid", "pgid")}))


@dataclass(frozen=True, kw_only=True)
class Recorded:
    """What recording an outcome changed: the task's new status (None: nothing, a stale
    outcome) and the flow's, when the task ended it (its last success, or a final failure)."""

    task: Status | None
    flow: Status | None = None


INTERRUPTED = "INTERRUPTED"
#: Runner verdict -> attempt outcome stored in task_attempts.outcome.
_OUTCOME_OF = {"SUCCESS": OUTCOME_SUCCESS, "FAILED": OUTCOME_FAIL, "TIMEOUT": OUTCOME_TIMEOUT,
               "WAIT": OUTCOME_WAIT, "CANCELLED": OUTCOME_CANCEL, "ERROR": OUTCOME_FAIL,
               INTERRUPTED: OUTCOME_INTERNAL}


def record_outcome(conn: sa.Connection, task_instance_id: str, attempt: int, result: Result,
                   cache: DefinitionCache, now: int | None = None, *,
                   running_here: Collection[str] = ()) -> Recorded:
    """Record one attempt's end and move its task (and maybe its flow).

    A success makes the task's direct downstream tasks READY (or WAIT) and finishes the flow
    when it was the last task, here, in the same transaction: the next task can be claimed
    without a scheduling pass. On PostgreSQL the flow instance's row is locked first, so two
    upstream tasks of one downstream task finishing at once in two processes are decided one
    after the other (each sees the other's success), never both "not all upstreams done yet".

    An attempt already closed (recovery declared it dead) or whose task was cancelled or
    deleted changes nothing but its own row.

    `running_here`: names of the instance's tasks whose attempts the caller itself is running
    (not recorded yet), so certainly not done: in a fan-in their rows need not be read.
    """
    now = result.ended_ms if now is None else now
    row = _ATTEMPT_ROW.execute(conn, {"task_instance_id": task_instance_id, "attempt": attempt}).first()
    if row is None or row.ended_at is not None:
        return Recorded(task=None)
    graph = _load_graph(conn, cache, row.flow_instance_id)
    task = graph.tasks[row.task_name]
    outcome = _OUTCOME_OF[result.verdict]
    if row.status != Status.RUNNING:
        outcome = OUTCOME_CANCEL
    _CLOSE_ATTEMPT.execute(conn, {
        "_task_instance_id": task_instance_id, "_attempt": attempt, "ended_at": result.ended_ms,
        "exit_code": result.exit_code, "timed_out": result.timed_out, "outcome": outcome, "error": result.error,
        "pid": result.pid, "pgid": result.pid,
    })
    end = result.ended_ms
    if outcome == OUTCOME_SUCCESS:
        target = _set_task(conn, task_instance_id, row.status, TaskEvent.SUCCEEDED, end_time=end,
                           is_timeout=False)
        if target is not Status.SUCCESS:
            return Recorded(task=target)
        return Recorded(task=target, flow=_release_downstream(
            conn, graph, row.flow_instance_id, row.task_name, row.flow_status, row.cal_dt, now, running_here))
    if outcome == OUTCOME_WAIT:
        delay = task.retry_interval_seconds or WAIT_CODE_RECHECK_SECONDS
        return Recorded(task=_set_task(conn, task_instance_id, row.status, TaskEvent.WAIT_CODE,
                                       not_before=end + delay * 1000))
    if outcome == OUTCOME_CANCEL:  # the runner killed it because the task was cancelled
        return Recorded(task=_set_task(conn, task_instance_id, row.status, TaskEvent.CANCEL, end_time=end))
    timed_out = outcome == OUTCOME_TIMEOUT
    if not result.consume_retry and row.flow_status == Status.RUNNING:
        return Recorded(task=_set_task(conn, task_instance_id, row.status, TaskEvent.RETRY, not_before=end))
    if row.recall_num < task.retry_limit and row.flow_status == Status.RUNNING:
        return Recorded(task=_set_task(conn, task_instance_id, row.status, TaskEvent.RETRY,
                                       recall_num=row.recall_num + 1, is_timeout=timed_out,
                                       not_before=end + task.retry_interval_seconds * 1000))
    event = TaskEvent.DIED if outcome == OUTCOME_INTERNAL else TaskEvent.TIMED_OUT if timed_out else TaskEvent.FAILED
    target = _set_task(conn, task_instance_id, row.status, event, end_time=end, is_timeout=timed_out)
    if target in FAILED:
        return Recorded(task=target, flow=_set_flow(conn, row.flow_instance_id, row.flow_status,
                                                    FlowEvent.TASK_FAILED, end, end_time=end))
    return Recorded(task=target)


# --- cancel -----------------------------------------------------------------------------------


def cancel_flow_instance(conn: sa.Connection, instance_id: str, status: int, now: int) -> None:
    """Flow CANCEL (`isCancelled`), every pending or running task CANCEL; IllegalTransition when
    the flow is finished. Running processes are killed by the process that owns their attempt."""
    target = _set_flow(conn, instance_id, status, FlowEvent.CANCEL, now, is_cancelled=True, end_time=now)
    if target is None:
        return
    rows = conn.execute(
        sa.select(task_instances.c.instance_id, task_instances.c.status)
        .where(task_instances.c.flow_instance_id == instance_id,
               task_instances.c.status.in_([int(s) for s in (*PENDING, Status.RUNNING)]))
    ).all()
    for row in rows:
        _set_task(conn, row.instance_id, row.status, TaskEvent.CANCEL, end_time=now)
