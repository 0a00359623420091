"""Records of a workflow definition: what a flow *is*, independent of any wire shape or table.

A flow travels in two JSON shapes (spec semantics §1.1): the portable shape of Import/Export
(tasks by name, full config) and the graph shape of Get Flow/Save Flow (tasks by id, canvas
positions). Both are read into and written from these records, so the rules live in one place.

Round trip is a promise: exporting an imported flow gives back what was imported. Where the wire
carries a value whose text matters more than its meaning (`parameters` and `runMode` are JSON
*inside strings*, `owners` may be `";a;b;"` or `"a;b"`, a task `type` may be `"COMMAND"` or `3`),
the record keeps the parsed value for batchd's own use *and* the original for export.

Everything here is frozen and keyword-only; changing a definition means `dataclasses.replace`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum


class Cycle(StrEnum):
    """Scheduling cycle unit of a flow (spec §1.4). The values are the wire letters."""

    MONTH = "M"
    WEEK = "W"
    DAY = "D"
    HOUR = "H"
    MINUTE = "mi"


class TaskKind(StrEnum):
    """What a task runs, whatever spelling the client used for its `type`.

    The docs disagree (semantics §1.3): integers 0-6 in the Task Struct table, strings such as
    `COMMAND` and `DATA_INTEGRATION` in every sample, and `7` for a data-integration task in 2.3+.
    `COMMAND` is the samples' name for a shell command task, so it maps to SHELL.
    """

    DATA_INTEGRATION = "DATA_INTEGRATION"
    SHELL = "SHELL"
    PYTHON = "PYTHON"
    EXTERNAL_APP = "EXTERNAL_APP"
    WORMHOLE = "WORMHOLE"
    CALCULATE = "CALCULATE"
    CANAAN = "CANAAN"
    HIVE = "HIVE"
    MR = "MR"


#: Legacy integer task types (Task Struct table) plus 7, the 2.3+ code seen for data integration.
TASK_KIND_BY_CODE: dict[int, TaskKind] = {
    0: TaskKind.DATA_INTEGRATION,
    1: TaskKind.WORMHOLE,
    2: TaskKind.CALCULATE,
    3: TaskKind.SHELL,
    4: TaskKind.CANAAN,
    5: TaskKind.HIVE,
    6: TaskKind.MR,
    7: TaskKind.DATA_INTEGRATION,
}

#: Accepted string task types (upper-cased before lookup).
TASK_KIND_BY_NAME: dict[str, TaskKind] = {kind.value: kind for kind in TaskKind} | {
    "COMMAND": TaskKind.SHELL,
}


@dataclass(frozen=True, kw_only=True)
class UserList:
    """A `;`-separated list of user names, as in `owners`/`visitors` (`";alice;bob;"` or `"alice"`).

    `names` is the normalised, de-duplicated list batchd checks permissions against; `text` is what
    the client sent, echoed on export and in Get Flow so a round trip is byte-identical.
    """

    names: tuple[str, ...] = ()
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> UserList:
        names: list[str] = []
        for part in text.split(";"):
            name = part.strip()
            if name and name not in names:
                names.append(name)
        return cls(names=tuple(names), text=text)

    @classmethod
    def of(cls, names: tuple[str, ...] | list[str]) -> UserList:
        """A list batchd built itself; rendered in the wrapped form the samples use most."""
        unique = tuple(dict.fromkeys(n for n in names if n))
        return cls(names=unique, text=f";{';'.join(unique)};" if unique else "")

    def __contains__(self, name: object) -> bool:
        return name in self.names


@dataclass(frozen=True, kw_only=True)
class Parameter:
    """One global or task parameter, `${key}` in commands is replaced by `value`."""

    key: str
    value: str


@dataclass(frozen=True, kw_only=True)
class Parameters:
    """The `parameters` field: a JSON array of `{key, value}` transported *inside a string*."""

    items: tuple[Parameter, ...] = ()
    text: str = "[]"


@dataclass(frozen=True, kw_only=True)
class RunMode:
    """Container settings of a task (semantics §1.2.1), parsed from the `runMode` JSON string.

    `text` is the string as sent (`""` when the client sent none), kept for export.
    """

    task_mode: int = 1
    cpu: float = 0.5
    memory_gb: float = 1.0
    max_parallel: int = 0
    key_type: int = 0
    datasource_id: int = 0
    path: str = ""
    content: str = ""
    text: str = ""


@dataclass(frozen=True, kw_only=True)
class Position:
    """Where a node sits on the editor canvas (graph shape only; meaningless to the engine)."""

    x: float = 0.0
    y: float = 0.0


@dataclass(frozen=True, kw_only=True)
class TaskDefinition:
    """One executable node of a flow.

    `type` is the client's value exactly (`"COMMAND"`, `3`, `"3"` stays `"3"`) for export; `kind`
    is what batchd acts on. Durations carry their unit in the name; the wire calls them `timeout`
    and `retryInterval`. `task_id` is None until the store allocates one.
    """

    name: str
    type: str | int = "COMMAND"
    kind: TaskKind = TaskKind.SHELL
    resource: str = "default"
    cmd: str = ""
    submitter: str = ""
    file_package: str = ""
    cron: str = ""
    priority_level: int = 0
    timeout_seconds: int = 0
    retry_limit: int = 0
    retry_interval_seconds: int = 0
    success_codes: tuple[int, ...] = ()
    wait_codes: tuple[int, ...] | None = None  # None: the client sent no `waitCode` (EnOS's export has none)
    as_link: bool = False
    run_mode: RunMode = field(default_factory=RunMode)
    sync_type: int = 1
    task_id: int | None = None
    position: Position | None = None


@dataclass(frozen=True, kw_only=True)
class NamedRelation:
    """Edge `source` → `target` between two tasks of the flow, by task name.

    `rerun` only matters for "run from this task" (downstream re-run too); `cycle_gap` is the graph
    shape's schedule offset (`"D0"`), None when the client did not send one.
    """

    source: str
    target: str
    rerun: bool = False
    cycle_gap: str | None = None


@dataclass(frozen=True, kw_only=True)
class FlowLink:
    """Dependency on a whole upstream flow of the same organisation, resolved by name at import."""

    link_id: str
    source_flow_name: str
    source_flow_id: int | None = None
    position: Position | None = None


@dataclass(frozen=True, kw_only=True)
class TaskLink:
    """Dependency on one task of another flow of the same organisation."""

    link_id: str
    source_flow_name: str
    source_task_name: str
    source_flow_id: int | None = None
    source_task_id: int | None = None
    position: Position | None = None


@dataclass(frozen=True, kw_only=True)
class LinkRelation:
    """Edge from a flow or task link (by `link_id`) to a task of this flow (by name)."""

    link_id: str
    target: str
    rerun: bool = False
    cycle_gap: str | None = None


@dataclass(frozen=True, kw_only=True)
class FlowDefinition:
    """A whole workflow definition: scheduling, people, tasks and the DAG between them.

    `submitter` is the portable shape's name for the graph shape's `doAs`. `start_date` is the
    effective date (`startTime` on the wire), None when the client sent `""`.
    """

    name: str
    cycle: Cycle = Cycle.DAY
    cron: str = ""
    parameters: Parameters = field(default_factory=Parameters)
    alert_mode: int = 0
    submitter: str = ""
    owners: UserList = field(default_factory=UserList)
    visitors: UserList = field(default_factory=UserList)
    type: int = 0
    sync_type: int = 1
    desc: str = ""
    start_date: dt.date | None = None
    queue: str = ""
    tasks: tuple[TaskDefinition, ...] = ()
    relations: tuple[NamedRelation, ...] = ()
    flow_links: tuple[FlowLink, ...] = ()
    task_links: tuple[TaskLink, ...] = ()
    link_relations: tuple[LinkRelation, ...] = ()

    def task(self, name: str) -> TaskDefinition | None:
        return next((t for t in self.tasks if t.name == name), None)


@dataclass(frozen=True, kw_only=True)
class ImportRequest:
    """The body of Import Flow after validation: where to put which definition."""

    flow_name: str
    dir_id: str
    definition: FlowDefinition
    flow_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class GraphTaskNode:
    """A task node of Save Flow's graph shape: only a name, maybe an id, and a position."""

    name: str
    task_id: int | None
    node_id: str
    position: Position


@dataclass(frozen=True, kw_only=True)
class GraphFlowNode:
    """An upstream node (`f_<flowId>`) of Save Flow's graph shape."""

    flow_id: int
    flow_name: str
    node_id: str
    is_virtual: bool
    position: Position


@dataclass(frozen=True, kw_only=True)
class GraphRelation:
    """An edge of Save Flow's graph shape, between node ids (`t_<taskId>` or `f_<flowId>`)."""

    source: str
    target: str
    rerun: bool
    cycle_gap: str | None


@dataclass(frozen=True, kw_only=True)
class SaveRequest:
    """Save Flow's body after validation. A field left None was absent: keep the stored value.

    The graph shape names tasks but carries none of their configuration, so Save can only
    rename, add, drop and re-wire tasks and change flow-level settings; see `catalog.editing`.
    """

    flow_id: int
    name: str | None = None
    type: int | None = None
    cron: str | None = None
    cycle: Cycle | None = None
    alert_mode: int | None = None
    submitter: str | None = None
    owners: UserList | None = None
    visitors: UserList | None = None
    start_date: dt.date | None = None
    start_date_given: bool = False
    active: bool | None = None
    parameters: Parameters | None = None
    desc: str | None = None
    queue: str | None = None
    sync_type: int | None = None
    tasks: tuple[GraphTaskNode, ...] | None = None
    flows: tuple[GraphFlowNode, ...] | None = None
    relations: tuple[GraphRelation, ...] | None = None
    restore_version: int | None = None


@dataclass(frozen=True, kw_only=True)
class StoredFlow:
    """A flow as the catalogue keeps it: its definition plus what only the server knows.

    Times are epoch milliseconds (UTC), formatted at the edge. `version` counts saves: the import
    is version 1 and every Save Flow adds one (older versions stay in `flow_versions`).
    """

    flow_id: int
    org_id: str
    dir_id: str
    definition: FlowDefinition
    active: bool = False
    creator: str = ""
    create_time_ms: int = 0
    update_time_ms: int = 0
    update_user: str = ""
    entry: int = 1
    version: int = 1
