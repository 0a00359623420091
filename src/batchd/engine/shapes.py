"""Instances → the wire dicts of the EnOS API (FlowInstance §2.13, InstanceGraph §2.14,
TaskInstance §2.15). Times: `yyyy-MM-dd HH:mm:ss` in the server zone (null before they happen),
`timestamp` like Java's Timestamp, TaskInstance `timeStamp` like Java's Date.toString()."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from batchd.catalog.model import TASK_KIND_BY_CODE, FlowDefinition, TaskDefinition, TaskKind
from batchd.catalog.shapes import from_document, java_timestamp, link_node_id, task_node_id
from batchd.engine.instances import ListedFlow, local_time
from batchd.engine.status import status_name
from batchd.runner.header import java_date

#: TaskInstance `type` is an integer: the legacy code of the kind (7 for data integration, as
#: the 2.3+ sample). Kinds without a documented code keep the definition's own value.
_CODE_OF_KIND = {kind: code for code, kind in TASK_KIND_BY_CODE.items()} | {TaskKind.DATA_INTEGRATION: 7}


def wire_time(epoch_ms: int | None, zone: dt.tzinfo) -> str | None:
    return None if epoch_ms is None else f"{local_time(epoch_ms, zone):%Y-%m-%d %H:%M:%S}"


def _compact(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def instance_graph(flow: sa.Row, definition: FlowDefinition, tasks: list[sa.Row],
                   upstream_status: Mapping[str, tuple[str | None, str]]) -> dict[str, Any]:
    """InstanceGraph: the flow's graph with `taskInstId`/`status` on task nodes and, on reference
    nodes, the upstream instance of the same business date (`NONE` when there is none)."""
    by_name = {row.task_name: row for row in tasks}
    node_of_task = {t.name: task_node_id(t) for t in definition.tasks}
    flows: list[dict[str, Any]] = []
    node_of_link: dict[str, str] = {}
    for link in (*definition.flow_links, *definition.task_links):
        node = link_node_id(link)
        node_of_link[link.link_id] = node
        instance_id, status = upstream_status.get(link.link_id, (None, "NONE"))
        is_task = hasattr(link, "source_task_id")
        name = f"{link.source_task_id}({link.source_task_name})" if is_task else link.source_flow_name
        flows.append({"flowId": str(link.source_flow_id), "flowName": name, "nodeId": node,
                      "isVirtual": is_task, "flowInstId": instance_id, "status": status})
    gap = f"{definition.cycle.value}0"
    relations = [{"source": node_of_task[r.source], "target": node_of_task[r.target], "rerun": r.rerun,
                  "cycleGap": r.cycle_gap or gap} for r in definition.relations]
    relations += [{"source": node_of_link[r.link_id], "target": node_of_task[r.target], "rerun": r.rerun,
                   "cycleGap": r.cycle_gap or gap} for r in definition.link_relations]
    return {
        "instId": flow.instance_id, "id": flow.flow_id, "name": definition.name, "creator": flow.creator,
        "freq": definition.cron, "alertMode": definition.alert_mode, "owners": definition.owners.text,
        "cycle": definition.cycle.value, "doAs": definition.submitter, "parameters": flow.parameters,
        "tasks": [
            {"taskName": t.name, "taskId": str(t.task_id), "nodeId": node_of_task[t.name],
             "taskInstId": row.instance_id if row is not None else None,
             "status": status_name(row.status) if row is not None else "NONE"}
            for t in definition.tasks for row in (by_name.get(t.name),)
        ],
        "flows": flows,
        "relations": relations,
    }


def flow_instance(flow: sa.Row, definition: FlowDefinition | ListedFlow, *, zone: dt.tzinfo, can_edit: bool,
                  graph: dict[str, Any] | None) -> dict[str, Any]:
    """FlowInstance. `graph` is included for Get Flow Instance, omitted from list items, whose
    `flow` rows have no `parameters` (the `ListedFlow` has them)."""
    if isinstance(definition, FlowDefinition):
        definition = ListedFlow.of(definition, flow.parameters)
    doc: dict[str, Any] = {
        "instanceId": flow.instance_id, "flowId": flow.flow_id, "flowName": flow.flow_name,
        "freq": definition.cron, "cycle": definition.cycle, "parameters": definition.parameters,
        "doAs": definition.submitter, "status": flow.status, "statusDesc": status_name(flow.status),
        "triggerTime": wire_time(flow.trigger_time, zone), "startTime": wire_time(flow.start_time, zone),
        "endTime": wire_time(flow.end_time, zone), "timestamp": java_timestamp(flow.created_at, zone),
        "virtual": False, "owner": flow.owners, "alertMode": definition.alert_mode, "calDt": flow.cal_dt,
        "hasEditPri": can_edit, "hasReadPri": True, "isCancelled": bool(flow.is_cancelled),
        "type": flow.flow_type,
    }
    if graph is not None:
        doc["graph"] = _compact(graph)
    return doc


def task_instance(row: sa.Row, flow: sa.Row, task: TaskDefinition, definition: FlowDefinition, *,
                  zone: dt.tzinfo) -> dict[str, Any]:
    """TaskInstance (the 2.3+ sample's fields)."""
    code = _CODE_OF_KIND.get(task.kind)
    return {
        "instanceId": row.instance_id, "taskId": row.task_id, "taskName": row.task_name,
        "cycle": definition.cycle.value, "status": row.status, "stsDesc": status_name(row.status),
        "runNum": row.run_num, "type": code if code is not None else task.type, "syncType": task.sync_type,
        "freq": task.cron or None, "ifPre": 1 if flow.origin == "manual" else 0, "recallNum": row.recall_num,
        "triggerTime": wire_time(flow.trigger_time, zone), "timeout": task.timeout_seconds,
        "recallLimit": task.retry_limit, "recallInterval": task.retry_interval_seconds,
        "startTime": wire_time(row.start_time, zone), "endTime": wire_time(row.end_time, zone),
        "timeStamp": java_date(local_time(row.created_at, zone)), "isTimeout": bool(row.is_timeout),
        "flowInstId": row.flow_instance_id, "doAs": task.submitter or definition.submitter, "alert": False,
        "runMode": task.run_mode.text, "cmd": task.cmd, "hasResourceBefore": False,
        "resourceName": task.resource, "fileName": task.file_package, "resourceVersion": "",
    }
