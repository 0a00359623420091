"""Creating flow instances and their task instances, in the caller's transaction.

`create_flow_instance` is the one way an instance comes to exist: Trigger Flow, Trigger Flow From
Task and Update And Trigger Flow call it, and so does the scheduler (`origin="schedule"`).

Ids (spec §2.5, docs/decisions.md "Engine: instance ids"): `{flowId}-{suffix}` and, for each task,
`{taskId}-{suffix}`, where the suffix is the trigger time in the server's zone:
`yyyyMMddHHmm00` for manual triggers (seconds forced to 00, so a second trigger within the same
minute collides and is refused) and `yyyyMMddHHmmss` for scheduled fires (a cron may fire
several times a minute). The instance id is the primary key: a second scheduler process creating
the same fire simply finds it taken and gets None.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from batchd.catalog import flow_store
from batchd.catalog.model import FlowDefinition, Parameter
from batchd.catalog.shapes import from_document, to_document
from batchd.clock import now_ms
from batchd.engine.status import Status
from batchd.errors import BatchdError, IllegalState, InvalidParameter
from batchd.store.tables import flow_instances, flows, task_instances

ORIGINS = ("manual", "schedule")
NO_TASK = "This workflow has no task. You cannot trigger it."
UTC = dt.timezone.utc

# The zone instance ids and business dates are computed in when a caller passes none; the
# running Engine sets it from Settings.timezone (see dispatcher.Engine.start).
_default_zone: dt.tzinfo = UTC


def set_default_zone(zone: dt.tzinfo) -> None:
    global _default_zone
    _default_zone = zone


def local_time(epoch_ms: int, zone: dt.tzinfo) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).astimezone(zone)


def instance_suffix(trigger_time_ms: int, origin: str, zone: dt.tzinfo) -> str:
    return _suffix(local_time(trigger_time_ms, zone), origin)


def _suffix(moment: dt.datetime, origin: str) -> str:
    return f"{moment:%Y%m%d%H%M}00" if origin == "manual" else f"{moment:%Y%m%d%H%M%S}"


def business_date(trigger_time_ms: int, zone: dt.tzinfo) -> str:
    """`calDt`: the calendar date of the trigger time in the server zone, minus one day."""
    return _business_date(local_time(trigger_time_ms, zone))


def _business_date(moment: dt.datetime) -> str:
    return (moment.date() - dt.timedelta(days=1)).isoformat()


def selected_tasks(definition: FlowDefinition, start_task: str) -> set[str]:
    """Trigger Flow From Task: the start task and what it reaches through `rerun: true` edges."""
    return _reached([(r.source, r.target, r.rerun) for r in definition.relations], start_task)


def effective_parameters(flow_parameters: Iterable[Parameter], overrides: Mapping[str, str] | None) -> str:
    """The run's parameters as the wire's JSON text: the flow's, then the trigger's overrides by key."""
    merged = {p.key: p.value for p in flow_parameters}
    merged.update(overrides or {})
    return json.dumps([{"key": k, "value": v} for k, v in merged.items()], ensure_ascii=False,
                      separators=(",", ":"))


@dataclass(frozen=True, kw_only=True)
class InstanceRequest:
    """One instance to create: what Trigger Flow (and friends) or one scheduler fire asks for."""

    flow_id: int
    trigger_time_ms: int
    origin: str
    parameters: Mapping[str, str] | None = None
    start_task_id: int | None = None


@dataclass(frozen=True)
class Creation:
    """The answer to one `InstanceRequest`: its id, None when the id was taken, or why the
    engine refused it (`refused`, a 62102/62104 error) — so a batch never fails as a whole."""

    request: InstanceRequest
    instance_id: str | None
    refused: BatchdError | None = None


@dataclass(frozen=True)
class ListedFlow:
    """The four fields of an instance's snapshot that a FlowInstance shows, and the instance's
    `parameters` column: what a listed instance shows beyond its row's small columns, fixed
    when the instance is created.

    List Flow Instances shows a page of instances, each with its own snapshot of tens of KB;
    building the whole `FlowDefinition` of each (`from_document`) was most of the page's cost
    (~0.5 ms per item, docs/performance.md "History"). These fields are read straight from the
    stored JSON, which `catalog.shapes.to_document` wrote from the same values. The parameters
    are kept with them because on SQLite the column is stored after the snapshot: reading it
    walks the snapshot's overflow pages (~5 ms per refresh of a console watching a 1,000-task
    layered instance, whose snapshot is 1 MB).
    """

    cron: str
    cycle: str
    submitter: str
    alert_mode: int
    parameters: str  # the instance's effective parameters, as stored (JSON text)

    @classmethod
    def of(cls, definition: FlowDefinition, parameters: str) -> ListedFlow:
        return cls(definition.cron, definition.cycle.value, definition.submitter, definition.alert_mode, parameters)

    @classmethod
    def read(cls, document: str, parameters: str) -> ListedFlow:
        """From a stored document; one in another layout goes through the model parser."""
        doc = json.loads(document)
        fields = (doc.get("cron"), doc.get("cycle"), doc.get("submitter"), doc.get("alertMode"))
        if cls.plain(fields):
            return cls(*fields, parameters)
        return cls.of(from_document(document), parameters)

    @staticmethod
    def plain(fields: tuple[Any, ...]) -> bool:
        """True when (cron, cycle, submitter, alertMode) read from a document are as the model
        gives them: three strings and an integer."""
        return all(isinstance(v, str) for v in fields[:3]) and type(fields[3]) is int

    @classmethod
    def known(cls, instance_id: str, created_at: int) -> ListedFlow | None:
        """The fields of an instance listed before. A snapshot is written once, with its row,
        so (id, creation time) names one for good; a console watching a running 1,000-task
        instance otherwise parsed its ~200 KB snapshot on every refresh."""
        return _LISTED.get((instance_id, created_at))

    @classmethod
    def remember(cls, instance_id: str, created_at: int, document: str, parameters: str) -> ListedFlow:
        return cls.read(document, parameters).keep(instance_id, created_at)

    def keep(self, instance_id: str, created_at: int) -> ListedFlow:
        """Remember these as the fields of the instance (`known`). The process creating an
        instance keeps them as it inserts the row (`_create`), so that listing the instance
        never parses its snapshot here: for a 1,000-task workflow (~1 MB) ~10-15 ms, which the
        first List after a trigger spent while the run's first tasks waited to start. Kept
        before the transaction commits: should it roll back, the entry names an (id, creation
        millisecond) that no row has, and is never asked for."""
        if len(_LISTED) >= LISTED_KEPT:
            del _LISTED[next(iter(_LISTED))]
        _LISTED[(instance_id, created_at)] = self
        return self


#: How many instances' `ListedFlow` are kept (a few hundred bytes each).
LISTED_KEPT = 4096
_LISTED: dict[tuple[str, int], ListedFlow] = {}


@dataclass(frozen=True)
class Snapshot:
    """What an instance copies from its flow: the stored definition text as is, plus the few
    fields the instance row mirrors, read with `json.loads` rather than the model parser."""

    org_id: str
    creator: str
    name: str
    type: int
    owners: str
    document: str
    tasks: tuple[tuple[int, str], ...]  # (task id, name) in definition order
    parameters: tuple[tuple[str, str], ...]
    relations: tuple[tuple[str, str, bool], ...]  # (source, target, rerun)
    parameters_text: str  # the run's parameters without overrides (`effective_parameters`)
    listed: ListedFlow | None  # what List Flow Instances shows of it, with `parameters_text`


async def create_flow_instance(
    conn: AsyncConnection,
    *,
    flow_id: int,
    trigger_time_ms: int,
    origin: str,
    parameters: Mapping[str, str] | None = None,
    start_task_id: int | None = None,
    zone: dt.tzinfo | None = None,
) -> str | None:
    """Create a flow instance of `flow_id` and its task instances; its id, or None when taken.

    `parameters` override the flow's parameters for this run only. With `start_task_id`, only
    that task and its `rerun: true` descendants run; the other tasks are created SKIP.
    Raises InvalidParameter (62102) for an unknown flow or task, IllegalState (62104) for a flow
    without tasks. Every instance starts INIT; the engine's next pass queues or admits it.
    """
    request = InstanceRequest(flow_id=flow_id, trigger_time_ms=trigger_time_ms, origin=origin,
                              parameters=parameters, start_task_id=start_task_id)
    (creation,) = await create_flow_instances(conn, [request], zone=zone)
    if creation.refused is not None:
        raise creation.refused
    return creation.instance_id


async def create_flow_instances(
    conn: AsyncConnection, requests: Sequence[InstanceRequest], *, zone: dt.tzinfo | None = None
) -> list[Creation]:
    """Create many instances in the caller's transaction with a handful of statements.

    The scheduler fires up to a batch of flows per transaction; per-fire statements (flow load,
    document parse and re-serialisation, two inserts) were nearly all of its fire lag. Here the
    flows are read in one SELECT, each document is `json.loads`-ed (no model parse) and copied
    as stored — it *is* `to_document(definition)` as the catalogue saved it, so the snapshot is
    the same text as before and later edits never change a run — and instances and task
    instances are inserted with one executemany each. A document with flow/task links (their
    names are shown as they are *now*, `flow_store.with_current_link_names`), parameters that
    are not plain strings or an older layout, or a start task take the model path instead.
    The scheduler runs the same on the database's worker thread (`create_instances_now`).
    """
    _check_origins(requests)
    wanted = sorted({r.flow_id for r in requests})
    snapshots: dict[int, Snapshot | None] = {}
    for first in range(0, len(wanted), 500):
        rows = (await conn.execute(SNAPSHOT_SELECT.where(flows.c.flow_id.in_(wanted[first:first + 500])))).all()
        snapshots.update((row.flow_id, plain_snapshot(row)) for row in rows)
    models: dict[int, Snapshot] = {}
    for request in requests:
        if _needs_model(request, snapshots) and request.flow_id not in models:
            models[request.flow_id] = await _model_snapshot(conn, request.flow_id)
    return await conn.run_sync(_create, requests, snapshots, models, zone or _default_zone)


def create_instances_now(
    conn: sa.Connection, requests: Sequence[InstanceRequest], snapshots: Mapping[int, Snapshot],
    *, zone: dt.tzinfo | None = None,
) -> list[Creation]:
    """`create_flow_instances` on a synchronous connection (`Database.run_write`), for requests
    without a start task whose flows' `plain_snapshot`s the caller read (`SNAPSHOT_SELECT`) in
    this transaction; a flow missing from `snapshots` is refused as not existing. A flow whose
    `plain_snapshot` is None needs the model path: the async `create_flow_instances`."""
    _check_origins(requests)
    if any(r.start_task_id is not None for r in requests):
        raise ValueError("a start task needs create_flow_instances")
    return _create(conn, requests, snapshots, {}, zone or _default_zone)


def _needs_model(request: InstanceRequest, snapshots: Mapping[int, Snapshot | None]) -> bool:
    return request.flow_id in snapshots and (snapshots[request.flow_id] is None or request.start_task_id is not None)


def _check_origins(requests: Sequence[InstanceRequest]) -> None:
    for request in requests:
        if request.origin not in ORIGINS:
            raise ValueError(f"origin must be one of {ORIGINS}, not {request.origin!r}")


def _create(
    conn: sa.Connection, requests: Sequence[InstanceRequest], snapshots: Mapping[int, Snapshot | None],
    models: Mapping[int, Snapshot], zone: dt.tzinfo,
) -> list[Creation]:
    now = now_ms()
    planned: list[tuple[InstanceRequest, str | None, BatchdError | None, tuple[Any, ...] | None, list[tuple[Any, ...]]]] = []
    listed: dict[str, ListedFlow] = {}  # what List Flow Instances shows of each, by id
    for request in requests:
        if request.flow_id not in snapshots:
            planned.append((request, None, InvalidParameter(f"flowId: workflow {request.flow_id} does not exist"),
                            None, []))
            continue
        snapshot = models[request.flow_id] if _needs_model(request, snapshots) else snapshots[request.flow_id]
        assert snapshot is not None
        try:
            row, tasks = _instance_rows(snapshot, request, zone, now)
        except BatchdError as refused:
            planned.append((request, None, refused, None, []))
            continue
        planned.append((request, row[0], None, row, tasks))
        if snapshot.listed is not None:
            listed.setdefault(row[0], replace(snapshot.listed, parameters=row[_INSTANCE_COLUMNS.index("parameters")]))
    # Insert the absent ones; which this call made decides the answer (a duplicate within the
    # batch or another process's instance yields None).
    tasks_of: dict[str, list[tuple[Any, ...]]] = {}  # the first request of each id
    rows_to_insert = []
    for _, instance_id, refused, row, task_rows in planned:
        if refused is None and instance_id not in tasks_of:
            tasks_of[instance_id] = task_rows
            rows_to_insert.append(row)
    made = _insert_absent(conn, rows_to_insert) if rows_to_insert else set()
    for instance_id in made:
        fields = listed.get(instance_id)
        if fields is not None:
            fields.keep(instance_id, now)
    task_rows = [t for instance_id in tasks_of if instance_id in made for t in tasks_of[instance_id]]
    if task_rows:
        _insert_tasks(conn, task_rows)
    answers: list[Creation] = []
    claimed: set[str] = set()
    for request, instance_id, refused, _, _ in planned:
        if refused is not None:
            answers.append(Creation(request, None, refused))
        elif instance_id in made and instance_id not in claimed:
            claimed.add(instance_id)
            answers.append(Creation(request, instance_id))
        else:
            answers.append(Creation(request, None))
    return answers


# Column order of the row tuples `_instance_rows` makes.
_INSTANCE_COLUMNS = (
    "instance_id", "flow_id", "org_id", "flow_name", "flow_type", "creator", "owners", "origin", "status",
    "is_cancelled", "trigger_time", "cal_dt", "created_at", "updated_at", "start_task_id", "definition", "parameters",
)
_TASK_COLUMNS = ("instance_id", "flow_instance_id", "task_id", "task_name", "status", "created_at")


def _plain_insert(table: sa.Table, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


_SQLITE_INSERT_INSTANCE = _plain_insert(flow_instances, _INSTANCE_COLUMNS)
_SQLITE_INSERT_TASK = _plain_insert(task_instances, _TASK_COLUMNS)


def _insert_absent(conn: sa.Connection, rows: list[tuple[Any, ...]]) -> set[str]:
    """Insert the rows whose instance id is free; the ids inserted.

    SQLite: every write transaction holds the database's write lock from its start (`BEGIN
    IMMEDIATE`, store/database.py), so the ids read as taken here stay exactly those until the
    commit, and the free rows go in with one plain executemany of the driver (SQLAlchemy's
    per-row parameter processing and its multi-row RETURNING cost more than SQLite's work);
    a clash would raise, never pass silently. PostgreSQL: another process may insert the same
    id meanwhile, so `ON CONFLICT DO NOTHING ... RETURNING` says which rows were this call's."""
    if conn.dialect.name == "sqlite":
        ids = [row[0] for row in rows]
        taken: set[str] = set()
        for first in range(0, len(ids), 500):
            taken.update(conn.execute(sa.select(flow_instances.c.instance_id).where(
                flow_instances.c.instance_id.in_(ids[first:first + 500]))).scalars())
        free = [row for row in rows if row[0] not in taken]
        if free:
            conn.exec_driver_sql(_SQLITE_INSERT_INSTANCE, free)
        return {row[0] for row in free}
    statement = (postgresql.insert(flow_instances).on_conflict_do_nothing(index_elements=["instance_id"])
                 .returning(flow_instances.c.instance_id))
    return set(conn.execute(statement, [dict(zip(_INSTANCE_COLUMNS, row)) for row in rows]).scalars())


def _insert_tasks(conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(_SQLITE_INSERT_TASK, rows)
    else:
        conn.execute(task_instances.insert(), [dict(zip(_TASK_COLUMNS, row)) for row in rows])


SNAPSHOT_SELECT = sa.select(flows.c.flow_id, flows.c.org_id, flows.c.creator, flows.c.definition)
"""The columns of `flows` that `plain_snapshot` reads (callers may select more)."""


class _SnapshotMemo:
    """The last plain snapshot of each flow, valid while its row's text is the same.

    Parsing the stored document (`json.loads`, ~25 µs for 3 tasks, far more for 50) was a third
    of a scheduler batch; a flow fires again and again with an unchanged document. An entry is
    used only when the row's org, creator and a 128-bit BLAKE2 digest of its document equal the
    ones it was made from, so any change to the stored text is seen on the next read. Bounded:
    emptied when it holds `limit` flows. Shared by the event loop and the database worker thread;
    a lost update between them only costs a parse."""

    def __init__(self, limit: int = 50_000) -> None:
        self._limit = limit
        self._entries: dict[int, tuple[tuple[str, str, bytes], Snapshot | None]] = {}

    def get(self, row: sa.Row) -> Snapshot | None:
        key = (row.org_id, row.creator, hashlib.blake2b(row.definition.encode(), digest_size=16).digest())
        entry = self._entries.get(row.flow_id)
        if entry is not None and entry[0] == key:
            snapshot = entry[1]
            # The text is the row's own (equal by digest), not the one parsed earlier.
            return None if snapshot is None else replace(snapshot, document=row.definition)
        snapshot = _snapshot(row)
        if len(self._entries) >= self._limit:
            self._entries.clear()
        # Kept without the text (a 50-task document is ~30 KB; the row brings it every time).
        self._entries[row.flow_id] = (key, None if snapshot is None else replace(snapshot, document=""))
        return snapshot


_memo = _SnapshotMemo()


def plain_snapshot(row: sa.Row) -> Snapshot | None:
    """What an instance of the flow in `row` (`SNAPSHOT_SELECT`'s columns) copies, read cheaply;
    None when only the model path reads the document right (links, unusual parameters)."""
    return _memo.get(row)


def _snapshot(row: sa.Row) -> Snapshot | None:
    """The cheap read of a stored document, or None when only the model parser reads it right."""
    try:
        doc = json.loads(row.definition)
        if doc.get("flowLinks") or doc.get("taskLinks") or doc.get("linkRelations"):
            return None
        tasks = tuple((t["taskId"], t["name"]) for t in doc["tasks"])
        params = json.loads(doc.get("parameters") or "[]")
        pairs = tuple((p["key"], p["value"]) for p in params)
        relations = tuple((r["sourceTaskName"], r["targetTaskName"], r.get("rerun") is True) for r in doc.get("relations") or ())
        name, kind, owners = doc["name"], doc["type"], doc["owners"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    plain = (
        all(type(i) is int and isinstance(n, str) for i, n in tasks)
        and all(isinstance(k, str) and k.strip() and isinstance(v, str) for k, v in pairs)
        and len({k for k, _ in pairs}) == len(pairs)
        and isinstance(name, str) and type(kind) is int and isinstance(owners, str)
    )
    if not plain:
        return None
    parameters_text = _parameters_text(pairs, None)
    listed = (doc.get("cron"), doc.get("cycle"), doc.get("submitter"), doc.get("alertMode"))
    return Snapshot(org_id=row.org_id, creator=row.creator, name=name, type=kind, owners=owners,
                     document=row.definition, tasks=tasks, parameters=pairs, relations=relations,
                     parameters_text=parameters_text,
                     listed=ListedFlow(*listed, parameters_text) if ListedFlow.plain(listed) else None)


async def _model_snapshot(conn: AsyncConnection, flow_id: int) -> Snapshot:
    """The snapshot through the catalogue's model (link names as they are now)."""
    flow = await flow_store.find_flow(conn, flow_id)
    if flow is None:
        raise InvalidParameter(f"flowId: workflow {flow_id} does not exist")
    definition = flow.definition
    pairs = tuple((p.key, p.value) for p in definition.parameters.items)
    parameters_text = _parameters_text(pairs, None)
    return Snapshot(
        org_id=flow.org_id, creator=flow.creator, name=definition.name, type=definition.type,
        owners=definition.owners.text, document=to_document(definition),
        tasks=tuple((t.task_id, t.name) for t in definition.tasks),
        parameters=pairs, relations=tuple((r.source, r.target, r.rerun) for r in definition.relations),
        parameters_text=parameters_text, listed=ListedFlow.of(definition, parameters_text),
    )


def _parameters_text(pairs: tuple[tuple[str, str], ...], overrides: Mapping[str, str] | None) -> str:
    return effective_parameters([Parameter(key=k, value=v) for k, v in pairs], overrides)


def _instance_rows(
    snapshot: Snapshot, request: InstanceRequest, zone: dt.tzinfo, now: int
) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """The instance's row (`_INSTANCE_COLUMNS`) and its task rows (`_TASK_COLUMNS`)."""
    if not snapshot.tasks:
        raise IllegalState(NO_TASK)
    chosen = None
    if request.start_task_id is not None:
        start = next((name for task_id, name in snapshot.tasks if task_id == request.start_task_id), None)
        if start is None:
            raise InvalidParameter(
                f"taskId: task {request.start_task_id} is not a task of workflow {request.flow_id}")
        chosen = _reached(snapshot.relations, start)
    moment = local_time(request.trigger_time_ms, zone)
    suffix = _suffix(moment, request.origin)
    instance_id = f"{request.flow_id}-{suffix}"
    parameters = (snapshot.parameters_text if request.parameters is None
                  else _parameters_text(snapshot.parameters, request.parameters))
    row = (
        instance_id, request.flow_id, snapshot.org_id, snapshot.name, snapshot.type, snapshot.creator,
        snapshot.owners, request.origin, int(Status.INIT), False, request.trigger_time_ms,
        _business_date(moment), now, now, request.start_task_id, snapshot.document, parameters,
    )
    init, skip = int(Status.INIT), int(Status.SKIP)
    task_rows = [
        (f"{task_id}-{suffix}", instance_id, task_id, name, init if chosen is None or name in chosen else skip, now)
        for task_id, name in snapshot.tasks
    ]
    return row, task_rows


def _reached(relations: Iterable[tuple[str, str, bool]], start_task: str) -> set[str]:
    """Trigger Flow From Task over a snapshot's relations (same walk as `selected_tasks`)."""
    chosen = {start_task}
    frontier = [start_task]
    while frontier:
        source = frontier.pop()
        for rel_source, target, rerun in relations:
            if rel_source == source and rerun and target not in chosen:
                chosen.add(target)
                frontier.append(target)
    return chosen


def parse_parameter_overrides(value: Any, path: str = "parameters") -> dict[str, str]:
    """Update And Trigger Flow's `parameters`: a JSON array of `{key, value}`, the same array
    inside a string (the Java sample), or plain `"key=value"` strings (the Python sample)."""
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InvalidParameter(f"{path}: not a JSON array: {exc.msg} at column {exc.colno}") from None
    if isinstance(value, Mapping):  # a plain {"k": "v"} map, as the doc's type "Map" suggests
        return {str(k): _text(v) for k, v in value.items()}
    if not isinstance(value, list):
        raise InvalidParameter(f"{path}: must be an array of {{key, value}} objects")
    result: dict[str, str] = {}
    for i, item in enumerate(value):
        if isinstance(item, Mapping) and "key" in item:
            key, text = str(item["key"]), _text(item.get("value"))
        elif isinstance(item, str) and "=" in item:
            key, text = item.split("=", 1)
        else:
            raise InvalidParameter(f"{path}[{i}]: must be a {{key, value}} object or a \"key=value\" string")
        if not key.strip():
            raise InvalidParameter(f"{path}[{i}].key: must not be empty")
        result[key.strip()] = text
    return result


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)
