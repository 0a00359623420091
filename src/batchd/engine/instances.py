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
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from batchd.catalog import flow_store
from batchd.catalog.model import FlowDefinition, Parameter
from batchd.catalog.shapes import to_document
from batchd.clock import now_ms
from batchd.engine.status import Status
from batchd.errors import BatchdError, IllegalState, InvalidParameter
from batchd.store.statements import insert_many_if_absent
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
    moment = local_time(trigger_time_ms, zone)
    return f"{moment:%Y%m%d%H%M}00" if origin == "manual" else f"{moment:%Y%m%d%H%M%S}"


def business_date(trigger_time_ms: int, zone: dt.tzinfo) -> str:
    """`calDt`: the calendar date of the trigger time in the server zone, minus one day."""
    return (local_time(trigger_time_ms, zone).date() - dt.timedelta(days=1)).isoformat()


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
class _Snapshot:
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
    """
    for request in requests:
        if request.origin not in ORIGINS:
            raise ValueError(f"origin must be one of {ORIGINS}, not {request.origin!r}")
    zone = zone or _default_zone
    wanted = sorted({r.flow_id for r in requests})
    snapshots: dict[int, _Snapshot | None] = {}
    exists: set[int] = set()
    for first in range(0, len(wanted), 500):
        rows = (await conn.execute(
            sa.select(flows.c.flow_id, flows.c.org_id, flows.c.creator, flows.c.definition)
            .where(flows.c.flow_id.in_(wanted[first:first + 500]))
        )).all()
        for row in rows:
            exists.add(row.flow_id)
            snapshots[row.flow_id] = _snapshot(row)
    now = now_ms()
    planned: list[tuple[InstanceRequest, str | None, BatchdError | None, dict[str, Any] | None, list[dict[str, Any]]]] = []
    for request in requests:
        if request.flow_id not in exists:
            planned.append((request, None, InvalidParameter(f"flowId: workflow {request.flow_id} does not exist"),
                            None, []))
            continue
        snapshot = snapshots[request.flow_id]
        if snapshot is None or request.start_task_id is not None:
            snapshot = await _model_snapshot(conn, request.flow_id)
        try:
            row, task_rows = _instance_rows(snapshot, request, zone, now)
        except BatchdError as refused:
            planned.append((request, None, refused, None, []))
            continue
        planned.append((request, row["instance_id"], None, row, task_rows))
    # Insert the absent ones; RETURNING tells which this call made (a duplicate within the
    # batch or another process's insert is skipped by ON CONFLICT DO NOTHING and yields None).
    seen: set[str] = set()
    rows_to_insert = []
    for _, instance_id, refused, row, _ in planned:
        if refused is None and instance_id not in seen:
            seen.add(instance_id)
            rows_to_insert.append(row)
    made = set(await insert_many_if_absent(conn, flow_instances, rows_to_insert)) if rows_to_insert else set()
    task_rows = [t for _, instance_id, _, _, rows in planned if instance_id in made for t in rows]
    if task_rows:
        # distinct instances have distinct task rows; a batch-internal duplicate was dropped above
        unique = {t["instance_id"]: t for t in task_rows}
        await conn.execute(task_instances.insert(), list(unique.values()))
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


def _snapshot(row: sa.Row) -> _Snapshot | None:
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
    return _Snapshot(org_id=row.org_id, creator=row.creator, name=name, type=kind, owners=owners,
                     document=row.definition, tasks=tasks, parameters=pairs, relations=relations)


async def _model_snapshot(conn: AsyncConnection, flow_id: int) -> _Snapshot:
    """The snapshot through the catalogue's model (link names as they are now)."""
    flow = await flow_store.find_flow(conn, flow_id)
    if flow is None:
        raise InvalidParameter(f"flowId: workflow {flow_id} does not exist")
    definition = flow.definition
    return _Snapshot(
        org_id=flow.org_id, creator=flow.creator, name=definition.name, type=definition.type,
        owners=definition.owners.text, document=to_document(definition),
        tasks=tuple((t.task_id, t.name) for t in definition.tasks),
        parameters=tuple((p.key, p.value) for p in definition.parameters.items),
        relations=tuple((r.source, r.target, r.rerun) for r in definition.relations),
    )


def _instance_rows(
    snapshot: _Snapshot, request: InstanceRequest, zone: dt.tzinfo, now: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not snapshot.tasks:
        raise IllegalState(NO_TASK)
    chosen = {name for _, name in snapshot.tasks}
    if request.start_task_id is not None:
        start = next((name for task_id, name in snapshot.tasks if task_id == request.start_task_id), None)
        if start is None:
            raise InvalidParameter(
                f"taskId: task {request.start_task_id} is not a task of workflow {request.flow_id}")
        chosen = _reached(snapshot.relations, start)
    suffix = instance_suffix(request.trigger_time_ms, request.origin, zone)
    instance_id = f"{request.flow_id}-{suffix}"
    row = {
        "instance_id": instance_id, "flow_id": request.flow_id, "org_id": snapshot.org_id,
        "flow_name": snapshot.name, "flow_type": snapshot.type, "creator": snapshot.creator,
        "owners": snapshot.owners, "origin": request.origin, "status": int(Status.INIT), "is_cancelled": False,
        "trigger_time": request.trigger_time_ms, "cal_dt": business_date(request.trigger_time_ms, zone),
        "created_at": now, "updated_at": now, "start_task_id": request.start_task_id,
        "definition": snapshot.document,
        "parameters": effective_parameters(
            [Parameter(key=k, value=v) for k, v in snapshot.parameters], request.parameters),
    }
    task_rows = [
        {"instance_id": f"{task_id}-{suffix}", "flow_instance_id": instance_id, "task_id": task_id,
         "task_name": name, "status": int(Status.INIT if name in chosen else Status.SKIP), "created_at": now}
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
