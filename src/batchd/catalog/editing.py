"""Save Flow's merge: a graph-shaped body applied to the stored definition.

Save Flow's body is the *graph* shape: task nodes carry only `taskName`, `taskId` and a canvas
position, never a task's command, type, timeout or run mode. So Save cannot replace a definition;
it edits one. The rules (docs/decisions.md, "Save Flow merges"):

- A flow-level field absent from the body keeps its stored value; present, it replaces it.
- `tasks` absent: the tasks stay as they are. Present: it is the new list of tasks, in order.
  A node whose `taskId` is one of this flow's tasks keeps that task's whole configuration (and is
  renamed if `taskName` changed); a node without `taskId` but with the name of a stored task is
  that task; any other node without `taskId` is a *new* task with default configuration (a shell
  task with an empty command, to be configured by Import or in the console); a `taskId` that is
  not one of this flow's tasks is refused. Stored tasks missing from the list are removed.
- `flows` absent: the references (flow and task links) stay. Present: the new list; a node
  matching a stored reference (`f_<flowId>`, or `t_<taskId>` of a task reference) keeps it,
  others become new references that the service resolves by id in the caller's organisation.
- `relations` absent: the stored edges stay, minus those touching a removed task or reference.
  Present: the new edges, node id to node id.
- A periodic workflow (type 1) cannot become manual (type 0) or the reverse (semantics §1.1).

The result goes through the same `check_definition` as an import, so a Save can never store
what an Import would refuse.
"""

from __future__ import annotations

import dataclasses

from batchd.catalog.fields import show
from batchd.catalog.model import (
    FlowDefinition,
    FlowLink,
    GraphFlowNode,
    GraphRelation,
    GraphTaskNode,
    LinkRelation,
    NamedRelation,
    SaveRequest,
    TaskDefinition,
    TaskLink,
)
from batchd.catalog.shapes import link_node_id, task_node_id
from batchd.catalog.validation import PERIODIC, check_cron, check_definition
from batchd.errors import InvalidParameter

MANUAL = 0


def apply_save(current: FlowDefinition, request: SaveRequest) -> FlowDefinition:
    """The definition after `request`, validated; new tasks have `task_id=None` and new links
    carry only the upstream ids (`catalog.service` fills in names and allocates ids)."""
    flow_type = request.type if request.type is not None else current.type
    if {current.type, flow_type} == {MANUAL, PERIODIC}:
        raise InvalidParameter(
            f"type: {flow_type} is not allowed; a periodic workflow cannot become a manual one "
            "or the reverse"
        )
    changes = {
        "name": request.name, "type": request.type, "cron": request.cron, "cycle": request.cycle,
        "alert_mode": request.alert_mode, "submitter": request.submitter, "owners": request.owners,
        "visitors": request.visitors, "parameters": request.parameters, "desc": request.desc,
        "queue": request.queue, "sync_type": request.sync_type,
    }
    edited = dataclasses.replace(current, **{k: v for k, v in changes.items() if v is not None})
    if request.start_date_given:
        edited = dataclasses.replace(edited, start_date=request.start_date)
    check_cron(edited.cron, "freq", required=edited.type == PERIODIC)

    tasks, task_nodes = (
        _merge_tasks(current, request.tasks) if request.tasks is not None
        else (current.tasks, {task_node_id(t): t.name for t in current.tasks})
    )
    flow_links, task_links, link_nodes = (
        _merge_links(current, request.flows) if request.flows is not None
        else (current.flow_links, current.task_links, _link_nodes(current))
    )
    if request.relations is not None:
        relations, link_relations = _edges(request.relations, task_nodes, link_nodes)
    else:
        names = {t.name for t in tasks}
        renamed = _renames(current, tasks)
        relations = tuple(
            dataclasses.replace(r, source=renamed.get(r.source, r.source), target=renamed.get(r.target, r.target))
            for r in current.relations
            if r.source in renamed and r.target in renamed
        )
        kept_links = {link.link_id for link in (*flow_links, *task_links)}
        link_relations = tuple(
            dataclasses.replace(r, target=renamed[r.target])
            for r in current.link_relations
            if r.link_id in kept_links and r.target in renamed and renamed[r.target] in names
        )
    edited = dataclasses.replace(
        edited, tasks=tasks, relations=relations, flow_links=flow_links, task_links=task_links,
        link_relations=link_relations,
    )
    check_definition(edited, "")
    return edited


def _merge_tasks(
    current: FlowDefinition, nodes: tuple[GraphTaskNode, ...]
) -> tuple[tuple[TaskDefinition, ...], dict[str, str]]:
    """(the new task list, node id → task name for the body's relations)."""
    by_id = {t.task_id: t for t in current.tasks}
    by_name = {t.name: t for t in current.tasks}
    used: set[int] = set()
    tasks: list[TaskDefinition] = []
    node_names: dict[str, str] = {}
    for i, node in enumerate(nodes):
        if node.task_id is not None:
            stored = by_id.get(node.task_id)
            if stored is None:
                raise InvalidParameter(
                    f"tasks[{i}].taskId: {node.task_id} is not a task of this workflow "
                    "(leave taskId out to add a task)"
                )
        else:
            stored = by_name.get(node.name)
        if stored is not None and stored.task_id in used:
            raise InvalidParameter(f"tasks[{i}]: task {show(stored.name)} appears twice")
        if stored is None:
            task = TaskDefinition(name=node.name, position=node.position)
        else:
            used.add(stored.task_id)  # type: ignore[arg-type]
            task = dataclasses.replace(stored, name=node.name, position=node.position)
        tasks.append(task)
        if node.node_id:
            node_names[node.node_id] = node.name
        if task.task_id is not None:
            node_names.setdefault(task_node_id(task), node.name)
    return tuple(tasks), node_names


def _link_nodes(current: FlowDefinition) -> dict[str, str]:
    return {link_node_id(link): link.link_id for link in (*current.flow_links, *current.task_links)}


def _virtual_task_id(node: GraphFlowNode, index: int) -> int:
    """The referenced task of a task-reference node: `t_<taskId>` or a name like `104891(tass)`."""
    for text in (node.node_id.removeprefix("t_"), node.flow_name.split("(", 1)[0]):
        if text.isdigit():
            return int(text)
    raise InvalidParameter(
        f"flows[{index}]: a virtual node must name its task as nodeId t_<taskId> or flowName "
        f"<taskId>(<taskName>), got {show(node.node_id)}"
    )


def _merge_links(
    current: FlowDefinition, nodes: tuple[GraphFlowNode, ...]
) -> tuple[tuple[FlowLink, ...], tuple[TaskLink, ...], dict[str, str]]:
    """(flow links, task links, node id → link id)."""
    stored_flows = {link.source_flow_id: link for link in current.flow_links}
    stored_tasks = {link.source_task_id: link for link in current.task_links}
    taken = {link.link_id for link in (*current.flow_links, *current.task_links)}
    counter = 0

    def fresh_id() -> str:
        nonlocal counter
        while str(counter) in taken:
            counter += 1
        taken.add(str(counter))
        return str(counter)

    flow_links: list[FlowLink] = []
    task_links: list[TaskLink] = []
    node_links: dict[str, str] = {}
    seen: set[str] = set()
    for i, node in enumerate(nodes):
        if node.is_virtual:
            task_id = _virtual_task_id(node, i)
            key = f"t_{task_id}"
            link: FlowLink | TaskLink = (
                dataclasses.replace(stored_tasks[task_id], position=node.position)
                if task_id in stored_tasks
                else TaskLink(link_id=fresh_id(), source_flow_name="", source_task_name="",
                              source_flow_id=node.flow_id, source_task_id=task_id, position=node.position)
            )
        else:
            key = f"f_{node.flow_id}"
            link = (
                dataclasses.replace(stored_flows[node.flow_id], position=node.position)
                if node.flow_id in stored_flows
                else FlowLink(link_id=fresh_id(), source_flow_name="", source_flow_id=node.flow_id,
                              position=node.position)
            )
        if key in seen:
            raise InvalidParameter(f"flows[{i}]: {key} appears twice")
        seen.add(key)
        (task_links if isinstance(link, TaskLink) else flow_links).append(link)  # type: ignore[arg-type]
        node_links[key] = link.link_id
        if node.node_id:
            node_links[node.node_id] = link.link_id
    return tuple(flow_links), tuple(task_links), node_links


def _edges(
    relations: tuple[GraphRelation, ...], task_nodes: dict[str, str], link_nodes: dict[str, str]
) -> tuple[tuple[NamedRelation, ...], tuple[LinkRelation, ...]]:
    named: list[NamedRelation] = []
    linked: list[LinkRelation] = []
    for i, rel in enumerate(relations):
        if rel.target in link_nodes:
            raise InvalidParameter(
                f"relations[{i}].target: {show(rel.target)} is a reference; references must be "
                "roots (no incoming edges)"
            )
        target = task_nodes.get(rel.target)
        if target is None:
            raise InvalidParameter(f"relations[{i}].target: unknown node {show(rel.target)}")
        if rel.source in link_nodes:
            linked.append(LinkRelation(link_id=link_nodes[rel.source], target=target, rerun=rel.rerun,
                                       cycle_gap=rel.cycle_gap))
        elif rel.source in task_nodes:
            if rel.source == rel.target:
                raise InvalidParameter(f"relations[{i}]: task {show(target)} depends on itself")
            named.append(NamedRelation(source=task_nodes[rel.source], target=target, rerun=rel.rerun,
                                       cycle_gap=rel.cycle_gap))
        else:
            raise InvalidParameter(f"relations[{i}].source: unknown node {show(rel.source)}")
    return tuple(named), tuple(linked)


def _renames(current: FlowDefinition, tasks: tuple[TaskDefinition, ...]) -> dict[str, str]:
    """Old name → new name of every stored task that survived the edit."""
    new_name = {t.task_id: t.name for t in tasks if t.task_id is not None}
    return {t.name: new_name[t.task_id] for t in current.tasks if t.task_id in new_name}
