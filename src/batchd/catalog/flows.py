"""The workflow operations of the API, each a function over the request's one transaction.

Each validates everything it can before writing anything, and every write happens on the
connection the API commits only when the function returns: a refused Import leaves no flow, no
task and no version behind, and its ids are rolled back with the rest.

Functions return the API's `data` value (spec §3), so routes stay one call deep.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from batchd.catalog import flow_store, rendering
from batchd.catalog.editing import apply_save
from batchd.catalog.fields import INT64_MAX, FieldReader, sorters, to_int
from batchd.catalog.model import FlowDefinition, ImportRequest, StoredFlow, UserList
from batchd.catalog.permissions import Caller, can_read, is_owner, owns, require_owner, visits
from batchd.catalog.shapes import UTC, export_definition, flow_detail, my_flow_item, page_flow
from batchd.catalog.validation import PERIODIC, check_cron, parse_import, parse_save
from batchd.clock import now_ms
from batchd.errors import BatchdError, IllegalState, InvalidParameter
from batchd.store.database import Database
from batchd.store.identity import User, find_user_now
from batchd.store.tables import flows

ENTRY_API = 1

#: Search Flow sort fields: the 2020 docs' camelCase and the newer docs' snake_case.
SORT_COLUMNS = {
    "createTime": flows.c.create_time, "create_time": flows.c.create_time,
    "updateTime": flows.c.update_time, "update_time": flows.c.update_time,
    "startTime": flows.c.start_date, "start_time": flows.c.start_date,
}


async def import_flow(conn: AsyncConnection, caller: Caller, body: Any) -> dict[str, int]:
    """Import Flow: a new flow named `flowName` in `dirId`; the caller becomes its creator (an owner)."""
    request = parse_import(body)
    await flow_store.check_import_target(conn, caller.org_id, request.dir_id, request.flow_name)
    definition = await flow_store.resolve_links(conn, caller.org_id, request.definition, self_id=None, path="flowJson")
    flow_id = await flow_store.allocate_flow_id(conn, request.flow_id)
    definition = await flow_store.assign_task_ids(conn, definition)
    await flow_store.insert_flow(conn, _imported(request, caller, flow_id, definition))
    return {"flowId": flow_id}


def _imported(request: ImportRequest, caller: Caller, flow_id: int, definition: FlowDefinition) -> StoredFlow:
    now = now_ms()
    return StoredFlow(
        flow_id=flow_id, org_id=caller.org_id, dir_id=request.dir_id, definition=definition, active=False,
        creator=caller.user_name, create_time_ms=now, update_time_ms=now, update_user=caller.user_name,
        entry=ENTRY_API, version=1,
    )


class _OrdinaryWay(Exception):
    """Raised inside Import's one hop: this import needs `import_flow`."""


class KeptRecord(Protocol):
    """A record the import's transaction writes first and keeps even when the import is refused: the
    API's replay guard (`api.auth.PendingSignature`, a signed call's signature)."""

    recorded: bool  # set here once the transaction that wrote it has committed

    def record_now(self, conn: sa.Connection) -> bool:
        """Write it on `conn`; False when it cannot be (the import then takes the ordinary way,
        whose own record says why)."""
        ...


async def import_flow_in_one_hop(database: Database, user_id: str, identify: Callable[[User | None], Caller],
                                 body: Any, *, kept: KeptRecord | None = None) -> dict[str, int] | None:
    """Import Flow as `import_flow` does it, with every statement in one trip to the database's
    worker thread (`Database.run_write`) instead of one trip each (~0.2-0.3 ms apiece through the
    async layer); None when the import must take `import_flow` instead, in a transaction of its
    own (nothing of the import is kept here; `kept` may be).

    That is: a body `parse_import` refuses (`import_flow` reports it, after the caller check that
    comes first there), a flow with references (whose upstreams are looked up one by one), an
    import that chooses its flow id, a fresh database whose id counters have no rows yet, and a
    counter value an import that chose its own id has taken.
    `identify` turns the user row of `user_id` into the caller or raises what the API's caller
    check raises; it runs inside the transaction, as that check does on the ordinary path.
    `kept` is written first in the same transaction; a refusal (caller, directory, name: all
    found before the import writes anything) commits it and is then raised, and anything that
    rolls the import back after it wrote (then taking the ordinary way, or failing) rolls `kept`
    back too, leaving it unrecorded for the API to record on its own.
    """
    try:
        request = parse_import(body)
    except InvalidParameter:
        return None
    definition = request.definition
    if request.flow_id is not None or definition.flow_links or definition.task_links:
        return None

    def work(conn: sa.Connection) -> int | BatchdError:
        if kept is not None and not kept.record_now(conn):
            raise _OrdinaryWay
        try:
            caller = identify(find_user_now(conn, user_id))
            flow_store.check_import_target_now(conn, caller.org_id, request.dir_id, request.flow_name)
        except BatchdError as refused:
            return refused  # nothing written but `kept`, which is committed; the refusal is raised after
        taken = flow_store.take_import_ids(conn, flow_store.tasks_without_id(definition))
        if taken is None:
            raise _OrdinaryWay
        flow_id, task_ids = taken
        flow_store.insert_flow_rows(conn, _imported(request, caller, flow_id,
                                                    flow_store.with_task_ids(definition, task_ids)))
        return flow_id

    try:
        outcome = await database.run_write(work, short=True)
    except (_OrdinaryWay, sa.exc.IntegrityError):  # IntegrityError: see flow_store.take_import_ids
        return None  # rolled back whole, `kept` too: the ordinary way records it
    if kept is not None:
        kept.recorded = True
    if isinstance(outcome, BatchdError):
        raise outcome
    return {"flowId": outcome}


def parse_version(value: Any) -> int | None:
    """The batchd extension `version=N` on Get/Export/Load For Edit: an earlier saved version."""
    return None if value in (None, "") else to_int(value, "version", low=1)


async def rendered_flow_detail(conn: AsyncConnection, user_id: str, identify: Callable[[User | None], Caller],
                               flow_id: Any, *, version: Any = None, zone: dt.tzinfo = UTC) -> str | None:
    """Get Flow's FlowDetail as JSON text, from the answer stored with the flow
    (`catalog.rendering`), in one statement that also reads the calling user; None when the call
    must take `get_flow` instead: the flow is not of the caller's organisation or has no stored
    answer, an older version is asked for, or `flowId`/`version` is malformed (`get_flow` names
    it, after the caller check, in the order it always has).

    `identify`: as for `import_flow_in_one_hop`.
    """
    try:
        wanted, asked = flow_store.parse_flow_id(flow_id), parse_version(version)
    except InvalidParameter:
        return None
    return _filled_detail(await flow_store.stored_detail(conn, user_id, wanted), identify, asked, zone)


async def rendered_flow_detail_in_one_hop(database: Database, user_id: str,
                                          identify: Callable[[User | None], Caller], flow_id: Any, *,
                                          kept: KeptRecord, version: Any = None, zone: dt.tzinfo = UTC) -> str | None:
    """`rendered_flow_detail` for a signed call: `kept` (its signature) is written first and the
    answer read after it in one write transaction, in one trip to the database's worker thread
    (`Database.run_write`), instead of the record and the read each going their own way through
    the async layer. None as for `rendered_flow_detail`, and also when `kept` cannot be written
    (then nothing is kept here, and the API's own record says why). A refusal (the caller check)
    commits `kept` and is then raised, as in `import_flow_in_one_hop`."""
    try:
        wanted, asked = flow_store.parse_flow_id(flow_id), parse_version(version)
    except InvalidParameter:
        return None

    def work(conn: sa.Connection) -> str | None | BatchdError | _NotKept:
        if not kept.record_now(conn):
            return _NOT_KEPT
        try:
            return _filled_detail(flow_store.stored_detail_now(conn, user_id, wanted), identify, asked, zone)
        except BatchdError as refused:
            return refused  # nothing written but `kept`, which is committed; the refusal is raised after

    outcome = await database.run_write(work, short=True)
    if isinstance(outcome, _NotKept):
        return None
    kept.recorded = True
    if isinstance(outcome, BatchdError):
        raise outcome
    return outcome


class _NotKept:
    """`rendered_flow_detail_in_one_hop`'s work could not write its kept record."""


_NOT_KEPT = _NotKept()


def _filled_detail(found: flow_store.StoredDetail | None, identify: Callable[[User | None], Caller],
                   asked: int | None, zone: dt.tzinfo) -> str | None:
    """The caller check on what `stored_detail` found, then the stored answer filled for this
    call; None when the call must read the flow the full way (see `rendered_flow_detail`)."""
    caller = identify(None if found is None else found.user)
    if found is None or found.flow is None:
        return None
    flow = found.flow
    if flow.org_id != caller.org_id or flow.rendering is None or asked not in (None, flow.version):
        return None
    return rendering.fill(flow.rendering, rendering.CallValues(
        create_time_ms=flow.create_time_ms, update_time_ms=flow.update_time_ms,
        can_edit=owns(caller, creator=flow.creator, owners=flow.owners), can_read=True,
        user_locked=found.user.locked,
    ), zone)


async def get_flow(conn: AsyncConnection, caller: Caller, flow_id: Any, *, version: Any = None,
                   zone: dt.tzinfo = UTC, user_locked: bool = False) -> dict[str, Any]:
    """Get Flow and Load Flow For Edit: FlowDetail for any member of the flow's organisation."""
    flow, task_nodes = await flow_store.load_flow_outline(conn, caller.org_id, flow_store.parse_flow_id(flow_id),
                                                         version=parse_version(version))
    return flow_detail(flow, can_edit=is_owner(caller, flow), can_read=can_read(caller, flow),
                       user_locked=user_locked, zone=zone, task_nodes=task_nodes)


async def export_flow(conn: AsyncConnection, caller: Caller, flow_id: Any, *, version: Any = None) -> dict[str, Any]:
    """Export Flow: the portable definition, which Import Flow takes back unchanged."""
    flow = await flow_store.load_flow(conn, caller.org_id, flow_store.parse_flow_id(flow_id),
                                      version=parse_version(version))
    return export_definition(flow.definition)


async def save_flow(conn: AsyncConnection, caller: Caller, body: Any) -> dict[str, int]:
    """Save Flow: merge the graph-shaped body into the flow (see `catalog.editing`) as a new version.

    With `restoreVersion: N` the merge starts from version N instead of the current one, which
    rolls the flow back to N (as a new version, so the rollback can itself be undone).
    """
    request = parse_save(body)
    current = await flow_store.load_flow(conn, caller.org_id, request.flow_id)
    require_owner(caller, current, "save it", unlocked=True)
    base = current
    if request.restore_version is not None:
        base = await flow_store.load_flow(conn, caller.org_id, request.flow_id, version=request.restore_version)
    definition = apply_save(base.definition, request)
    if definition.name != current.definition.name:
        await flow_store.check_name_free(conn, caller.org_id, definition.name, "name", except_flow=current.flow_id)
    await flow_store.check_removed_tasks_unreferenced(conn, current.definition, definition, current.flow_id)
    definition = await flow_store.resolve_links(conn, caller.org_id, definition, self_id=current.flow_id, path="")
    await flow_store.check_no_dependency_cycle(conn, current.flow_id, flow_store.upstream_ids(definition))
    definition = await flow_store.assign_task_ids(conn, definition)
    saved = dataclasses.replace(
        current, definition=definition, version=current.version + 1, update_time_ms=now_ms(),
        update_user=caller.user_name, active=current.active if request.active is None else request.active,
    )
    await flow_store.update_flow(conn, current, saved)
    return {"flowId": current.flow_id}


async def delete_flow(conn: AsyncConnection, caller: Caller, flow_id: Any) -> str:
    """Delete Flow (a GET in EnOS): refused with 62104 while another flow references it."""
    flow = await flow_store.load_flow(conn, caller.org_id, flow_store.parse_flow_id(flow_id))
    require_owner(caller, flow, "delete it")
    users = await flow_store.dependents(conn, flow.flow_id)
    if users:
        raise IllegalState(
            "This workflow is relied on by other workflows and cannot be deleted. "
            f"Referenced by: {', '.join(users)}"
        )
    await flow_store.delete_flow_rows(conn, flow.flow_id)
    return ""


async def set_flow_active(conn: AsyncConnection, caller: Caller, body: Any, *, active: bool) -> str:
    """Enable Flow (active=1, the cron is checked again) and Disable Flow (active=0)."""
    flow_id = flow_store.parse_flow_id(FieldReader(body).raw("flowId"))
    flow = await flow_store.load_flow(conn, caller.org_id, flow_id)
    require_owner(caller, flow, "enable it" if active else "disable it", unlocked=True)
    if active:
        check_cron(flow.definition.cron, "freq", required=flow.definition.type == PERIODIC)
    await flow_store.set_active(conn, flow, active, caller.user_name, now_ms())
    return ""


def _fuzzy(conn: AsyncConnection, expression: str | None) -> sa.ColumnElement[bool] | None:
    """Fuzzy match on flow id or name: a case-insensitive substring, `%` and `_` taken literally.

    Written for speed, since it runs on every row of the organisation: the id is only compared
    when the expression is all digits (an id has nothing else), and on SQLite `LIKE` itself
    ignores case (for ASCII, exactly as SQLite's `lower()` does), so the name is not lowered row
    by row; PostgreSQL's `LIKE` is case-sensitive, so there the name is lowered.
    """
    if not expression or not expression.strip():
        return None
    text = expression.strip().lower().replace("\x00", "")
    name = flows.c.name if conn.dialect.name == "sqlite" else sa.func.lower(flows.c.name)
    match = name.contains(text, autoescape=True)
    if text.isdigit():
        match = sa.or_(sa.cast(flows.c.flow_id, sa.String).contains(text, autoescape=True), match)
    return match


def _order_by(pagination: FieldReader | None) -> list[sa.ColumnElement[Any]]:
    order = [column.desc() if descending else column.asc()
             for column, descending in sorters(pagination, SORT_COLUMNS, "use createTime, updateTime or startTime, or create_time, update_time, start_time")]
    return [*order, flows.c.flow_id.asc()]


async def search_flows(conn: AsyncConnection, caller: Caller, body: Any) -> list[dict[str, Any]]:
    """Search Flow: the organisation's flows matching `expression`, one page, as PageFlow items.

    `pageNo` is 1-based; 0 is taken as 1 (a newer doc sample sends 0). Without `pagination`
    every match is returned.
    """
    reader = FieldReader(body if body is not None else {})
    expression = reader.text("expression")
    pagination = FieldReader(reader.raw("pagination"), "pagination") if reader.has("pagination") else None
    query = sa.select(flows.c.flow_id, flows.c.name).where(flows.c.org_id == caller.org_id)
    match = _fuzzy(conn, expression)
    if match is not None:
        query = query.where(match)
    query = query.order_by(*_order_by(pagination))
    if pagination is not None:
        page_no = max(pagination.integer("pageNo", default=1, low=0), 1)
        page_size = pagination.integer("pageSize", required=True, low=1)
        offset = (page_no - 1) * page_size
        if offset > INT64_MAX:
            raise InvalidParameter(f"pagination: page {page_no} of {page_size} starts past the last possible row")
        query = query.limit(page_size).offset(offset)
    return [page_flow(row.flow_id, row.name) for row in await conn.execute(query)]


async def my_flows(conn: AsyncConnection, caller: Caller, expression: str | None) -> list[dict[str, Any]]:
    """Get My Flow: flows the caller owns or visits, optionally filtered like Search Flow."""
    names = [n for n in (caller.user_name, caller.user_id) if n]
    mine = [flows.c.creator.in_(names)]
    for name in names:
        marker = f";{name};"
        mine += [flows.c.owners.contains(marker, autoescape=True), flows.c.visitors.contains(marker, autoescape=True)]
    query = sa.select(flows.c.flow_id, flows.c.name, flows.c.cycle, flows.c.creator, flows.c.owners,
                      flows.c.visitors).where(flows.c.org_id == caller.org_id, sa.or_(*mine))
    match = _fuzzy(conn, expression)
    if match is not None:
        query = query.where(match)
    items = []
    for row in await conn.execute(query.order_by(flows.c.flow_id)):
        owner = owns(caller, creator=row.creator, owners=UserList.parse(row.owners))
        if owner or visits(caller, UserList.parse(row.visitors)):
            items.append(my_flow_item(row.flow_id, row.name, row.cycle, editable=owner))
    return items
