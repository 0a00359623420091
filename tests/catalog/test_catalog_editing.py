"""Save Flow's merge of a graph-shaped body into the stored definition."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from batchd.catalog.editing import apply_save
from batchd.catalog.model import FlowDefinition
from batchd.catalog.validation import parse_import, parse_save
from batchd.errors import InvalidParameter


def stored() -> FlowDefinition:
    """Tasks a(11) → b(12), b has a real config; a flow link 0 on flow 5 → a."""
    d = parse_import({
        "flowName": "f", "dirId": "x",
        "flowJson": {
            "type": 1, "cycle": "D", "cron": "0 0 1 * * ? *", "owners": "alice",
            "tasks": [{"name": "a", "type": "COMMAND", "cmd": "echo a"},
                      {"name": "b", "type": 3, "cmd": "echo b", "timeout": 60, "retryLimit": 2}],
            "relations": [{"sourceTaskName": "a", "targetTaskName": "b", "rerun": True}],
            "flowLinks": [{"linkId": "0", "sourceFlowName": "up"}],
            "linkRelations": [{"linkId": "0", "targetTaskName": "a"}],
        },
    }).definition
    return dataclasses.replace(
        d,
        tasks=tuple(dataclasses.replace(t, task_id=11 + i) for i, t in enumerate(d.tasks)),
        flow_links=(dataclasses.replace(d.flow_links[0], source_flow_id=5),),
    )


def save(**body: Any) -> FlowDefinition:
    return apply_save(stored(), parse_save({"id": "7", **body}))


def refused(**body: Any) -> str:
    with pytest.raises(InvalidParameter) as info:
        save(**body)
    return info.value.message


def test_absent_fields_keep_everything() -> None:
    assert save() == stored()


def test_flow_fields_replace() -> None:
    d = save(name="g", freq="0 30 2 * * ? *", cycle="H", alertMode="2", owners=";alice;bob;", desc="new",
             startTime="2024-01-02", doAs="acct")
    assert (d.name, d.cron, d.cycle.value, d.alert_mode, d.owners.names, d.desc, d.submitter) == (
        "g", "0 30 2 * * ? *", "H", 2, ("alice", "bob"), "new", "acct")
    assert str(d.start_date) == "2024-01-02" and save(startTime="").start_date is None


def test_rename_keeps_config_and_edges() -> None:
    d = save(tasks=[{"taskName": "a", "taskId": "11"}, {"taskName": "B2", "taskId": "12", "x": 3, "y": 4}])
    b = d.tasks[1]
    assert (b.name, b.cmd, b.timeout_seconds, b.retry_limit, b.type, b.task_id) == ("B2", "echo b", 60, 2, 3, 12)
    assert b.position is not None and (b.position.x, b.position.y) == (3, 4)
    assert [(r.source, r.target) for r in d.relations] == [("a", "B2")]
    assert [(r.link_id, r.target) for r in d.link_relations] == [("0", "a")]


def test_new_task_and_removed_task() -> None:
    d = save(tasks=[{"taskName": "b", "taskId": 12}, {"taskName": "c", "nodeId": "n1"}],
             relations=[{"source": "t_12", "target": "n1", "rerun": False, "cycleGap": "D1"},
                        {"source": "f_5", "target": "t_12"}])
    assert [t.name for t in d.tasks] == ["b", "c"] and d.tasks[1].task_id is None and d.tasks[1].cmd == ""
    assert [(r.source, r.target, r.cycle_gap) for r in d.relations] == [("b", "c", "D1")]
    assert [(r.link_id, r.target) for r in d.link_relations] == [("0", "b")]


def test_dropping_a_task_drops_its_edges_when_relations_are_absent() -> None:
    d = save(tasks=[{"taskName": "b", "taskId": 12}])
    assert d.relations == () and d.link_relations == ()


def test_new_references_carry_ids_only() -> None:
    d = save(flows=[{"flowId": "5", "nodeId": "f_5"}, {"flowId": 9, "flowName": "x"},
                    {"flowId": "9", "flowName": "104(t)", "isVirtual": True}],
             relations=[{"source": "f_9", "target": "t_11"}, {"source": "t_104", "target": "t_12"}])
    assert [(f.link_id, f.source_flow_id) for f in d.flow_links] == [("0", 5), ("1", 9)]
    assert [(t.link_id, t.source_flow_id, t.source_task_id) for t in d.task_links] == [("2", 9, 104)]
    assert [(r.link_id, r.target) for r in d.link_relations] == [("1", "a"), ("2", "b")]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"tasks": [{"taskName": "a", "taskId": 99}]},
         "tasks[0].taskId: 99 is not a task of this workflow (leave taskId out to add a task)"),
        ({"tasks": [{"taskName": "a", "taskId": 11}, {"taskName": "a2", "taskId": 11}]},
         'tasks[1]: task "a" appears twice'),
        ({"tasks": [{"taskName": "a", "taskId": 11}, {"taskName": "a"}]}, 'tasks[1]: task "a" appears twice'),
        ({"tasks": [{"taskName": "a", "taskId": 11}, {"taskName": "b", "taskId": 12}, {"taskName": "b"}]},
         'tasks[2]: task "b" appears twice'),
        ({"relations": [{"source": "t_11", "target": "t_11"}]}, 'relations[0]: task "a" depends on itself'),
        ({"relations": [{"source": "t_11", "target": "f_5"}]},
         'relations[0].target: "f_5" is a reference; references must be roots (no incoming edges)'),
        ({"relations": [{"source": "t_11", "target": "t_77"}]}, 'relations[0].target: unknown node "t_77"'),
        ({"relations": [{"source": "t_77", "target": "t_11"}]}, 'relations[0].source: unknown node "t_77"'),
        ({"relations": [{"source": "t_11", "target": "t_12"}, {"source": "t_12", "target": "t_11"}]},
         "relations: tasks are in a cycle: a -> b -> a"),
        ({"type": 0}, "type: 0 is not allowed; a periodic workflow cannot become a manual one or the reverse"),
        ({"freq": ""}, "freq: is required for a periodic workflow (type 1)"),
        ({"id": "x"}, 'id: "x" is not an integer'),
        ({"cycle": "Q"}, 'cycle: "Q" is not a cycle (M/W/D/H/mi)'),
        ({"active": 2}, "active: 2 is out of range 0-1"),
        ({"flows": [{"flowId": 5, "isVirtual": True, "nodeId": "v"}]},
         'flows[0]: a virtual node must name its task as nodeId t_<taskId> or flowName <taskId>(<taskName>), got "v"'),
        ({"flows": [{"flowId": 5}, {"flowId": "5"}]}, "flows[1]: f_5 appears twice"),
    ],
)
def test_refusals(body: dict[str, Any], message: str) -> None:
    assert refused(**body) == message


def test_snake_case_graph_keys() -> None:
    d = save(tasks=[{"task_name": "a", "task_id": "11", "node_id": "t_11"}, {"task_name": "b", "task_id": 12}],
             relations=[{"source": "t_12", "target": "t_11", "cycle_gap": "D0"}])
    assert [(r.source, r.target) for r in d.relations] == [("b", "a")]
