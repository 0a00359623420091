"""Get Flow's answer, made when a flow is written and stored with it (`flows.detail`).

A Get Flow used to read the 30 KB document, decode it, build FlowDetail and encode it again,
graph and all, on every call, though the answer only changes when the flow is written. So every
write that changes it (Import, Save, Enable, Disable) stores the FlowDetail JSON text of the
current version, and a Get sends that text as the envelope's `data` as is.

Five values of FlowDetail are not the flow's but the call's, and are left as holes: the two
timestamps (formatted in the server's time zone, a setting that can change between runs) and the
caller's `hasEditPri`, `hasReadPri`, `isUserLocked`. A hole is its key name between two `\\x1f`
characters, a character JSON text never holds raw (the encoder escapes every control
character), so splitting on it cannot cut a value of the flow; the names make a stored text
fill correctly whatever order a later FlowDetail puts its keys in.

Flows with references (flowLinks, taskLinks) get no rendering (None, stored as NULL): their
graph shows the upstream flows' and tasks' names as they are *now*, which another flow's rename
changes without writing this one. Neither does an older version (`version=N`). Those, and rows
whose rendering is NULL for any other reason, are read the full way.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

from batchd.catalog.model import StoredFlow
from batchd.catalog.shapes import UTC, TaskNode, flow_detail, java_timestamp

HOLE = "\x1f"

#: The FlowDetail keys whose values are the call's, not the flow's.
CALL_KEYS = ("createTime", "updateTime", "hasEditPri", "hasReadPri", "isUserLocked")

_dumps: Callable[[object], str] = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def render(flow: StoredFlow, task_nodes: tuple[TaskNode, ...] | None = None) -> str | None:
    """The stored text of FlowDetail for the flow's current version, or None when it must be read
    the full way (module docstring). `task_nodes`: as for `shapes.flow_detail`."""
    d = flow.definition
    if d.flow_links or d.task_links or d.link_relations:
        return None
    detail = flow_detail(flow, can_edit=False, can_read=False, user_locked=False, task_nodes=task_nodes)
    return "{" + ",".join(
        f"{_dumps(key)}:{HOLE}{key}{HOLE}" if key in CALL_KEYS else f"{_dumps(key)}:{_dumps(value)}"
        for key, value in detail.items()
    ) + "}"


@dataclass(frozen=True, kw_only=True)
class CallValues:
    """The five FlowDetail values of one call (see CALL_KEYS)."""

    create_time_ms: int
    update_time_ms: int
    can_edit: bool
    can_read: bool
    user_locked: bool

    def texts(self, zone: dt.tzinfo) -> dict[str, str]:
        return {
            "createTime": _dumps(java_timestamp(self.create_time_ms, zone)),
            "updateTime": _dumps(java_timestamp(self.update_time_ms, zone)),
            "hasEditPri": _dumps(self.can_edit),
            "hasReadPri": _dumps(self.can_read),
            "isUserLocked": _dumps(self.user_locked),
        }


def fill(rendering: str, values: CallValues, zone: dt.tzinfo = UTC) -> str:
    """FlowDetail's JSON text for one call: the stored rendering with its holes filled."""
    pieces = rendering.split(HOLE)
    texts = values.texts(zone)
    pieces[1::2] = [texts[name] for name in pieces[1::2]]
    return "".join(pieces)
