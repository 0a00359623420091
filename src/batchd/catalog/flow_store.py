"""Reading and writing stored flows on the platform's tables, inside the caller's transaction.

A flow lives in several tables (store/tables.py): `flows` (one row: the current definition as a
document plus the columns searches need), `flow_versions` (every saved document), `tasks` (one
row per task: ids are global and the engine refers to them), `flow_dependencies` (one row per
upstream flow, so Delete can refuse a flow others depend on). Functions here keep them in step;
they never commit: the API commits or rolls back the whole request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from batchd.catalog import rendering
from batchd.catalog.fields import show, to_int
from batchd.catalog.model import FlowDefinition, FlowLink, StoredFlow, TaskDefinition, TaskLink, UserList
from batchd.catalog.shapes import TaskNode, from_document, outline_from_document, to_document
from batchd.errors import IllegalState, InvalidParameter
from batchd.store import ids
from batchd.store.identity import User
from batchd.store.statements import Prepared
from batchd.store.tables import directories, flow_dependencies, flow_versions, flows, id_counters, tasks, users

FLOW_COUNTER = "flow_id"
TASK_COUNTER = "task_id"

# The statements every Get and Import runs, built once: building one (and its cache key) cost
# ~0.1 ms a time, as much as running it on SQLite.
# Every column but the stored Get answer (`detail`), which only `rendered_detail` needs.
FLOW_COLUMNS = tuple(column for column in flows.c if column.name != "detail")
_FLOW_BY_ID = sa.select(*FLOW_COLUMNS).where(flows.c.flow_id == sa.bindparam("flow_id"))
_FLOW_ID_TAKEN = sa.select(flows.c.flow_id).where(flows.c.flow_id == sa.bindparam("flow_id"))
_IMPORT_TARGET = sa.select(
    sa.select(directories.c.dir_id)
    .where(directories.c.dir_id == sa.bindparam("dir_id"), directories.c.org_id == sa.bindparam("org_id"))
    .scalar_subquery().label("dir_id"),
    sa.select(flows.c.flow_id)
    .where(flows.c.org_id == sa.bindparam("org_id"), flows.c.name == sa.bindparam("name"))
    .limit(1).scalar_subquery().label("taken"),
)
_TAKE_IMPORT_IDS = (
    sa.update(id_counters)
    .where(id_counters.c.name.in_([FLOW_COUNTER, TASK_COUNTER]))
    .values(value=id_counters.c.value + sa.case((id_counters.c.name == FLOW_COUNTER, 1),
                                                else_=sa.bindparam("task_count", type_=sa.BigInteger)))
    .returning(id_counters.c.name, id_counters.c.value)
)
_STORED_DETAIL = (
    sa.select(users.c.org_id.label("user_org_id"), users.c.name.label("user_name"), users.c.locked,
              flows.c.org_id, flows.c.creator, flows.c.owners, flows.c.version, flows.c.create_time,
              flows.c.update_time, flows.c.detail)
    .select_from(users.outerjoin(flows, flows.c.flow_id == sa.bindparam("flow_id", type_=sa.BigInteger)))
    .where(users.c.user_id == sa.bindparam("user_id"))
)
_STORED_DETAIL_PREPARED = Prepared(_STORED_DETAIL)  # text and integers only: run on the DB-API cursor
_INSERT_FLOW = sa.insert(flows)
_INSERT_VERSION = sa.insert(flow_versions)
_INSERT_TASK = sa.insert(tasks)
_INSERT_DEPENDENCY = sa.insert(flow_dependencies)


def parse_flow_id(value: object, field: str = "flowId") -> int:
    """A flow id from a query string or body value; absent → 62102 naming the field."""
    if value is None or value == "":
        raise InvalidParameter(f"{field}: is required")
    return to_int(value, field, low=1)


def _not_found(flow_id: int) -> InvalidParameter:
    return InvalidParameter(f"flowId: workflow {flow_id} does not exist")


def _stored(row: sa.Row, definition: FlowDefinition | None = None, version: int | None = None) -> StoredFlow:
    return StoredFlow(
        flow_id=row.flow_id,
        org_id=row.org_id,
        dir_id=row.dir_id,
        definition=definition or from_document(row.definition),
        active=bool(row.active),
        creator=row.creator,
        create_time_ms=row.create_time,
        update_time_ms=row.update_time,
        update_user=row.update_user,
        entry=row.entry,
        version=version or row.version,
    )


async def find_flow(conn: AsyncConnection, flow_id: int, *, version: int | None = None) -> StoredFlow | None:
    """Flow `flow_id` of any organisation (as of `version`, current when None), or None when the
    flow does not exist. For the system's own readers (scheduler, engine, the `batchd flows` CLI);
    API operations use `load_flow`, which applies the caller's organisation."""
    row = (await conn.execute(_FLOW_BY_ID, {"flow_id": flow_id})).first()
    return None if row is None else await _flow_of_row(conn, row, version)


async def _flow_of_row(conn: AsyncConnection, row: sa.Row, version: int | None) -> StoredFlow:
    flow_id = row.flow_id
    if version is None or version == row.version:
        flow = _stored(row)
        return dataclasses.replace(flow, definition=await with_current_link_names(conn, flow.definition))
    document = (
        await conn.execute(
            sa.select(flow_versions.c.definition).where(
                flow_versions.c.flow_id == flow_id, flow_versions.c.version == version
            )
        )
    ).scalar_one_or_none()
    if document is None:
        raise InvalidParameter(f"version: workflow {flow_id} has no version {version} (current: {row.version})")
    definition = await with_current_link_names(conn, from_document(document))
    return _stored(row, definition, version)


async def load_flow(conn: AsyncConnection, org_id: str, flow_id: int, *, version: int | None = None) -> StoredFlow:
    """The flow as of `version` (current when None); another organisation's flow is not found."""
    row = await _flow_by_id(conn, org_id, flow_id)
    if row is None:
        raise _not_found(flow_id)
    return await _flow_of_row(conn, row, version)


async def load_flow_outline(conn: AsyncConnection, org_id: str, flow_id: int, *,
                            version: int | None = None) -> tuple[StoredFlow, tuple[TaskNode, ...] | None]:
    """`load_flow` for Get Flow: the current version read as an outline when it can be (its
    definition then has no tasks; the nodes come second), else as `load_flow` reads it."""
    row = await _flow_by_id(conn, org_id, flow_id)
    if row is None:
        raise _not_found(flow_id)
    if version is None or version == row.version:
        outline = outline_from_document(row.definition)
        if outline is not None:
            return _stored(row, outline[0]), outline[1]
    return await _flow_of_row(conn, row, version), None


def rendering_of_row(row: sa.Row) -> str | None:
    """The stored Get answer (`catalog.rendering`) for a `flows` row with the columns `_stored`
    reads: what the write that made the row would have stored (migration 0009 fills the rows
    written before it with this). Read as an outline where possible, as Get Flow reads it."""
    outline = outline_from_document(row.definition)
    if outline is not None:
        return rendering.render(_stored(row, outline[0]), outline[1])
    return rendering.render(_stored(row))


@dataclasses.dataclass(frozen=True, kw_only=True)
class VersionInfo:
    """One saved version of a flow: who saved it when (epoch ms)."""

    version: int
    saved_by: str
    saved_at_ms: int


async def list_versions(conn: AsyncConnection, flow_id: int) -> list[VersionInfo]:
    """Every saved version of `flow_id`, oldest first (empty when the flow does not exist)."""
    rows = await conn.execute(
        sa.select(flow_versions.c.version, flow_versions.c.saved_by, flow_versions.c.saved_at)
        .where(flow_versions.c.flow_id == flow_id)
        .order_by(flow_versions.c.version)
    )
    return [VersionInfo(version=r.version, saved_by=r.saved_by, saved_at_ms=r.saved_at) for r in rows]


def take_import_ids(conn: sa.Connection, task_count: int) -> tuple[int, list[int]] | None:
    """A new flow id and `task_count` task ids in one statement (the counters of `store.ids`,
    whose value is the last id given), for Import's one hop; None when a counter has no row yet
    (`allocate_flow_id` and `assign_task_ids` create them: the caller rolls back and takes that
    way). A flow id an import chose itself may be the one given here: inserting the flow then
    fails on its primary key, and the caller takes that way too (`allocate_flow_id` skips it)."""
    taken = {row.name: row.value for row in conn.execute(_TAKE_IMPORT_IDS, {"task_count": task_count})}
    if len(taken) != 2:
        return None
    last_task = int(taken[TASK_COUNTER])
    return int(taken[FLOW_COUNTER]), list(range(last_task - task_count + 1, last_task + 1))


@dataclasses.dataclass(frozen=True, kw_only=True)
class StoredAnswer:
    """Of a flow, what Get Flow's one statement reads: its organisation, the columns permissions
    and holes need, and its stored answer (`catalog.rendering`; None when it has none)."""

    org_id: str
    creator: str
    owners: UserList
    version: int
    create_time_ms: int
    update_time_ms: int
    rendering: str | None


@dataclasses.dataclass(frozen=True, kw_only=True)
class StoredDetail:
    """What Get Flow's one statement finds: the calling user and the flow (None: no such flow)."""

    user: User
    flow: StoredAnswer | None


async def stored_detail(conn: AsyncConnection, user_id: str, flow_id: int) -> StoredDetail | None:
    """The user `user_id` and flow `flow_id` of any organisation in one statement (one round
    trip, and on its own a consistent read: a single statement needs no transaction around it);
    None when there is no such user."""
    return _stored_detail_of((await conn.execute(_STORED_DETAIL, {"user_id": user_id, "flow_id": flow_id})).first(),
                             user_id)


def stored_detail_now(conn: sa.Connection, user_id: str, flow_id: int) -> StoredDetail | None:
    """`stored_detail` on a synchronous connection (a signed Get's one hop, which records the
    call's signature in the same transaction)."""
    return _stored_detail_of(_STORED_DETAIL_PREPARED.execute(conn, {"user_id": user_id, "flow_id": flow_id}).first(),
                             user_id)


def _stored_detail_of(row: sa.Row | None, user_id: str) -> StoredDetail | None:
    if row is None:
        return None
    user = User(user_id=user_id, org_id=row.user_org_id, name=row.user_name, locked=bool(row.locked))
    if row.org_id is None:
        return StoredDetail(user=user, flow=None)
    return StoredDetail(user=user, flow=StoredAnswer(
        org_id=row.org_id, creator=row.creator, owners=UserList.parse(row.owners), version=row.version,
        create_time_ms=row.create_time, update_time_ms=row.update_time, rendering=row.detail,
    ))


async def flow_id_taken(conn: AsyncConnection, flow_id: int) -> bool:
    return (await conn.execute(_FLOW_ID_TAKEN, {"flow_id": flow_id})).first() is not None


async def allocate_flow_id(conn: AsyncConnection, wanted: int | None) -> int:
    """`wanted` when given and free (the counter then skips past it), else the next counter value."""
    if wanted is not None and not await flow_id_taken(conn, wanted):
        await ids.reserve_at_least(conn, FLOW_COUNTER, wanted)
        return wanted
    while True:
        candidate = await ids.next_id(conn, FLOW_COUNTER)
        if not await flow_id_taken(conn, candidate):
            return candidate


async def check_name_free(conn: AsyncConnection, org_id: str, name: str, field: str, *,
                          except_flow: int | None = None) -> None:
    """Flow names are unique in an organisation: links name their upstream flow by name."""
    query = sa.select(flows.c.flow_id).where(flows.c.org_id == org_id, flows.c.name == name)
    if except_flow is not None:
        query = query.where(flows.c.flow_id != except_flow)
    _refuse_taken_name((await conn.execute(query)).scalar_one_or_none(), name, field)


def _refuse_taken_name(existing: int | None, name: str, field: str) -> None:
    if existing is not None:
        raise InvalidParameter(f"{field}: a workflow named {show(name)} already exists (flowId {existing})")


async def check_import_target(conn: AsyncConnection, org_id: str, dir_id: str, name: str) -> None:
    """Import Flow's two checks in one statement (one round trip, not two): `dirId` is a directory
    of the organisation, then `flowName` is free in it (`check_name_free`)."""
    _refuse_import_target((await conn.execute(_IMPORT_TARGET, {"dir_id": dir_id, "org_id": org_id, "name": name})).one(),
                          dir_id, name)


def check_import_target_now(conn: sa.Connection, org_id: str, dir_id: str, name: str) -> None:
    """`check_import_target` on a synchronous connection (Import's one hop)."""
    _refuse_import_target(conn.execute(_IMPORT_TARGET, {"dir_id": dir_id, "org_id": org_id, "name": name}).one(),
                          dir_id, name)


def _refuse_import_target(found: sa.Row, dir_id: str, name: str) -> None:
    if found.dir_id is None:
        raise InvalidParameter(f"dirId: Directory does not exist: {show(dir_id)}")
    _refuse_taken_name(found.taken, name, "flowName")


async def _flow_by_name(conn: AsyncConnection, org_id: str, name: str) -> sa.Row | None:
    query = sa.select(*FLOW_COLUMNS).where(flows.c.org_id == org_id, flows.c.name == name)
    return (await conn.execute(query)).first()


async def _flow_by_id(conn: AsyncConnection, org_id: str, flow_id: int | None) -> sa.Row | None:
    row = (await conn.execute(_FLOW_BY_ID, {"flow_id": flow_id})).first()
    return row if row is not None and row.org_id == org_id else None


def _referenced_task(upstream: sa.Row, task_name: str | None, task_id: int | None) -> TaskDefinition | None:
    definition = from_document(upstream.definition)
    return next(
        (t for t in definition.tasks if (t.name == task_name if task_name is not None else t.task_id == task_id)),
        None,
    )


async def resolve_links(conn: AsyncConnection, org_id: str, definition: FlowDefinition, *, self_id: int | None,
                        path: str) -> FlowDefinition:
    """Fill in the other half of every reference, in the caller's organisation only.

    Import names upstreams (`sourceFlowName`, `sourceTaskName`) and gets their ids; Save's graph
    names them by id and gets their names. Unknown upstreams, a reference to the flow itself,
    and task references to tasks that do not allow them (`asLink` false) are refused.
    """
    prefix = f"{path}." if path else ""
    flow_links: list[FlowLink] = []
    for i, link in enumerate(definition.flow_links):
        where = f"{prefix}flowLinks[{i}]"
        upstream = await _find_upstream(conn, org_id, link.source_flow_id, link.source_flow_name, where)
        if upstream.flow_id == self_id:
            raise InvalidParameter(f"{where}: a workflow cannot reference itself")
        flow_links.append(dataclasses.replace(link, source_flow_id=upstream.flow_id, source_flow_name=upstream.name))
    task_links: list[TaskLink] = []
    for i, tlink in enumerate(definition.task_links):
        where = f"{prefix}taskLinks[{i}]"
        if tlink.source_task_id is not None:  # from Save: the task id decides the flow
            owner = (await conn.execute(sa.select(tasks.c.flow_id).where(tasks.c.task_id == tlink.source_task_id)))
            upstream_id = owner.scalar_one_or_none()
            upstream = await _flow_by_id(conn, org_id, upstream_id)
            if upstream is None:
                raise InvalidParameter(f"{where}: task {tlink.source_task_id} does not exist")
            task = _referenced_task(upstream, None, tlink.source_task_id)
        else:
            upstream = await _find_upstream(conn, org_id, None, tlink.source_flow_name, where)
            task = _referenced_task(upstream, tlink.source_task_name, None)
            if task is None:
                raise InvalidParameter(
                    f"{where}.sourceTaskName: workflow {show(upstream.name)} has no task {show(tlink.source_task_name)}"
                )
        if upstream.flow_id == self_id:
            raise InvalidParameter(f"{where}: a workflow cannot reference its own task")
        if task is None or not task.as_link:
            name = task.name if task else tlink.source_task_id
            raise InvalidParameter(f"{where}: task {show(name)} does not allow references (asLink is false)")
        task_links.append(dataclasses.replace(
            tlink, source_flow_id=upstream.flow_id, source_flow_name=upstream.name,
            source_task_id=task.task_id, source_task_name=task.name,
        ))
    return dataclasses.replace(definition, flow_links=tuple(flow_links), task_links=tuple(task_links))


async def _find_upstream(conn: AsyncConnection, org_id: str, flow_id: int | None, name: str, where: str) -> sa.Row:
    if flow_id is not None:
        row = await _flow_by_id(conn, org_id, flow_id)
        if row is None:
            raise InvalidParameter(f"{where}: workflow {flow_id} does not exist")
        return row
    row = await _flow_by_name(conn, org_id, name)
    if row is None:
        raise InvalidParameter(f"{where}.sourceFlowName: no workflow named {show(name)} in this organisation")
    return row


async def with_current_link_names(conn: AsyncConnection, definition: FlowDefinition) -> FlowDefinition:
    """The definition with its references' flow and task names as they are *now*.

    References are kept by id; the names stored with them go stale when an upstream flow or task
    is renamed. Reads (Get Flow, Export Flow) show today's names, so an export re-imports. A
    reference whose upstream is gone (only possible in an old version) keeps its stored names.
    """
    flow_ids = upstream_ids(definition)
    task_ids = {link.source_task_id for link in definition.task_links if link.source_task_id is not None}
    if not flow_ids:
        return definition
    found = await conn.execute(sa.select(flows.c.flow_id, flows.c.name).where(flows.c.flow_id.in_(flow_ids)))
    flow_names = {row.flow_id: row.name for row in found}
    task_names: dict[int, str] = {}
    if task_ids:
        found = await conn.execute(sa.select(tasks.c.task_id, tasks.c.name).where(tasks.c.task_id.in_(task_ids)))
        task_names = {row.task_id: row.name for row in found}
    return dataclasses.replace(
        definition,
        flow_links=tuple(
            dataclasses.replace(link, source_flow_name=flow_names.get(link.source_flow_id, link.source_flow_name))
            for link in definition.flow_links
        ),
        task_links=tuple(
            dataclasses.replace(
                link,
                source_flow_name=flow_names.get(link.source_flow_id, link.source_flow_name),
                source_task_name=task_names.get(link.source_task_id, link.source_task_name),
            )
            for link in definition.task_links
        ),
    )


def upstream_ids(definition: FlowDefinition) -> set[int]:
    return {link.source_flow_id for link in (*definition.flow_links, *definition.task_links)
            if link.source_flow_id is not None}


async def check_no_dependency_cycle(conn: AsyncConnection, flow_id: int, upstreams: Iterable[int]) -> None:
    """Refuse references that would make flows wait on each other forever (7 → 3 → 7).

    Walks `flow_dependencies` upstream from the new references, breadth first, remembering who
    reached whom, so the message can list the flow ids on the loop in dependency order.
    """
    reached_from = {u: flow_id for u in upstreams}  # upstream -> the flow that depends on it
    frontier = list(reached_from)
    while frontier:
        rows = await conn.execute(
            sa.select(flow_dependencies.c.flow_id, flow_dependencies.c.upstream_flow_id)
            .where(flow_dependencies.c.flow_id.in_(frontier))
            .order_by(flow_dependencies.c.flow_id, flow_dependencies.c.upstream_flow_id)
        )
        frontier = []
        for downstream, upstream in rows:
            if upstream == flow_id:
                chain = [downstream]
                while chain[-1] != flow_id:
                    chain.append(reached_from[chain[-1]])
                loop = [flow_id, *reversed(chain[:-1]), flow_id]
                raise InvalidParameter(
                    "flows: workflow references would form a cycle: " + " -> ".join(map(str, loop))
                )
            if upstream not in reached_from:
                reached_from[upstream] = downstream
                frontier.append(upstream)


async def assign_task_ids(conn: AsyncConnection, definition: FlowDefinition) -> FlowDefinition:
    """Give every task without an id a new one, all taken from the counter in one statement."""
    return with_task_ids(definition, await ids.next_ids(conn, TASK_COUNTER, tasks_without_id(definition)))


def tasks_without_id(definition: FlowDefinition) -> int:
    return sum(t.task_id is None for t in definition.tasks)


def with_task_ids(definition: FlowDefinition, task_ids: list[int]) -> FlowDefinition:
    """The definition with `task_ids` given, in order, to the tasks that have no id yet."""
    fresh = iter(task_ids)
    new_tasks = [t if t.task_id is not None else _with_task_id(t, next(fresh)) for t in definition.tasks]
    return dataclasses.replace(definition, tasks=tuple(new_tasks))


def _with_task_id(task: TaskDefinition, task_id: int) -> TaskDefinition:
    """`dataclasses.replace(task, task_id=task_id)` without re-running `__init__` over twenty
    fields (a fifth of an Import's Python time for 50 tasks): a copy of the already-built record
    with one field changed, which is all replace would produce."""
    copy = object.__new__(TaskDefinition)
    copy.__dict__.update(task.__dict__, task_id=task_id)
    return copy


def _columns(definition: FlowDefinition, document: str) -> dict[str, object]:
    """The `flows` columns mirrored from the definition, for queries that never parse documents.

    Owners and visitors are stored normalised as `;a;b;` so `LIKE '%;name;%'` finds a user.
    """
    return {
        "name": definition.name,
        "owners": UserList.of(list(definition.owners.names)).text,
        "visitors": UserList.of(list(definition.visitors.names)).text,
        "type": definition.type,
        "cron": definition.cron,
        "cycle": definition.cycle.value,
        "start_date": definition.start_date.isoformat() if definition.start_date else "",
        "definition": document,
    }


async def insert_flow(conn: AsyncConnection, flow: StoredFlow) -> None:
    await conn.run_sync(insert_flow_rows, flow)


def insert_flow_rows(conn: sa.Connection, flow: StoredFlow) -> None:
    """The rows of a new flow: `flows` (with its Get answer, `rendering`), its tasks, its
    dependencies and its first version, each table one statement (tasks and dependencies one
    executemany). Synchronous, so Import can run it in its one hop to the worker thread
    (`import_flow_in_one_hop`); `insert_flow` runs the same through `run_sync`."""
    document = to_document(flow.definition)
    conn.execute(_INSERT_FLOW, dict(
        flow_id=flow.flow_id, org_id=flow.org_id, dir_id=flow.dir_id, creator=flow.creator,
        active=int(flow.active), entry=flow.entry, version=flow.version, create_time=flow.create_time_ms,
        update_time=flow.update_time_ms, update_user=flow.update_user, detail=rendering.render(flow),
        **_columns(flow.definition, document),
    ))
    task_rows = [{"task_id": t.task_id, "flow_id": flow.flow_id, "name": t.name} for t in flow.definition.tasks]
    if task_rows:
        conn.execute(_INSERT_TASK, task_rows)
    dependency_rows = _dependency_rows(flow.flow_id, flow.definition)
    if dependency_rows:
        conn.execute(_INSERT_DEPENDENCY, dependency_rows)
    conn.execute(_INSERT_VERSION, _version_row(flow, document))


async def update_flow(conn: AsyncConnection, before: StoredFlow, after: StoredFlow) -> None:
    """Write `after` as the new current version of the flow `before` was loaded as."""
    document = to_document(after.definition)
    await conn.execute(sa.update(flows).where(flows.c.flow_id == after.flow_id).values(
        active=int(after.active), version=after.version, update_time=after.update_time_ms,
        update_user=after.update_user, detail=rendering.render(after), **_columns(after.definition, document),
    ))
    await _write_tasks(conn, after.flow_id, before.definition.tasks, after.definition.tasks)
    await conn.execute(sa.delete(flow_dependencies).where(flow_dependencies.c.flow_id == after.flow_id))
    await _write_dependencies(conn, after.flow_id, after.definition)
    await _write_version(conn, after, document)


async def _write_tasks(conn: AsyncConnection, flow_id: int, old: tuple[TaskDefinition, ...],
                       new: tuple[TaskDefinition, ...]) -> None:
    """Make the `tasks` rows of `flow_id` match `new`: drop, rename, insert — in that order, and
    renames through a temporary name, so swapping two names never trips the unique constraint."""
    kept = {t.task_id: t for t in new}
    gone = [t.task_id for t in old if t.task_id not in kept]
    if gone:
        await conn.execute(sa.delete(tasks).where(tasks.c.task_id.in_(gone)))
    old_names = {t.task_id: t.name for t in old}
    renamed = [t for t in new if t.task_id in old_names and old_names[t.task_id] != t.name]
    for task in renamed:
        await conn.execute(sa.update(tasks).where(tasks.c.task_id == task.task_id).values(name=_parked(task.task_id)))
    for task in renamed:
        await conn.execute(sa.update(tasks).where(tasks.c.task_id == task.task_id).values(name=task.name))
    added = [t for t in new if t.task_id not in old_names]
    if added:
        rows = [{"task_id": t.task_id, "flow_id": flow_id, "name": t.name} for t in added]
        await conn.execute(_INSERT_TASK, rows)


def _parked(task_id: int | None) -> str:
    """A temporary task name no real one can equal: longer than any accepted name (128)."""
    return f"{'~' * 140}{task_id}"


def _dependency_rows(flow_id: int, definition: FlowDefinition) -> list[dict[str, int]]:
    return [{"flow_id": flow_id, "upstream_flow_id": u} for u in sorted(upstream_ids(definition))]


async def _write_dependencies(conn: AsyncConnection, flow_id: int, definition: FlowDefinition) -> None:
    rows = _dependency_rows(flow_id, definition)
    if rows:
        await conn.execute(_INSERT_DEPENDENCY, rows)


def _version_row(flow: StoredFlow, document: str) -> dict[str, object]:
    return dict(flow_id=flow.flow_id, version=flow.version, definition=document, saved_by=flow.update_user,
                saved_at=flow.update_time_ms)


async def _write_version(conn: AsyncConnection, flow: StoredFlow, document: str) -> None:
    await conn.execute(_INSERT_VERSION, _version_row(flow, document))


async def dependents(conn: AsyncConnection, flow_id: int) -> list[str]:
    """Names of the flows that reference `flow_id`, for Delete's refusal message."""
    rows = await conn.execute(
        sa.select(flows.c.name)
        .join(flow_dependencies, flow_dependencies.c.flow_id == flows.c.flow_id)
        .where(flow_dependencies.c.upstream_flow_id == flow_id, flows.c.flow_id != flow_id)
        .order_by(flows.c.name)
    )
    return [row.name for row in rows]


async def check_removed_tasks_unreferenced(conn: AsyncConnection, before: FlowDefinition, after: FlowDefinition,
                                           flow_id: int) -> None:
    """62104 when a task that other flows reference (a task link) would disappear in a Save,
    for the same reason Delete Flow refuses a referenced flow: the reference would dangle."""
    kept = {t.task_id for t in after.tasks}
    removed = {t.task_id: t.name for t in before.tasks if t.task_id not in kept}
    if not removed:
        return
    rows = await conn.execute(
        sa.select(flows.c.name, flows.c.definition)
        .join(flow_dependencies, flow_dependencies.c.flow_id == flows.c.flow_id)
        .where(flow_dependencies.c.upstream_flow_id == flow_id, flows.c.flow_id != flow_id)
        .order_by(flows.c.name)
    )
    for row in rows:
        for link in from_document(row.definition).task_links:
            if link.source_task_id in removed:
                raise IllegalState(
                    f"tasks: task {show(removed[link.source_task_id])} is referenced by workflow "
                    f"{show(row.name)} and cannot be removed; remove that reference first"
                )


async def delete_flow_rows(conn: AsyncConnection, flow_id: int) -> None:
    for table in (flow_dependencies, tasks, flow_versions):
        await conn.execute(sa.delete(table).where(table.c.flow_id == flow_id))
    await conn.execute(sa.delete(flows).where(flows.c.flow_id == flow_id))


async def set_active(conn: AsyncConnection, flow: StoredFlow, active: bool, user: str, now: int) -> None:
    """Enable/Disable: the flag, who did it when, and the Get answer that shows all three."""
    changed = dataclasses.replace(flow, active=active, update_user=user, update_time_ms=now)
    await conn.execute(sa.update(flows).where(flows.c.flow_id == flow.flow_id).values(
        active=int(active), update_time=now, update_user=user, detail=rendering.render(changed),
    ))
