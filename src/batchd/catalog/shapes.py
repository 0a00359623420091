"""Records → the wire dicts of the EnOS API, and the stored document ↔ records.

Wire quirks reproduced on purpose (spec §8): `graph`, `parameters` and `runMode` are JSON *inside
strings*; ids are numbers in some places and strings in others (`flowId` is an int in FlowDetail
but a string in PageFlow, MyFlowItem and graph nodes); FlowDetail says `owner`/`visitor` where the
graph says `owners`/`visitors`; flow timestamps look like Java's `Timestamp.toString()`.

The stored document (column `flows.definition`, and each `flow_versions.definition`) is the Export
shape plus a few keys only the server needs (task ids, canvas positions, resolved link ids, cycle
gaps, queue). It is read back with the same validation code as an import, so there is one codec.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from typing import Any

from batchd.catalog.fields import FieldReader
from batchd.catalog.model import (
    FlowDefinition,
    FlowLink,
    NamedRelation,
    Position,
    StoredFlow,
    TaskDefinition,
    TaskLink,
)
from batchd.catalog.validation import (
    NAME_MAX,
    parse_definition,
    plain_relation,
    plain_task,
)

UTC = dt.timezone.utc


def java_timestamp(epoch_ms: int, zone: dt.tzinfo = UTC) -> str:
    """`yyyy-MM-dd HH:mm:ss.S` like Java's Timestamp.toString(): fraction without trailing zeros,
    at least one digit (`2019-07-22 08:56:35.0`, `... 08:56:35.25`)."""
    moment = dt.datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).astimezone(zone)
    fraction = f"{moment.microsecond:06d}".rstrip("0") or "0"
    return f"{moment:%Y-%m-%d %H:%M:%S}.{fraction}"


def _date_text(value: dt.date | None) -> str:
    return value.isoformat() if value else ""


def _codes_text(codes: tuple[int, ...]) -> str:
    return ",".join(str(code) for code in codes)


def _run_mode_text(task: TaskDefinition) -> str:
    mode = task.run_mode
    if mode.text:
        return mode.text
    return json.dumps({
        "taskMode": mode.task_mode, "cpu": mode.cpu, "memory": mode.memory_gb,
        "maxParallel": mode.max_parallel, "keyType": mode.key_type,
        "datasourceId": mode.datasource_id, "path": mode.path, "content": mode.content,
    }, separators=(",", ":"))


def export_task(task: TaskDefinition) -> dict[str, Any]:
    """Export's Task struct; `waitCode` only when the import had one (V2.0 field, in some samples)."""
    exported = {
        "name": task.name,
        "resource": task.resource,
        "type": task.type,
        "syncType": task.sync_type,
        "cmd": task.cmd,
        "submitter": task.submitter,
        "filePackage": task.file_package,
        "cron": task.cron,
        "priorityLevel": task.priority_level,
        "timeout": task.timeout_seconds,
        "retryLimit": task.retry_limit,
        "retryInterval": task.retry_interval_seconds,
        "successCode": _codes_text(task.success_codes),
        "asLink": task.as_link,
        "runMode": _run_mode_text(task),
    }
    if task.wait_codes is not None:
        exported["waitCode"] = _codes_text(task.wait_codes)
    return exported


def export_definition(definition: FlowDefinition) -> dict[str, Any]:
    """Export Flow's FlowDefinition, also the `flowJson` Import Flow takes back unchanged."""
    d = definition
    return {
        "name": d.name,
        "cycle": d.cycle.value,
        "cron": d.cron,
        "parameters": d.parameters.text,
        "alertMode": d.alert_mode,
        "submitter": d.submitter,
        "owners": d.owners.text,
        "visitors": d.visitors.text,
        "type": d.type,
        "syncType": d.sync_type,
        "desc": d.desc,
        "startTime": _date_text(d.start_date),
        "tasks": [export_task(t) for t in d.tasks],
        "flowLinks": [{"linkId": f.link_id, "sourceFlowName": f.source_flow_name} for f in d.flow_links],
        "taskLinks": [
            {"linkId": t.link_id, "sourceFlowName": t.source_flow_name, "sourceTaskName": t.source_task_name}
            for t in d.task_links
        ],
        "relations": [
            {"sourceTaskName": r.source, "targetTaskName": r.target, "rerun": r.rerun} for r in d.relations
        ],
        "linkRelations": [
            {"linkId": r.link_id, "targetTaskName": r.target, "rerun": r.rerun} for r in d.link_relations
        ],
    }


# --- the stored document -------------------------------------------------------------------


def _position_doc(position: Position | None) -> dict[str, float] | None:
    return None if position is None else {"x": position.x, "y": position.y}


def _position_of(doc: Any) -> Position | None:
    return None if not isinstance(doc, dict) else Position(x=float(doc["x"]), y=float(doc["y"]))


def to_document(definition: FlowDefinition) -> str:
    """The JSON text stored for a flow version: Export's shape plus server-only keys."""
    doc = export_definition(definition)
    doc["queue"] = definition.queue
    for task_doc, task in zip(doc["tasks"], definition.tasks, strict=True):
        task_doc["taskId"] = task.task_id
        task_doc["position"] = _position_doc(task.position)
    for link_doc, flow_link in zip(doc["flowLinks"], definition.flow_links, strict=True):
        link_doc["sourceFlowId"] = flow_link.source_flow_id
        link_doc["position"] = _position_doc(flow_link.position)
    for link_doc, task_link in zip(doc["taskLinks"], definition.task_links, strict=True):
        link_doc["sourceFlowId"] = task_link.source_flow_id
        link_doc["sourceTaskId"] = task_link.source_task_id
        link_doc["position"] = _position_doc(task_link.position)
    for rel_doc, rel in zip(doc["relations"], definition.relations, strict=True):
        rel_doc["cycleGap"] = rel.cycle_gap
    for rel_doc, lrel in zip(doc["linkRelations"], definition.link_relations, strict=True):
        rel_doc["cycleGap"] = lrel.cycle_gap
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def from_document(text: str, *, trusted: bool = True) -> FlowDefinition:
    """Inverse of `to_document`, re-validated field by field like an import, except for tasks
    that are exactly as `to_document` writes them (`trusted`), which are read directly.

    Every Get Flow reads a document, and validating a 50-task one field by field cost ~10 ms;
    a task `to_document` wrote has plain values of the right types, so it is built directly
    (`_stored_task`), and so are relations (`_stored_relation`: a 10-wide layered DAG of 1,000
    tasks has 9,900, and reading them through a reader each and a copy for the cycle gap was
    two thirds of the engine's first look at a new instance); anything else (an older layout, a
    type out of place) takes the validating path, so a document never reads differently by
    taking the fast one.
    """
    doc = json.loads(text)
    direct = [_stored_task(td) for td in doc["tasks"]] if trusted else []
    edges = [_stored_relation(rd) for rd in doc.get("relations") or ()] if trusted else []
    plain_tasks, plain_edges = bool(direct) and all(direct), bool(edges) and all(edges)
    header = {**doc, **({"tasks": []} if plain_tasks else {}), **({"relations": []} if plain_edges else {})}
    d = parse_definition(FieldReader(header, "definition"), name=doc["name"], check_crons=False)
    if plain_tasks:
        tasks = tuple(task for task in direct if task is not None)
    else:
        tasks = tuple(
            _replace(t, task_id=td.get("taskId"), position=_position_of(td.get("position")))
            for t, td in zip(d.tasks, doc["tasks"], strict=True)
        )
    if plain_edges:
        relations = tuple(edge for edge in edges if edge is not None)
    else:
        relations = tuple(
            _replace(r, cycle_gap=rd.get("cycleGap")) for r, rd in zip(d.relations, doc["relations"], strict=True)
        )
    return FlowDefinition(
        **{**_fields(d), "queue": doc.get("queue", "")},
        tasks=tasks,
        relations=relations,
        flow_links=tuple(
            _replace(f, source_flow_id=fd.get("sourceFlowId"), position=_position_of(fd.get("position")))
            for f, fd in zip(d.flow_links, doc["flowLinks"], strict=True)
        ),
        task_links=tuple(
            _replace(t, source_flow_id=td.get("sourceFlowId"), source_task_id=td.get("sourceTaskId"),
                     position=_position_of(td.get("position")))
            for t, td in zip(d.task_links, doc["taskLinks"], strict=True)
        ),
        link_relations=tuple(
            _replace(r, cycle_gap=rd.get("cycleGap"))
            for r, rd in zip(d.link_relations, doc["linkRelations"], strict=True)
        ),
    )


def _stored_task(td: Any) -> TaskDefinition | None:
    """A task exactly as `export_task` wrote it, read by `validation.plain_task` with its id and
    canvas position; None when it is not in that shape (then the whole document is validated)."""
    if not isinstance(td, dict):
        return None
    return plain_task(td, task_id=td.get("taskId"), position=_position_of(td.get("position")))


_COLLECTIONS = ("tasks", "relations", "flow_links", "task_links", "link_relations", "queue")


def _fields(definition: FlowDefinition) -> dict[str, Any]:
    return {
        name: getattr(definition, name)
        for name in definition.__dataclass_fields__
        if name not in _COLLECTIONS
    }


def _replace(record: Any, **changes: Any) -> Any:
    return dataclasses.replace(record, **changes)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TaskNode:
    """What the graph shape shows of a task: its name, id and place on the canvas."""

    name: str
    task_id: int | None
    position: Position | None


@functools.lru_cache(maxsize=256)
def outline_from_document(text: str) -> tuple[FlowDefinition, tuple[TaskNode, ...]] | None:
    """What Get Flow shows of a stored document, without decoding each task in full: the
    definition with its header and relations but no tasks, and every task's node.

    Get Flow shows of a task only its name, id and position, yet decoding the whole task (about
    twenty fields, checked) was most of its time. The header is read by the validating code,
    as in `from_document`; relations and nodes are read directly when they are exactly as
    `to_document` writes them. None for anything else (and for flows with links, whose names
    are looked up anew on every read): then the caller reads the whole document.

    Memoised by the text itself (the answer is a pure function of it, and immutable): a stored
    version is read again and again, and a hit can only ever be the same document.
    """
    doc = json.loads(text)
    if not isinstance(doc, dict) or doc.get("flowLinks") or doc.get("taskLinks") or doc.get("linkRelations"):
        return None
    tasks, relations = doc.get("tasks"), doc.get("relations")
    if not isinstance(tasks, list) or not isinstance(relations, list):
        return None
    nodes = [_stored_node(td) for td in tasks]
    edges = [_stored_relation(rd) for rd in relations]
    if not all(nodes) or not all(edges):
        return None
    header = parse_definition(FieldReader({**doc, "tasks": [], "relations": []}, "definition"),
                              name=doc["name"], check_crons=False)
    definition = dataclasses.replace(header, queue=doc.get("queue", ""),
                                     relations=tuple(edge for edge in edges if edge is not None))
    return definition, tuple(node for node in nodes if node is not None)


def _stored_node(td: Any) -> TaskNode | None:
    if not isinstance(td, dict):
        return None
    name, task_id, position = td.get("name"), td.get("taskId"), td.get("position")
    if type(name) is not str or not name.strip() or "\x00" in name or len(name) > NAME_MAX:
        return None
    if task_id is not None and type(task_id) is not int:
        return None
    if position is not None and not (
        isinstance(position, dict) and all(type(position.get(k)) in (int, float) for k in ("x", "y"))
    ):
        return None
    return TaskNode(name=name, task_id=task_id, position=_position_of(position))


def _stored_relation(rd: Any) -> NamedRelation | None:
    if not isinstance(rd, dict):
        return None
    gap = rd.get("cycleGap")
    return plain_relation(rd, cycle_gap=gap) if gap is None or type(gap) is str else None


# --- graph shape (Get Flow, Load Flow For Edit) -------------------------------------------


def task_node_id(task: TaskNode | TaskDefinition) -> str:
    return f"t_{task.task_id}"


def link_node_id(link: FlowLink | TaskLink) -> str:
    """`f_<flowId>` for a flow reference; `t_<taskId>` (a foreign task id) for a task reference.

    EnOS wraps a task reference in a system-made *virtual* flow with its own id; batchd has no
    virtual flows, so the node is named after the referenced task, which is unique too.
    """
    if isinstance(link, TaskLink):
        return f"t_{link.source_task_id}"
    return f"f_{link.source_flow_id}"


def _xy(position: Position | None) -> dict[str, float]:
    position = position or Position()
    return {"x": position.x, "y": position.y}


def flow_graph(flow: StoredFlow, task_nodes: tuple[TaskNode, ...] | None = None) -> dict[str, Any]:
    """FlowGraph (spec §2.2), the content of FlowDetail.graph; `task_nodes` when the flow was
    read as an outline (`outline_from_document`), else from its tasks."""
    d = flow.definition
    nodes = task_nodes if task_nodes is not None else tuple(
        TaskNode(name=t.name, task_id=t.task_id, position=t.position) for t in d.tasks
    )
    node_of_task = {t.name: task_node_id(t) for t in nodes}
    node_of_link: dict[str, str] = {}
    flow_nodes: list[dict[str, Any]] = []
    for flow_link in d.flow_links:
        node_of_link[flow_link.link_id] = link_node_id(flow_link)
        flow_nodes.append({
            "flowId": str(flow_link.source_flow_id), "flowName": flow_link.source_flow_name,
            "nodeId": link_node_id(flow_link), "isVirtual": False, **_xy(flow_link.position),
        })
    for task_link in d.task_links:
        node_of_link[task_link.link_id] = link_node_id(task_link)
        flow_nodes.append({
            "flowId": str(task_link.source_flow_id),
            "flowName": f"{task_link.source_task_id}({task_link.source_task_name})",
            "nodeId": link_node_id(task_link), "isVirtual": True, **_xy(task_link.position),
        })
    default_gap = f"{d.cycle.value}0"
    relations = [
        {"source": node_of_task[r.source], "target": node_of_task[r.target], "rerun": r.rerun,
         "cycleGap": r.cycle_gap or default_gap}
        for r in d.relations
    ] + [
        {"source": node_of_link[r.link_id], "target": node_of_task[r.target], "rerun": r.rerun,
         "cycleGap": r.cycle_gap or default_gap}
        for r in d.link_relations
    ]
    return {
        "name": d.name,
        "type": d.type,
        "cycle": d.cycle.value,
        "freq": d.cron,
        "startTime": _date_text(d.start_date),
        "active": int(flow.active),
        "alertMode": d.alert_mode,
        "owners": d.owners.text,
        "visitors": d.visitors.text,
        "doAs": d.submitter,
        "creator": flow.creator,
        "parameters": d.parameters.text,
        "queue": d.queue,
        "desc": d.desc,
        "syncType": d.sync_type,
        "tasks": [
            {"taskName": t.name, "taskId": str(t.task_id), "nodeId": task_node_id(t), **_xy(t.position)}
            for t in nodes
        ],
        "flows": flow_nodes,
        "relations": relations,
    }


#: FlowDetail.graph texts of outline reads, by the identity of the (memoised, immutable)
#: definition and nodes they were made from plus the two flow fields the graph shows. Each entry
#: holds its definition and nodes, so their ids cannot be reused while it exists, and a hit is
#: confirmed by identity.
_GRAPH_TEXTS: dict[tuple[int, int, bool, str], tuple[FlowDefinition, tuple[TaskNode, ...], str]] = {}
_GRAPH_TEXTS_LIMIT = 256


def _graph_text(flow: StoredFlow, task_nodes: tuple[TaskNode, ...] | None) -> str:
    if task_nodes is None:
        return json.dumps(flow_graph(flow), ensure_ascii=False, separators=(",", ":"))
    key = (id(flow.definition), id(task_nodes), bool(flow.active), flow.creator)
    found = _GRAPH_TEXTS.get(key)
    if found is not None and found[0] is flow.definition and found[1] is task_nodes:
        return found[2]
    text = json.dumps(flow_graph(flow, task_nodes), ensure_ascii=False, separators=(",", ":"))
    if len(_GRAPH_TEXTS) >= _GRAPH_TEXTS_LIMIT:
        _GRAPH_TEXTS.pop(next(iter(_GRAPH_TEXTS)))
    _GRAPH_TEXTS[key] = (flow.definition, task_nodes, text)
    return text


def flow_detail(flow: StoredFlow, *, can_edit: bool, can_read: bool, user_locked: bool,
                zone: dt.tzinfo = UTC, task_nodes: tuple[TaskNode, ...] | None = None) -> dict[str, Any]:
    """FlowDetail (spec §2.1) of Get Flow and Load Flow For Edit, for one caller (`task_nodes`:
    see `flow_graph`).

    `version` is a batchd addition: the number of the version shown (see docs/decisions.md).
    """
    d = flow.definition
    return {
        "flowId": flow.flow_id,
        "flowName": d.name,
        "active": int(flow.active),
        "creator": flow.creator,
        "createTime": java_timestamp(flow.create_time_ms, zone),
        "updateUser": flow.update_user,
        "updateTime": java_timestamp(flow.update_time_ms, zone),
        "freq": d.cron,
        "cycle": d.cycle.value,
        "parameters": d.parameters.text,
        "owner": d.owners.text,
        "visitor": d.visitors.text,
        "doAs": d.submitter,
        "alertMode": d.alert_mode,
        "graph": _graph_text(flow, task_nodes),
        "entry": flow.entry,
        "type": d.type,
        "syncType": d.sync_type,
        "desc": d.desc,
        "startTime": _date_text(d.start_date),
        "virtual": False,
        "locked": False,
        "hasEditPri": can_edit,
        "hasReadPri": can_read,
        "isUserLocked": user_locked,
        "queue": d.queue,
        "version": flow.version,
    }


def my_flow_item(flow_id: int, name: str, cycle: str, *, editable: bool) -> dict[str, Any]:
    """Get My Flow item: `flowId` is a *string* here."""
    return {"flowId": str(flow_id), "editable": editable, "flowName": name, "cycle": cycle}


def page_flow(flow_id: int, name: str) -> dict[str, Any]:
    """Search Flow item: `flowId` as a string, like the sample."""
    return {"flowId": str(flow_id), "flowName": name}


WORKFLOW_TYPE = 1  # directory/file `type` of the Workflow tree


def directory_node(dir_id: str, title: str, children: list[dict[str, Any]]) -> dict[str, Any]:
    return {"children": children, "title": title, "type": WORKFLOW_TYPE, "key": dir_id, "isDirectory": True}


def workflow_leaf(flow_id: int, name: str, *, editable: bool) -> dict[str, Any]:
    return {"editable": editable, "title": name, "type": WORKFLOW_TYPE, "key": flow_id, "isDirectory": False}
