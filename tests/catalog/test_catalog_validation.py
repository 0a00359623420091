"""Import Flow's body → records: every rule, with the message a user reads."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from batchd.catalog.model import Cycle, TaskKind, UserList
from batchd.catalog.shapes import export_definition
from batchd.catalog.validation import find_cycle, parse_import
from batchd.errors import InvalidParameter

FIXTURES = Path(__file__).parent / "fixtures"


def seed() -> dict[str, Any]:
    """The Import Flow page's request sample, with the quotes inside `cmd` escaped."""
    return json.loads((FIXTURES / "seed_import_flow.json").read_text())


def body(**flow_json: Any) -> dict[str, Any]:
    """A small valid body: tasks a → b → c, with `flowJson` fields overridden."""
    task = {"name": "a", "type": "COMMAND", "cmd": "echo a", "timeout": 300}
    base = {
        "type": 1, "cycle": "D", "cron": "0 0 0 * * ? *", "owners": ";alice;", "visitors": "",
        "tasks": [task, {**task, "name": "b"}, {**task, "name": "c"}],
        "relations": [
            {"sourceTaskName": "a", "targetTaskName": "b", "rerun": True},
            {"sourceTaskName": "b", "targetTaskName": "c", "rerun": False},
        ],
    }
    base.update(flow_json)
    return {"flowName": "nightly", "dirId": "d" * 32, "flowJson": base}


def rejected(data: Any) -> str:
    with pytest.raises(InvalidParameter) as info:
        parse_import(data)
    assert info.value.code == 62102
    return info.value.message


def with_task(index: int, **fields: Any) -> dict[str, Any]:
    data = body()
    data["flowJson"]["tasks"][index].update(fields)
    return data


# --- the seed sample ---------------------------------------------------------------------------


def test_seed_sample_with_escaped_quotes_is_valid() -> None:
    request = parse_import(seed())
    d = request.definition
    assert request.flow_name == "outuser" and request.dir_id == "dirId" and request.flow_id is None
    assert d.name == "outuser" and d.cycle is Cycle.DAY and d.type == 1 and d.alert_mode == 3
    assert d.parameters.items[0].key == "REPLACE" and d.parameters.items[0].value == "lili1"
    (task,) = d.tasks
    assert task.cmd == 'echo "hello"' and task.kind is TaskKind.DATA_INTEGRATION
    assert task.type == "DATA_INTEGRATION" and task.timeout_seconds == 300 and task.retry_limit == 3
    assert task.success_codes == (0,) and task.wait_codes == () and task.as_link is True
    assert task.run_mode.cpu == 0.5 and task.run_mode.memory_gb == 1 and task.run_mode.task_mode == 1


def test_seed_sample_as_published_is_not_json() -> None:
    """The page's sample has unescaped quotes in `cmd`; the HTTP layer's JSON parser refuses it."""
    with pytest.raises(json.JSONDecodeError) as info:
        json.loads((FIXTURES / "seed_import_flow_malformed.json").read_text())
    assert (info.value.lineno, info.value.colno) == (19, 31)


def test_export_gives_back_what_was_imported() -> None:
    sample = seed()
    exported = export_definition(parse_import(sample).definition)
    assert exported == {"name": "outuser", **sample["flowJson"]}


# --- mandatory fields, types, coercion ---------------------------------------------------------


@pytest.mark.parametrize("field", ["flowName", "dirId", "flowJson"])
def test_mandatory_top_level_fields(field: str) -> None:
    data = body()
    del data[field]
    assert rejected(data) == f"{field}: is required"


def test_blank_flow_name() -> None:
    data = body()
    data["flowName"] = "  "
    assert rejected(data) == "flowName: must not be empty"


def test_body_must_be_an_object() -> None:
    assert rejected([1]) == "body: [1] is not a JSON object"
    assert rejected({**body(), "flowJson": 5}) == "flowJson: 5 is not a JSON object"


def test_mandatory_task_fields() -> None:
    data = body()
    del data["flowJson"]["tasks"][1]["name"]
    assert rejected(data) == "flowJson.tasks[1].name: is required"
    data = body()
    del data["flowJson"]["tasks"][0]["type"]
    assert rejected(data) == "flowJson.tasks[0].type: is required"


def test_numbers_may_arrive_as_strings() -> None:
    data = body(type="1", alertMode="3", syncType="0")
    data["flowId"] = "13774"
    data["flowJson"]["tasks"][2].update(timeout="60", retryLimit="2", asLink="true")
    request = parse_import(data)
    assert request.flow_id == 13774
    assert (request.definition.type, request.definition.alert_mode, request.definition.sync_type) == (1, 3, 0)
    task = request.definition.tasks[2]
    assert (task.timeout_seconds, task.retry_limit, task.as_link) == (60, 2, True)


def test_non_numeric_strings_are_rejected() -> None:
    assert rejected(body(type="one")) == 'flowJson.type: "one" is not an integer'
    assert rejected(with_task(1, retryLimit="3x")) == 'flowJson.tasks[1].retryLimit: "3x" is not an integer'
    assert rejected(with_task(0, timeout=True)) == "flowJson.tasks[0].timeout: true is not an integer"
    assert rejected(with_task(0, timeout=1.5)) == "flowJson.tasks[0].timeout: 1.5 is not an integer"
    assert rejected(with_task(0, asLink="maybe")) == 'flowJson.tasks[0].asLink: "maybe" is not a boolean'


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"type": 3}, "flowJson.type: 3 is out of range 0-2"),
        ({"alertMode": -1}, "flowJson.alertMode: -1 is out of range 0-3"),
        ({"syncType": 2}, "flowJson.syncType: 2 is out of range 0-1"),
        ({"cycle": "Y"}, 'flowJson.cycle: "Y" is not a cycle (M/W/D/H/mi)'),
        ({"cycle": "MI"}, 'flowJson.cycle: "MI" is not a cycle (M/W/D/H/mi)'),
        ({"startTime": "22/11/2019"}, 'flowJson.startTime: "22/11/2019" is not a date (yyyy-MM-dd)'),
        ({"startTime": "2019-02-30"}, 'flowJson.startTime: "2019-02-30" is not a date (yyyy-MM-dd)'),
    ],
)
def test_flow_ranges(fields: dict[str, Any], message: str) -> None:
    assert rejected(body(**fields)) == message


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"timeout": -5}, "flowJson.tasks[2].timeout: -5 is out of range 0-604800"),
        ({"timeout": 604801}, "flowJson.tasks[2].timeout: 604801 is out of range 0-604800"),
        ({"retryLimit": 101}, "flowJson.tasks[2].retryLimit: 101 is out of range 0-100"),
        ({"retryInterval": -1}, "flowJson.tasks[2].retryInterval: -1 is out of range 0-86400"),
        ({"priorityLevel": 101}, "flowJson.tasks[2].priorityLevel: 101 is out of range 0-100"),
        ({"syncType": 5}, "flowJson.tasks[2].syncType: 5 is out of range 0-1"),
        ({"successCode": "0,x"}, 'flowJson.tasks[2].successCode: "x" is not an integer'),
        ({"successCode": "256"}, "flowJson.tasks[2].successCode: 256 is out of range 0-255"),
        ({"type": "SPARK"}, 'flowJson.tasks[2].type: "SPARK" is not a task type'),
        ({"type": 9}, "flowJson.tasks[2].type: 9 is not a task type (use 0-7 or one of "),
        ({"type": 1.5}, "flowJson.tasks[2].type: 1.5 is not a task type"),
    ],
)
def test_task_ranges(fields: dict[str, Any], message: str) -> None:
    assert rejected(with_task(2, **fields)).startswith(message)


@pytest.mark.parametrize(
    ("sent", "kind"),
    [("COMMAND", TaskKind.SHELL), ("command", TaskKind.SHELL), ("DATA_INTEGRATION", TaskKind.DATA_INTEGRATION),
     ("PYTHON", TaskKind.PYTHON), (3, TaskKind.SHELL), ("3", TaskKind.SHELL), (0, TaskKind.DATA_INTEGRATION),
     (7, TaskKind.DATA_INTEGRATION), (6, TaskKind.MR)],
)
def test_task_types_keep_what_was_sent(sent: str | int, kind: TaskKind) -> None:
    task = parse_import(with_task(0, type=sent)).definition.tasks[0]
    assert task.kind is kind and task.type == sent
    assert export_definition(parse_import(with_task(0, type=sent)).definition)["tasks"][0]["type"] == sent


# --- JSON inside strings -------------------------------------------------------------------------


def test_parameters_bad_json() -> None:
    assert rejected(body(parameters='[{"key":"a",}]')) == (
        "flowJson.parameters: invalid JSON inside the string: Expecting property name enclosed in double "
        "quotes at line 1 column 13"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"key":"a"}', "flowJson.parameters: must hold a JSON array of {key, value} objects"),
        ('["a"]', 'flowJson.parameters[0]: "a" is not a JSON object'),
        ('[{"value":"v"}]', "flowJson.parameters[0].key: is required"),
        ('[{"key":"a","value":"1"},{"key":"a","value":"2"}]', 'flowJson.parameters[1].key: duplicate key "a"'),
        ('[{"key":"a","value":[1]}]', "flowJson.parameters[0].value: [1] is not a string"),
    ],
)
def test_parameters_wrong_shape(text: str, message: str) -> None:
    assert rejected(body(parameters=text)) == message


def test_parameters_keep_their_text_and_accept_a_real_array() -> None:
    text = '[ {"key": "k", "value": "v"} ]'
    assert parse_import(body(parameters=text)).definition.parameters.text == text
    as_array = parse_import(body(parameters=[{"key": "k", "value": 5}])).definition.parameters
    assert as_array.items[0].value == "5" and as_array.text == '[{"key":"k","value":5}]'
    assert parse_import(body(parameters="")).definition.parameters.items == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{taskMode:1}", "flowJson.tasks[1].runMode: invalid JSON inside the string: Expecting property name"),
        ("[1]", "flowJson.tasks[1].runMode: [1] is not a JSON object"),
        ('{"taskMode":3}', "flowJson.tasks[1].runMode.taskMode: 3 is out of range 1-2"),
        ('{"cpu":4}', "flowJson.tasks[1].runMode.cpu: 4 is out of range 0.1-2"),
        ('{"memory":"lots"}', 'flowJson.tasks[1].runMode.memory: "lots" is not a number'),
        ('{"keyType":5}', "flowJson.tasks[1].runMode.keyType: 5 is out of range 0-2"),
    ],
)
def test_run_mode(text: str, message: str) -> None:
    assert rejected(with_task(1, runMode=text)).startswith(message)


# --- owners, visitors -----------------------------------------------------------------------------


def test_user_lists_are_normalised_and_remembered() -> None:
    d = parse_import(body(owners=";alice; bob;;alice;", visitors="carol")).definition
    assert d.owners.names == ("alice", "bob") and "bob" in d.owners and "carol" not in d.owners
    assert d.owners.text == ";alice; bob;;alice;" and d.visitors.names == ("carol",)
    assert UserList.of(["x", "y", "x"]).text == ";x;y;"


# --- the DAG ------------------------------------------------------------------------------------


def test_duplicate_task_names() -> None:
    data = body()
    data["flowJson"]["tasks"][2]["name"] = "a"
    assert rejected(data) == 'flowJson.tasks[2].name: duplicate task name "a"'


def test_relation_to_unknown_task() -> None:
    data = body()
    data["flowJson"]["relations"][1]["targetTaskName"] = "zz"
    assert rejected(data) == 'flowJson.relations[1].targetTaskName: unknown task "zz"'
    data["flowJson"]["relations"][0]["sourceTaskName"] = "yy"
    assert rejected(data) == 'flowJson.relations[0].sourceTaskName: unknown task "yy"'


def test_self_loop() -> None:
    data = body(relations=[{"sourceTaskName": "b", "targetTaskName": "b"}])
    assert rejected(data) == 'flowJson.relations[0]: task "b" depends on itself'


def test_duplicate_edge() -> None:
    rel = {"sourceTaskName": "a", "targetTaskName": "b"}
    assert rejected(body(relations=[rel, rel])) == "flowJson.relations[1]: duplicate edge a -> b"


def test_cycle_names_the_tasks_in_order() -> None:
    data = body()
    data["flowJson"]["relations"].append({"sourceTaskName": "c", "targetTaskName": "a"})
    assert rejected(data) == "flowJson.relations: tasks are in a cycle: a -> b -> c -> a"


def test_find_cycle() -> None:
    assert find_cycle(["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("a", "d")]) is None
    assert find_cycle(["x", "a", "b"], [("x", "a"), ("a", "b"), ("b", "a")]) == ["a", "b", "a"]


def links(**extra: Any) -> dict[str, Any]:
    return body(
        flowLinks=[{"linkId": "0", "sourceFlowName": "upstream"}],
        taskLinks=[{"linkId": "1", "sourceFlowName": "upstream", "sourceTaskName": "t"}],
        linkRelations=[{"linkId": "0", "targetTaskName": "a", "rerun": False},
                       {"linkId": "1", "targetTaskName": "b", "rerun": True}],
        **extra,
    )


def test_links_are_read() -> None:
    d = parse_import(links()).definition
    assert d.flow_links[0].source_flow_name == "upstream"
    assert d.task_links[0].source_task_name == "t"
    assert [(r.link_id, r.target, r.rerun) for r in d.link_relations] == [("0", "a", False), ("1", "b", True)]


def test_link_ids_are_unique_across_kinds() -> None:
    data = links()
    data["flowJson"]["taskLinks"][0]["linkId"] = "0"
    assert rejected(data) == 'flowJson.taskLinks[0].linkId: duplicate link id "0"'


def test_link_relation_to_unknown_link_or_task() -> None:
    data = links()
    data["flowJson"]["linkRelations"][1]["linkId"] = "7"
    assert rejected(data) == 'flowJson.linkRelations[1].linkId: unknown link "7"'
    data = links()
    data["flowJson"]["linkRelations"][0]["targetTaskName"] = "nope"
    assert rejected(data) == 'flowJson.linkRelations[0].targetTaskName: unknown task "nope"'


def test_links_must_be_roots() -> None:
    data = links()
    data["flowJson"]["relations"].append({"sourceTaskName": "a", "targetTaskName": "0"})
    assert rejected(data) == (
        'flowJson.relations[2].targetTaskName: "0" is a link; links must be roots (no incoming edges)'
    )


def test_link_fields_are_mandatory() -> None:
    data = links()
    del data["flowJson"]["taskLinks"][0]["sourceTaskName"]
    assert rejected(data) == "flowJson.taskLinks[0].sourceTaskName: is required"


def test_arrays_must_be_arrays() -> None:
    assert rejected(body(tasks={"name": "a"})) == 'flowJson.tasks: {"name": "a"} is not an array'


def test_empty_flow_is_valid() -> None:
    d = parse_import(body(tasks=[], relations=[])).definition
    assert d.tasks == () and d.relations == ()


def test_top_level_desc_wins_over_flow_json_desc() -> None:
    data = body(desc="inner")
    assert parse_import(data).definition.desc == "inner"
    data["desc"] = "outer"
    assert parse_import(data).definition.desc == "outer"


def test_flow_id_must_be_positive() -> None:
    data = copy.deepcopy(body())
    data["flowId"] = -3
    assert rejected(data) == "flowId: -3 is below 1"


# --- Quartz cron, checked by batchd.cron ------------------------------------------------------


def test_flow_cron_is_quartz() -> None:
    assert rejected(body(cron="0 0 25 * * ? *")) == 'flowJson.cron: "0 0 25 * * ? *": hour: 25 is out of range 0-23'


def test_task_cron_is_quartz() -> None:
    assert rejected(with_task(1, cron="0 61 * * * ? *")).startswith('flowJson.tasks[1].cron: "0 61 * * * ? *": minute')
    assert parse_import(with_task(1, cron="0 30 1 * * ? *")).definition.tasks[1].cron == "0 30 1 * * ? *"


def test_periodic_flow_needs_a_cron() -> None:
    assert rejected(body(cron="")) == "flowJson.cron: is required for a periodic workflow (type 1)"
    assert parse_import(body(cron="", type=0)).definition.cron == ""


def test_flow_json_as_string_or_one_element_list() -> None:
    data = body()
    as_text = {**data, "flowJson": json.dumps(data["flowJson"])}
    assert parse_import(as_text) == parse_import(data)
    assert parse_import({**data, "flowJson": [data["flowJson"]]}) == parse_import(data)
    assert rejected({**data, "flowJson": "{"}).startswith("flowJson: invalid JSON inside the string")


def test_nul_characters_are_refused() -> None:
    assert rejected(with_task(0, cmd="echo \x00")) == "flowJson.tasks[0].cmd: must not contain a NUL character"
