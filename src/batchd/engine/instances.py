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
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from batchd.catalog import flow_store
from batchd.catalog.model import FlowDefinition, Parameter
from batchd.catalog.shapes import to_document
from batchd.clock import now_ms
from batchd.engine.status import Status
from batchd.errors import IllegalState, InvalidParameter
from batchd.store.statements import insert_if_absent
from batchd.store.tables import flow_instances, task_instances

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
    chosen = {start_task}
    frontier = [start_task]
    while frontier:
        source = frontier.pop()
        for relation in definition.relations:
            if relation.source == source and relation.rerun and relation.target not in chosen:
                chosen.add(relation.target)
                frontier.append(relation.target)
    return chosen


def effective_parameters(flow_parameters: Iterable[Parameter], overrides: Mapping[str, str] | None) -> str:
    """The run's parameters as the wire's JSON text: the flow's, then the trigger's overrides by key."""
    merged = {p.key: p.value for p in flow_parameters}
    merged.update(overrides or {})
    return json.dumps([{"key": k, "value": v} for k, v in merged.items()], ensure_ascii=False,
                      separators=(",", ":"))


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
    if origin not in ORIGINS:
        raise ValueError(f"origin must be one of {ORIGINS}, not {origin!r}")
    zone = zone or _default_zone
    flow = await flow_store.find_flow(conn, flow_id)
    if flow is None:
        raise InvalidParameter(f"flowId: workflow {flow_id} does not exist")
    definition = flow.definition
    if not definition.tasks:
        raise IllegalState(NO_TASK)
    chosen = {t.name for t in definition.tasks}
    if start_task_id is not None:
        start = next((t for t in definition.tasks if t.task_id == start_task_id), None)
        if start is None:
            raise InvalidParameter(f"taskId: task {start_task_id} is not a task of workflow {flow_id}")
        chosen = selected_tasks(definition, start.name)
    suffix = instance_suffix(trigger_time_ms, origin, zone)
    instance_id = f"{flow_id}-{suffix}"
    now = now_ms()
    inserted = await insert_if_absent(
        conn, flow_instances,
        instance_id=instance_id, flow_id=flow_id, org_id=flow.org_id, flow_name=definition.name,
        flow_type=definition.type, creator=flow.creator, owners=definition.owners.text, origin=origin,
        status=int(Status.INIT), is_cancelled=False, trigger_time=trigger_time_ms,
        cal_dt=business_date(trigger_time_ms, zone), created_at=now, updated_at=now,
        start_task_id=start_task_id, definition=to_document(definition),
        parameters=effective_parameters(definition.parameters.items, parameters),
    )
    if not inserted:
        return None
    await conn.execute(task_instances.insert(), [
        {
            "instance_id": f"{task.task_id}-{suffix}", "flow_instance_id": instance_id, "task_id": task.task_id,
            "task_name": task.name, "status": int(Status.INIT if task.name in chosen else Status.SKIP),
            "created_at": now,
        }
        for task in definition.tasks
    ])
    return instance_id


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
