"""Turning the JSON bodies of Import Flow and Save Flow into records, or refusing them.

Every refusal is an `InvalidParameter` (62102) whose message starts with the path of the field at
fault, as the user wrote it (`flowJson.tasks[2].timeout: -5 is out of range 0-604800`). The ranges
are decisions of batchd, written down in docs/decisions.md ("Validation ranges").

The DAG rules (unique names, known endpoints, no self-loop, no cycle, links are roots) live in
`check_definition`, which Save Flow runs too, after merging its graph into the stored flow.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Mapping
from typing import Any

from batchd.catalog.fields import FieldReader, show, to_int
from batchd.catalog.model import (
    TASK_KIND_BY_CODE,
    TASK_KIND_BY_NAME,
    Cycle,
    FlowDefinition,
    FlowLink,
    GraphFlowNode,
    GraphRelation,
    GraphTaskNode,
    ImportRequest,
    LinkRelation,
    NamedRelation,
    Parameter,
    Parameters,
    Position,
    RunMode,
    SaveRequest,
    TaskDefinition,
    TaskKind,
    TaskLink,
    UserList,
)
from batchd.cron import CronExpression
from batchd.errors import InvalidParameter

# Ranges (inclusive). Units are seconds; see docs/decisions.md for why these bounds.
FLOW_TYPES = (0, 2)  # 0 manual, 1 periodic, 2 temporary
ALERT_MODES = (0, 3)  # 0 off, 1 e-mail, 2 SMS, 3 both
SYNC_TYPES = (0, 1)  # 0 file, 1 data
TIMEOUT_SECONDS = (0, 604_800)  # 0 = no limit; at most one week
RETRY_LIMIT = (0, 100)
RETRY_INTERVAL_SECONDS = (0, 86_400)
PRIORITY_LEVEL = (0, 100)
EXIT_CODE = (0, 255)
NAME_MAX = 128
TASK_MODES = (1, 2)
KEY_TYPES = (0, 2)
CPU_CORES = (0.1, 2.0)
MEMORY_GB = (0.3, 4.0)
MAX_PARALLEL = (0, 1000)
PERIODIC = 1


def parse_import(body: Any) -> ImportRequest:
    """Import Flow's body: `flowName`, `dirId`, `flowJson`, optional `desc` and `flowId`."""
    reader = FieldReader(body)
    flow_name = reader.text("flowName", required=True, non_empty=True, max_length=NAME_MAX).strip()
    dir_id = reader.text("dirId", required=True, non_empty=True).strip()
    flow_id = reader.integer("flowId", default=0, low=1) or None
    flow_json = FieldReader(_flow_json(reader), "flowJson")
    definition = parse_definition(flow_json, name=flow_name)
    if reader.has("desc"):
        definition = dataclasses.replace(definition, desc=reader.text("desc"))
    check_definition(definition, "flowJson")
    return ImportRequest(flow_name=flow_name, dir_id=dir_id, definition=definition, flow_id=flow_id)


def _flow_json(reader: FieldReader) -> Any:
    """`flowJson` is documented as an object, typed `List<JSONObject>` by the dev docs, and some
    clients send the exported JSON as a string: accept all three."""
    value = reader.raw("flowJson", required=True)
    if isinstance(value, str):
        value, _ = reader.embedded_json("flowJson", default="{}")
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def parse_definition(reader: FieldReader, *, name: str, check_crons: bool = True) -> FlowDefinition:
    """The portable FlowDefinition (Export's output, Import's `flowJson`); the name is given.

    `check_crons=False` is for reading back stored documents: their crons were checked when they
    were written, and a stricter cron parser later must not make existing flows unreadable
    (Enable Flow checks the cron again).
    """
    flow_type = reader.integer("type", required=True, low=FLOW_TYPES[0], high=FLOW_TYPES[1])
    cron = reader.text("cron").strip()
    if check_crons:
        check_cron(cron, reader.at("cron"), required=flow_type == PERIODIC)
    return FlowDefinition(
        name=name,
        cycle=parse_cycle(reader.raw("cycle", required=True), reader.at("cycle")),
        cron=cron,
        parameters=parse_parameters(reader, "parameters"),
        alert_mode=reader.integer("alertMode", low=ALERT_MODES[0], high=ALERT_MODES[1]),
        submitter=reader.text("submitter"),
        owners=UserList.parse(reader.text("owners")),
        visitors=UserList.parse(reader.text("visitors")),
        type=flow_type,
        sync_type=reader.integer("syncType", default=1, low=SYNC_TYPES[0], high=SYNC_TYPES[1]),
        desc=reader.text("desc"),
        start_date=parse_date(reader.text("startTime"), reader.at("startTime")),
        tasks=tuple(parse_task(item, check_crons=check_crons) for item in reader.objects("tasks")),
        relations=tuple(plain_relation(item.data) or _parse_relation(item) for item in reader.objects("relations")),
        flow_links=tuple(_parse_flow_link(item) for item in reader.objects("flowLinks")),
        task_links=tuple(_parse_task_link(item) for item in reader.objects("taskLinks")),
        link_relations=tuple(_parse_link_relation(item) for item in reader.objects("linkRelations")),
    )


def parse_task(reader: FieldReader, *, check_crons: bool = True) -> TaskDefinition:
    """One portable TaskDefinition; `type` is kept exactly as sent for export.

    Tasks whose values are already plain JSON of the right types (what `plain_task` takes) are
    built directly; the rest are read field by field, which is also what names the field at
    fault when something is wrong.
    """
    direct = plain_task(reader.data)
    if direct is not None:
        if check_crons:
            check_cron(direct.cron, reader.at("cron"), required=False)
        return direct
    return read_task_fields(reader, check_crons=check_crons)


def read_task_fields(reader: FieldReader, *, check_crons: bool = True) -> TaskDefinition:
    """`parse_task` field by field: any JSON a client may send, and the error naming the field."""
    original_type, kind = parse_task_type(reader.raw("type", required=True), reader.at("type"))
    cron = reader.text("cron").strip()
    if check_crons:
        check_cron(cron, reader.at("cron"), required=False)
    return TaskDefinition(
        name=reader.text("name", required=True, non_empty=True, max_length=NAME_MAX),
        type=original_type,
        kind=kind,
        resource=reader.text("resource", default="default"),
        cmd=reader.text("cmd", max_length=1_000_000),
        submitter=reader.text("submitter"),
        file_package=reader.text("filePackage"),
        cron=cron,
        priority_level=reader.integer("priorityLevel", low=PRIORITY_LEVEL[0], high=PRIORITY_LEVEL[1]),
        timeout_seconds=reader.integer("timeout", low=TIMEOUT_SECONDS[0], high=TIMEOUT_SECONDS[1]),
        retry_limit=reader.integer("retryLimit", low=RETRY_LIMIT[0], high=RETRY_LIMIT[1]),
        retry_interval_seconds=reader.integer(
            "retryInterval", low=RETRY_INTERVAL_SECONDS[0], high=RETRY_INTERVAL_SECONDS[1]
        ),
        success_codes=parse_codes(reader.text("successCode"), reader.at("successCode")),
        wait_codes=parse_codes(reader.text("waitCode"), reader.at("waitCode")) if reader.has("waitCode") else None,
        as_link=reader.boolean("asLink"),
        run_mode=parse_run_mode(reader, "runMode"),
        sync_type=reader.integer("syncType", default=1, low=SYNC_TYPES[0], high=SYNC_TYPES[1]),
    )


_PLAIN_TEXT = ("name", "resource", "cmd", "submitter", "filePackage", "cron", "successCode", "runMode")
_PLAIN_INT = ("priorityLevel", "timeout", "retryLimit", "retryInterval", "syncType")


def plain_task(td: Mapping[str, Any], *, task_id: int | None = None,
               position: Position | None = None) -> TaskDefinition | None:
    """The task `parse_task` would read from `td`, when every field is present as plain JSON of
    its own type (strings, integers, a boolean) and valid; else None, and the caller reads the
    task field by field.

    Reading 50 tasks through FieldReader cost ~2 ms per Import Flow and per stored document read;
    this path makes the same checks (lengths, NUL, ranges, type, codes, run mode; not the task
    cron, which the caller checks) without a reader per field. It is tested equal to the
    field-by-field read (tests/catalog/test_stored_decode.py).
    """
    texts = [td.get(key) for key in _PLAIN_TEXT]
    ints = [td.get(key) for key in _PLAIN_INT]
    wait = td.get("waitCode")
    if (
        not all(type(value) is str for value in texts)
        or not all(type(value) is int for value in ints)
        or type(td.get("asLink")) is not bool
        or (wait is not None and type(wait) is not str)
        or not texts[0].strip()
    ):
        return None
    name, resource, cmd, submitter, file_package, cron, success, run_mode = texts
    priority, timeout, retry_limit, retry_interval, sync_type = ints
    try:
        original_type, kind = parse_task_type(td.get("type"), "type")
        success_codes, wait_codes, mode = _plain_task_checks(texts, wait, tuple(ints))
    except InvalidParameter:
        return None
    return TaskDefinition(
        name=name, type=original_type, kind=kind, resource=resource, cmd=cmd, submitter=submitter,
        file_package=file_package, cron=cron, priority_level=priority, timeout_seconds=timeout,
        retry_limit=retry_limit, retry_interval_seconds=retry_interval, success_codes=success_codes,
        wait_codes=wait_codes, as_link=td["asLink"], run_mode=mode, sync_type=sync_type,
        task_id=task_id, position=position,
    )


def _plain_task_checks(texts: list[str], wait: str | None,
                       ints: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...] | None, RunMode]:
    """The checks `parse_task` makes that plain values could still fail: lengths, NUL, a cron
    with spaces around it (which the reader strips), ranges, codes and run mode (the last two
    memoised: a few distinct texts serve thousands of tasks)."""
    name, resource, cmd, submitter, file_package, cron, success, run_mode = texts
    limits = ((name, NAME_MAX), (cmd, 1_000_000), (resource, 4096), (submitter, 4096), (file_package, 4096),
              (cron, 4096), (success, 4096), (wait or "", 4096))
    if any(len(text) > limit or "\x00" in text for text, limit in limits) or cron != cron.strip():
        raise InvalidParameter("not plain")
    ranges = (PRIORITY_LEVEL, TIMEOUT_SECONDS, RETRY_LIMIT, RETRY_INTERVAL_SECONDS, SYNC_TYPES)
    if not all(low <= value <= high for value, (low, high) in zip(ints, ranges, strict=True)):
        raise InvalidParameter("not plain")
    return _codes(success), None if wait is None else _codes(wait), _run_mode(run_mode)


@functools.lru_cache(maxsize=1024)
def _codes(text: str) -> tuple[int, ...]:
    return parse_codes(text, "code")


@functools.lru_cache(maxsize=1024)
def _run_mode(text: str) -> RunMode:
    return parse_run_mode(FieldReader({"runMode": text}), "runMode")


def parse_task_type(value: Any, path: str) -> tuple[str | int, TaskKind]:
    """(the value as sent, its kind). Strings are names or digits; integers are legacy codes."""
    if isinstance(value, str) and value.strip().upper() in TASK_KIND_BY_NAME:
        return value, TASK_KIND_BY_NAME[value.strip().upper()]
    code: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        code = value
    elif isinstance(value, str) and value.strip().isdigit():
        code = int(value.strip())
    if code not in TASK_KIND_BY_CODE:
        names = ", ".join(sorted(TASK_KIND_BY_NAME))
        raise InvalidParameter(f"{path}: {show(value)} is not a task type (use 0-7 or one of {names})")
    return value, TASK_KIND_BY_CODE[code]


def parse_cycle(value: Any, path: str) -> Cycle:
    try:
        return Cycle(value)
    except ValueError:
        letters = "/".join(c.value for c in Cycle)
        raise InvalidParameter(f"{path}: {show(value)} is not a cycle ({letters})") from None


def parse_date(text: str, path: str) -> dt.date | None:
    """`yyyy-MM-dd` or empty (no effective date)."""
    value = text.strip()
    if not value:
        return None
    try:
        if len(value) == 10:
            return dt.date.fromisoformat(value)
    except ValueError:
        pass
    raise InvalidParameter(f"{path}: {show(text)} is not a date (yyyy-MM-dd)")


def check_cron(text: str, path: str, *, required: bool) -> None:
    """Quartz syntax via `batchd.cron`; its message names the cron field, we prefix ours."""
    if not text:
        if required:
            raise InvalidParameter(f"{path}: is required for a periodic workflow (type 1)")
        return
    try:
        CronExpression.parse(text)
    except InvalidParameter as error:
        raise InvalidParameter(f"{path}: {show(text)}: {error.message}") from None


def parse_codes(text: str, path: str) -> tuple[int, ...]:
    """A comma-separated list of process exit codes (`"0"`, `"0,2"`); empty means none given."""
    if not text.strip():
        return ()
    return tuple(
        to_int(part, path, low=EXIT_CODE[0], high=EXIT_CODE[1]) for part in text.split(",")
    )


def parse_parameters(reader: FieldReader, key: str) -> Parameters:
    """`"[{\\"key\\":\\"k\\",\\"value\\":\\"v\\"}]"`: JSON inside a string; keys unique."""
    value, text = reader.embedded_json(key, default="[]")
    path = reader.at(key)
    if not isinstance(value, list):
        raise InvalidParameter(f"{path}: must hold a JSON array of {{key, value}} objects")
    items: list[Parameter] = []
    for i, entry in enumerate(value):
        item = FieldReader(entry, f"{path}[{i}]")
        name = item.text("key", required=True, non_empty=True)
        if any(p.key == name for p in items):
            raise InvalidParameter(f"{path}[{i}].key: duplicate key {show(name)}")
        items.append(Parameter(key=name, value=item.text("value")))
    return Parameters(items=tuple(items), text=text)


def parse_run_mode(reader: FieldReader, key: str) -> RunMode:
    value, text = reader.embedded_json(key, default="{}")
    mode = FieldReader(value, reader.at(key))
    defaults = RunMode()
    return RunMode(
        task_mode=mode.integer("taskMode", default=defaults.task_mode, low=TASK_MODES[0], high=TASK_MODES[1]),
        cpu=mode.number("cpu", default=defaults.cpu, low=CPU_CORES[0], high=CPU_CORES[1]),
        memory_gb=mode.number("memory", default=defaults.memory_gb, low=MEMORY_GB[0], high=MEMORY_GB[1]),
        max_parallel=mode.integer("maxParallel", low=MAX_PARALLEL[0], high=MAX_PARALLEL[1]),
        key_type=mode.integer("keyType", low=KEY_TYPES[0], high=KEY_TYPES[1]),
        datasource_id=mode.integer("datasourceId", low=0),
        path=mode.text("path"),
        content=mode.text("content", max_length=1_000_000),
        text=text,
    )


def plain_relation(rd: Mapping[str, Any], *, cycle_gap: str | None = None) -> NamedRelation | None:
    """`_parse_relation` for the usual relation of two task names and a boolean, 0/1 or no `rerun`,
    without a reader per field (a 50-task flow has ~70); None for anything else."""
    source, target, rerun = rd.get("sourceTaskName"), rd.get("targetTaskName"), rd.get("rerun", False)
    for end in (source, target):
        if type(end) is not str or not end.strip() or len(end) > 4096 or "\x00" in end:
            return None
    if rerun is None or (type(rerun) is int and rerun in (0, 1)):
        rerun = bool(rerun)  # as `to_bool` reads them
    elif type(rerun) is not bool:
        return None
    return NamedRelation(source=source, target=target, rerun=rerun, cycle_gap=cycle_gap)


def _parse_relation(reader: FieldReader) -> NamedRelation:
    return NamedRelation(
        source=reader.text("sourceTaskName", required=True, non_empty=True),
        target=reader.text("targetTaskName", required=True, non_empty=True),
        rerun=reader.boolean("rerun"),
    )


def _parse_flow_link(reader: FieldReader) -> FlowLink:
    return FlowLink(
        link_id=reader.text("linkId", required=True, non_empty=True),
        source_flow_name=reader.text("sourceFlowName", required=True, non_empty=True),
    )


def _parse_task_link(reader: FieldReader) -> TaskLink:
    return TaskLink(
        link_id=reader.text("linkId", required=True, non_empty=True),
        source_flow_name=reader.text("sourceFlowName", required=True, non_empty=True),
        source_task_name=reader.text("sourceTaskName", required=True, non_empty=True),
    )


def _parse_link_relation(reader: FieldReader) -> LinkRelation:
    return LinkRelation(
        link_id=reader.text("linkId", required=True, non_empty=True),
        target=reader.text("targetTaskName", required=True, non_empty=True),
        rerun=reader.boolean("rerun"),
    )


def check_definition(definition: FlowDefinition, path: str) -> None:
    """The DAG rules: unique task names and link ids, edges between known nodes, no self-loop,
    no duplicate edge, links only as sources (roots), and no cycle (named task by task)."""
    prefix = f"{path}." if path else ""
    tasks: set[str] = set()
    for i, task in enumerate(definition.tasks):
        if task.name in tasks:
            raise InvalidParameter(f"{prefix}tasks[{i}].name: duplicate task name {show(task.name)}")
        tasks.add(task.name)
    links: set[str] = set()
    all_links = [("flowLinks", link.link_id) for link in definition.flow_links]
    all_links += [("taskLinks", link.link_id) for link in definition.task_links]
    counters = {"flowLinks": 0, "taskLinks": 0}
    for kind, link_id in all_links:
        index = counters[kind]
        counters[kind] += 1
        if link_id in links:
            raise InvalidParameter(f"{prefix}{kind}[{index}].linkId: duplicate link id {show(link_id)}")
        links.add(link_id)

    edges: set[tuple[str, str]] = set()
    for i, rel in enumerate(definition.relations):
        where = f"{prefix}relations[{i}]"
        for field_name, name in (("sourceTaskName", rel.source), ("targetTaskName", rel.target)):
            if name not in tasks:
                if field_name == "targetTaskName" and name in links:
                    raise InvalidParameter(
                        f"{where}.{field_name}: {show(name)} is a link; links must be roots "
                        "(no incoming edges)"
                    )
                raise InvalidParameter(f"{where}.{field_name}: unknown task {show(name)}")
        if rel.source == rel.target:
            raise InvalidParameter(f"{where}: task {show(rel.source)} depends on itself")
        if (rel.source, rel.target) in edges:
            raise InvalidParameter(f"{where}: duplicate edge {rel.source} -> {rel.target}")
        edges.add((rel.source, rel.target))
    seen_links: set[tuple[str, str]] = set()
    for i, lrel in enumerate(definition.link_relations):
        where = f"{prefix}linkRelations[{i}]"
        if lrel.link_id not in links:
            raise InvalidParameter(f"{where}.linkId: unknown link {show(lrel.link_id)}")
        if lrel.target not in tasks:
            raise InvalidParameter(f"{where}.targetTaskName: unknown task {show(lrel.target)}")
        if (lrel.link_id, lrel.target) in seen_links:
            raise InvalidParameter(f"{where}: duplicate edge {lrel.link_id} -> {lrel.target}")
        seen_links.add((lrel.link_id, lrel.target))
    cycle = find_cycle([t.name for t in definition.tasks], [(r.source, r.target) for r in definition.relations])
    if cycle:
        raise InvalidParameter(f"{prefix}relations: tasks are in a cycle: {' -> '.join(cycle)}")


def find_cycle(nodes: list[str], edges: list[tuple[str, str]]) -> list[str] | None:
    """A cycle as its nodes in edge order, first node repeated at the end (like graphlib's
    CycleError), or None. Deterministic: nodes and edges are explored in the order given."""
    successors: dict[str, list[str]] = {n: [] for n in nodes}
    for source, target in edges:
        successors[source].append(target)
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    for start in nodes:
        if start in state:
            continue
        path = [start]
        state[start] = 1
        stack = [iter(successors[start])]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(successors[nxt]))
    return None


def parse_save(body: Any) -> SaveRequest:
    """Save Flow's body (graph shape). Absent fields mean "keep"; see `catalog.editing`.

    Besides the documented fields batchd accepts `restoreVersion` (an earlier version number of
    this flow): the save then writes that version's content back as a new version.
    """
    reader = FieldReader(body)
    flow_id = reader.integer("id", required=True, low=1)
    restore = reader.integer("restoreVersion", default=0, low=1) or None

    def opt_int(key: str, bounds: tuple[int, int]) -> int | None:
        return reader.integer(key, low=bounds[0], high=bounds[1]) if reader.has(key) else None

    def opt_text(key: str, **kwargs: Any) -> str | None:
        return reader.text(key, **kwargs) if reader.has(key) else None

    name = opt_text("name", non_empty=True, max_length=NAME_MAX)
    cron = opt_text("freq")
    if cron is not None:
        cron = cron.strip()
        check_cron(cron, "freq", required=False)
    owners, visitors = opt_text("owners"), opt_text("visitors")
    start = opt_text("startTime")
    return SaveRequest(
        flow_id=flow_id,
        name=name.strip() if name is not None else None,
        type=opt_int("type", FLOW_TYPES),
        cron=cron,
        cycle=parse_cycle(reader.raw("cycle"), "cycle") if reader.has("cycle") else None,
        alert_mode=opt_int("alertMode", ALERT_MODES),
        submitter=opt_text("doAs"),
        owners=UserList.parse(owners) if owners is not None else None,
        visitors=UserList.parse(visitors) if visitors is not None else None,
        start_date=parse_date(start, "startTime") if start is not None else None,
        start_date_given=start is not None,
        active=bool(reader.integer("active", low=0, high=1)) if reader.has("active") else None,
        parameters=parse_parameters(reader, "parameters") if reader.has("parameters") else None,
        desc=opt_text("desc"),
        queue=opt_text("queue"),
        sync_type=opt_int("syncType", SYNC_TYPES),
        tasks=_graph_tasks(reader) if reader.has("tasks") else None,
        flows=_graph_flows(reader) if reader.has("flows") else None,
        relations=_graph_relations(reader) if reader.has("relations") else None,
        restore_version=restore,
    )


def _position(reader: FieldReader) -> Position:
    return Position(x=reader.number("x", default=0.0), y=reader.number("y", default=0.0))


def _pick(reader: FieldReader, camel: str, snake: str) -> str:
    """Graph keys come camelCase in 2.1-2.4 samples and snake_case in the dev docs."""
    return snake if not reader.has(camel) and reader.has(snake) else camel


def _graph_tasks(reader: FieldReader) -> tuple[GraphTaskNode, ...]:
    nodes = []
    for item in reader.objects("tasks"):
        id_key = _pick(item, "taskId", "task_id")
        task_id = item.integer(id_key, default=0, low=0) or None
        node_key = _pick(item, "nodeId", "node_id")
        nodes.append(GraphTaskNode(
            name=item.text(_pick(item, "taskName", "task_name"), required=True, non_empty=True,
                           max_length=NAME_MAX),
            task_id=task_id,
            node_id=item.text(node_key) or (f"t_{task_id}" if task_id else ""),
            position=_position(item),
        ))
    return tuple(nodes)


def _graph_flows(reader: FieldReader) -> tuple[GraphFlowNode, ...]:
    nodes = []
    for item in reader.objects("flows"):
        flow_id = item.integer(_pick(item, "flowId", "flow_id"), required=True, low=1)
        nodes.append(GraphFlowNode(
            flow_id=flow_id,
            flow_name=item.text(_pick(item, "flowName", "flow_name")),
            node_id=item.text(_pick(item, "nodeId", "node_id")),
            is_virtual=item.boolean(_pick(item, "isVirtual", "is_virtual")),
            position=_position(item),
        ))
    return tuple(nodes)


def _graph_relations(reader: FieldReader) -> tuple[GraphRelation, ...]:
    return tuple(
        GraphRelation(
            source=item.text("source", required=True, non_empty=True),
            target=item.text("target", required=True, non_empty=True),
            rerun=item.boolean("rerun"),
            cycle_gap=item.text(_pick(item, "cycleGap", "cycle_gap")) or None,
        )
        for item in reader.objects("relations")
    )


