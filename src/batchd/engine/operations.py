"""The API operations on instances (spec §3.1, 3.9, 3.11, 3.12, 3.15, 3.20-3.22).

Each function takes the request's transaction and the caller and returns the API's `data`.
Another organisation's instances do not exist for the caller (62102), exactly as its flows.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from batchd.catalog import flow_store
from batchd.catalog.fields import FieldReader, show, sorters, to_int
from batchd.catalog.model import FlowDefinition, UserList
from batchd.catalog.permissions import Caller, owns, require_owner
from batchd.catalog.shapes import from_document
from batchd.clock import now_ms
from batchd.engine import instances, progress, shapes
from batchd.engine.dispatcher import wake_all
from batchd.engine.status import Status
from batchd.engine.transitions import IllegalTransition
from batchd.errors import AccountLocked, IllegalState, InternalError, InvalidParameter, NoPrivilege
from batchd.store.tables import flow_instances, flows, task_attempts, task_instances

CANNOT_CREATE = ("Cannot create workflow instance. Please check if the workflow or task exist, "
                 "and do not trigger the same workflow repeatedly in 1 minute.")
NOT_FOUND = "Instance not found"
NO_LOG = "No log found"

#: Parsed snapshots keyed by the stored document text itself: a watched instance is read again
#: every few seconds, and parsing a 1,000-task snapshot costs tens of milliseconds. Keyed by the
#: text, a hit can only ever be the same document (no id reuse or second database can confuse it).
#: Few entries: a parsed 1,000-task snapshot takes megabytes, and the point is the run on screen.
_parse_snapshot = functools.lru_cache(maxsize=8)(from_document)

#: List Flow Instances sort fields, camelCase (2020 docs) and snake_case (newer docs).
SORT_COLUMNS = {
    "createTime": flow_instances.c.created_at, "create_time": flow_instances.c.created_at,
    "updateTime": flow_instances.c.updated_at, "update_time": flow_instances.c.updated_at,
    "startTime": flow_instances.c.start_time, "start_time": flow_instances.c.start_time,
    "triggerTime": flow_instances.c.trigger_time, "trigger_time": flow_instances.c.trigger_time,
    "endTime": flow_instances.c.end_time, "end_time": flow_instances.c.end_time,
}


# --- triggers ---------------------------------------------------------------------------------


async def trigger(conn: AsyncConnection, caller: Caller, body: Any, *, zone: dt.tzinfo,
                  with_task: bool = False, with_parameters: bool = False) -> dict[str, str]:
    """Trigger Flow, Trigger Flow From Task (`with_task`), Update And Trigger Flow (`with_parameters`)."""
    reader = FieldReader(body if body is not None else {})
    flow_id = flow_store.parse_flow_id(reader.raw("flowId"))
    trigger_ms = reader.integer("triggerTime", default=now_ms(), low=0) if reader.has("triggerTime") else now_ms()
    start_task = to_int(reader.raw("taskId", required=True), "taskId", low=1) if with_task else None
    overrides = None
    if with_parameters:
        overrides = instances.parse_parameter_overrides(reader.raw("parameters", default=[]))
    # Only the owners are needed here (the instance copies the stored document itself): the
    # outline, not the whole model of a document of thousands of tasks and relations.
    flow, _ = await flow_store.load_flow_outline(conn, caller.org_id, flow_id)
    require_owner(caller, flow, "trigger it", unlocked=True)
    instance_id = await instances.create_flow_instance(
        conn, flow_id=flow_id, trigger_time_ms=trigger_ms, origin="manual", parameters=overrides,
        start_task_id=start_task, zone=zone,
    )
    if instance_id is None:
        taken = f"{flow_id}-{instances.instance_suffix(trigger_ms, 'manual', zone)}"
        raise InvalidParameter(f"{CANNOT_CREATE} (instance {taken} already exists)")
    wake_all()
    return {"flowInstanceId": instance_id}


# --- flow instances ---------------------------------------------------------------------------


async def _flow_row(conn: AsyncConnection, caller: Caller, instance_id: str | None, field: str) -> sa.Row:
    if not instance_id:
        raise InvalidParameter(f"{field}: is required")
    row = (await conn.execute(sa.select(flow_instances).where(
        flow_instances.c.instance_id == instance_id, flow_instances.c.org_id == caller.org_id))).first()
    if row is None:
        raise InvalidParameter(f"{NOT_FOUND}: {field} {show(instance_id)}")
    return row


def _owns(caller: Caller, row: sa.Row) -> bool:
    return owns(caller, creator=row.creator, owners=UserList.parse(row.owners))


async def cancel(conn: AsyncConnection, caller: Caller, body: Any) -> str:
    """Cancel Flow Instance: owners of the workflow (as of the trigger) only; 62104 once finished."""
    reader = FieldReader(body if body is not None else {})
    instance_id = reader.text("flowInstId") or reader.text("flowInstanceId")
    row = await _flow_row(conn, caller, instance_id, "flowInstId")
    if not _owns(caller, row):
        raise NoPrivilege(f"User has no privilege: only an owner of workflow {row.flow_id} may cancel its instances")
    if getattr(caller, "locked", False):
        raise AccountLocked("Your account has been locked")
    try:
        await conn.run_sync(progress.cancel_flow_instance, row.instance_id, row.status, now_ms())
    except IllegalTransition:
        raise IllegalState(
            f"Instance {row.instance_id} is already finished ({Status(row.status).name}); "
            "only INIT, WAIT, READY, RUNNING or FAIL instances can be cancelled"
        ) from None
    wake_all()
    return ""


async def _upstream_statuses(conn: AsyncConnection, definition: FlowDefinition, cal_dt: str
                             ) -> dict[str, tuple[str | None, str]]:
    found: dict[str, tuple[str | None, str]] = {}
    for link in definition.flow_links:
        row = (await conn.execute(sa.select(flow_instances.c.instance_id, flow_instances.c.status).where(
            flow_instances.c.flow_id == link.source_flow_id, flow_instances.c.cal_dt == cal_dt)
            .order_by(flow_instances.c.trigger_time.desc()).limit(1))).first()
        if row is not None:
            found[link.link_id] = (row.instance_id, Status(row.status).name)
    for task_link in definition.task_links:
        row = (await conn.execute(
            sa.select(task_instances.c.instance_id, task_instances.c.status)
            .join(flow_instances, flow_instances.c.instance_id == task_instances.c.flow_instance_id)
            .where(flow_instances.c.flow_id == task_link.source_flow_id, flow_instances.c.cal_dt == cal_dt,
                   task_instances.c.task_id == task_link.source_task_id)
            .order_by(flow_instances.c.trigger_time.desc()).limit(1))).first()
        if row is not None:
            found[task_link.link_id] = (row.instance_id, Status(row.status).name)
    return found


async def get_flow_instance(conn: AsyncConnection, caller: Caller, instance_id: str | None, *,
                            zone: dt.tzinfo) -> dict[str, Any]:
    """Get Flow Instance: FlowInstance with `graph`, the per-node statuses as names."""
    row = await _flow_row(conn, caller, instance_id, "flowInstId")
    definition = _parse_snapshot(row.definition)
    tasks = (await conn.execute(
        sa.select(task_instances.c.task_name, task_instances.c.instance_id, task_instances.c.status)
        .where(task_instances.c.flow_instance_id == row.instance_id))).all()
    graph = shapes.instance_graph(row, definition, list(tasks),
                                  await _upstream_statuses(conn, definition, row.cal_dt))
    return shapes.flow_instance(row, definition, zone=zone, can_edit=_owns(caller, row), graph=graph)


def _statuses(value: Any) -> list[int] | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    parts = value if isinstance(value, list) else str(value).split(",")
    codes = []
    for part in parts:
        code = to_int(str(part).strip(), "status", low=-1, high=10)
        codes.append(code)
    return codes


def _sorters(pagination: FieldReader | None) -> list[tuple[sa.Column[Any], bool]]:
    return sorters(pagination, SORT_COLUMNS,
                   "use createTime, updateTime, startTime, triggerTime or endTime, or their snake_case")


def _order_by(chosen: list[tuple[sa.Column[Any], bool]]) -> list[Any]:
    """The ORDER BY of a listing: the sorters, then newest trigger first, then the id. An instance
    not started (or not ended) yet sorts before the others ascending and after them descending,
    on both databases (SQLite's own rule; PostgreSQL's default is the opposite)."""
    order = [(column.desc().nulls_last() if descending else column.asc().nulls_first()) if column.nullable
             else (column.desc() if descending else column.asc()) for column, descending in chosen]
    return [*order, flow_instances.c.trigger_time.desc(), flow_instances.c.instance_id.asc()]


def _start_order_keys(flow_id: int, descending: bool) -> sa.Select[Any]:
    """The instance ids of one workflow in start-time order, from the two partial covering
    indexes of migration 0010 (not started yet; started) without reading an instance row."""
    fi = flow_instances
    unstarted = sa.select(fi.c.instance_id, sa.literal(0).label("part"), sa.null().label("start_time"),
                          fi.c.trigger_time).where(fi.c.flow_id == flow_id, fi.c.start_time.is_(None))
    started = sa.select(fi.c.instance_id, sa.literal(1).label("part"), fi.c.start_time,
                        fi.c.trigger_time).where(fi.c.flow_id == flow_id, fi.c.start_time.is_not(None))
    both = sa.union_all(unstarted, started).subquery()
    return sa.select(both.c.instance_id).order_by(
        both.c.part.desc() if descending else both.c.part.asc(),
        both.c.start_time.desc() if descending else both.c.start_time.asc(),
        both.c.trigger_time.desc(), both.c.instance_id.asc())


async def list_flow_instances(conn: AsyncConnection, caller: Caller, body: Any, *,
                              zone: dt.tzinfo) -> dict[str, Any]:
    """List Flow Instances: the caller's organisation's instances matching every filter given."""
    return await conn.run_sync(list_flow_instances_now, caller, body, zone=zone)


def list_flow_instances_now(conn: sa.Connection, caller: Caller, body: Any, *, zone: dt.tzinfo) -> dict[str, Any]:
    """`list_flow_instances` on a synchronous connection: its few statements in one trip to the
    database's worker thread (`Database.run_read`), as a dashboard polling the list calls it."""
    reader = FieldReader(body if body is not None else {})
    where = [flow_instances.c.org_id == caller.org_id]
    one_flow: int | None = None  # the workflow asked for, when it is the caller organisation's
    if reader.has("flowId") and str(reader.raw("flowId")).strip():
        flow_id = flow_store.parse_flow_id(reader.raw("flowId"))
        # One workflow's instances belong to the workflow's organisation: checked once on
        # `flows`, so that count and page come from `flow_instances(flow_id, trigger_time)`
        # without reading every instance row for its org_id (with a long history, most of
        # the call's time).
        ours = conn.execute(sa.select(flows.c.flow_id).where(
            flows.c.flow_id == flow_id, flows.c.org_id == caller.org_id)).first() is not None
        where = [flow_instances.c.flow_id == flow_id] if ours else [sa.false()]
        one_flow = flow_id if ours else None
    if reader.has("type") and str(reader.raw("type")).strip():
        where.append(flow_instances.c.flow_type == reader.integer("type", low=0, high=2))
    owner = reader.text("owner").strip()
    if owner:
        where.append(sa.or_(flow_instances.c.creator == owner,
                            flow_instances.c.owners.contains(owner, autoescape=True)))
    expression = reader.text("expression").strip().lower()
    if expression:
        where.append(sa.or_(sa.func.lower(flow_instances.c.instance_id).contains(expression, autoescape=True),
                            sa.func.lower(flow_instances.c.flow_name).contains(expression, autoescape=True)))
    if reader.has("fromTriggerTime") and str(reader.raw("fromTriggerTime")).strip():
        where.append(flow_instances.c.trigger_time >= reader.integer("fromTriggerTime"))
    if reader.has("toTriggerTime") and str(reader.raw("toTriggerTime")).strip():
        where.append(flow_instances.c.trigger_time <= reader.integer("toTriggerTime"))
    statuses = _statuses(reader.raw("status"))
    if statuses is not None:
        where.append(flow_instances.c.status.in_(statuses))
    pagination = FieldReader(reader.raw("pagination"), "pagination") if reader.has("pagination") else None
    count = conn.execute(sa.select(sa.func.count()).select_from(flow_instances).where(*where)).scalar_one()
    chosen = _sorters(pagination)
    order = _order_by(chosen)
    query = sa.select(*_LISTED_COLUMNS).where(*where).order_by(*order)
    if pagination is not None:
        page_no = max(pagination.integer("pageNo", default=1, low=0), 1)
        page_size = pagination.integer("pageSize", required=True, low=1)
        # The page's keys first, then its rows: sorting by a column no index orders otherwise
        # puts every matching row, stored snapshot and all, through the sorter. One workflow by
        # start time (the console's run history) reads its keys from indexes alone (0010).
        if one_flow is not None and len(where) == 1 and [c for c, _ in chosen] == [flow_instances.c.start_time]:
            keys = _start_order_keys(one_flow, chosen[0][1])
        else:
            keys = sa.select(flow_instances.c.instance_id).where(*where).order_by(*order)
        page = keys.limit(page_size).offset((page_no - 1) * page_size)
        query = sa.select(*_LISTED_COLUMNS).where(
            flow_instances.c.instance_id.in_(page.scalar_subquery())).order_by(*order)
    rows = conn.execute(query).all()
    listed = {row.instance_id: instances.ListedFlow.known(row.instance_id, row.created_at) for row in rows}
    unknown = [instance_id for instance_id, fields in listed.items() if fields is None]
    if unknown:  # snapshots and parameters are read only for instances not listed before
        for instance_id, created_at, document, parameters in conn.execute(
                sa.select(flow_instances.c.instance_id, flow_instances.c.created_at, flow_instances.c.definition,
                          flow_instances.c.parameters)
                .where(flow_instances.c.instance_id.in_(unknown))):
            listed[instance_id] = instances.ListedFlow.remember(instance_id, created_at, document, parameters)
    items = [shapes.flow_instance(row, listed[row.instance_id], zone=zone, can_edit=_owns(caller, row), graph=None)
             for row in rows]
    return {"flowInsts": items, "count": count}


#: A listed instance's columns: all but its snapshot and parameters (stored after it), which
#: are read once per instance and cached (`instances.ListedFlow`).
_LISTED_COLUMNS = [column for column in flow_instances.c if column.name not in ("definition", "parameters")]


# --- task instances ---------------------------------------------------------------------------


async def _task_rows(conn: AsyncConnection, caller: Caller, instance_id: str | None) -> tuple[sa.Row, sa.Row]:
    if not instance_id:
        raise InvalidParameter("taskInstId: is required")
    task = (await conn.execute(sa.select(task_instances).where(task_instances.c.instance_id == instance_id))).first()
    flow = None if task is None else (await conn.execute(sa.select(flow_instances).where(
        flow_instances.c.instance_id == task.flow_instance_id, flow_instances.c.org_id == caller.org_id))).first()
    if task is None or flow is None:
        raise InvalidParameter(f"{NOT_FOUND}: taskInstId {show(instance_id)}")
    return task, flow


async def get_task_instance(conn: AsyncConnection, caller: Caller, instance_id: str | None, *,
                            zone: dt.tzinfo) -> dict[str, Any]:
    """Get Task Instance: one TaskInstance object (the documented struct sample is one object)."""
    task, flow = await _task_rows(conn, caller, instance_id)
    definition = from_document(flow.definition)
    task_def = definition.task(task.task_name)
    assert task_def is not None
    return shapes.task_instance(task, flow, task_def, definition, zone=zone)


async def get_task_log(conn: AsyncConnection, caller: Caller, instance_id: str | None,
                       max_length: str | None) -> dict[str, str]:
    """Get Task Instance Log: every attempt's header and output; `maxLength` keeps the *tail*."""
    task, _ = await _task_rows(conn, caller, instance_id)
    limit = None if not max_length else to_int(max_length, "maxLength", low=0)
    path = (await conn.execute(
        sa.select(task_attempts.c.log_path).where(task_attempts.c.task_instance_id == task.instance_id)
        .order_by(task_attempts.c.attempt.desc()).limit(1))).scalar_one_or_none()
    if path is None or not Path(path).exists():
        raise InternalError(NO_LOG)
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    if limit is not None and len(text) > limit:
        text = text[len(text) - limit:] if limit else ""
    return {"log": text}
