"""Records → wire shapes: the stored document, FlowDetail and its graph, timestamps."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from zoneinfo import ZoneInfo

from batchd.catalog.model import Position, StoredFlow
from batchd.catalog.shapes import (
    export_definition,
    flow_detail,
    from_document,
    java_timestamp,
    to_document,
)
from batchd.catalog.validation import parse_import

SEED = json.loads((Path(__file__).parent / "fixtures" / "seed_import_flow.json").read_text())


def stored_sample() -> StoredFlow:
    body = {
        "flowName": "down", "dirId": "x",
        "flowJson": {
            "type": 0, "cycle": "H", "cron": "", "owners": "alice", "visitors": ";bob;",
            "parameters": '[{"key":"k","value":"v"}]',
            "tasks": [{"name": "a", "type": 3}, {"name": "b", "type": "COMMAND"}],
            "relations": [{"sourceTaskName": "a", "targetTaskName": "b", "rerun": True}],
            "flowLinks": [{"linkId": "0", "sourceFlowName": "up"}],
            "taskLinks": [{"linkId": "1", "sourceFlowName": "up", "sourceTaskName": "t"}],
            "linkRelations": [{"linkId": "0", "targetTaskName": "a"}, {"linkId": "1", "targetTaskName": "b"}],
        },
    }
    d = parse_import(body).definition
    d = dataclasses.replace(
        d,
        tasks=(dataclasses.replace(d.tasks[0], task_id=11, position=Position(x=1.5, y=2)),
               dataclasses.replace(d.tasks[1], task_id=12)),
        flow_links=(dataclasses.replace(d.flow_links[0], source_flow_id=5),),
        task_links=(dataclasses.replace(d.task_links[0], source_flow_id=5, source_task_id=9),),
        relations=(dataclasses.replace(d.relations[0], cycle_gap="H1"),),
    )
    return StoredFlow(flow_id=7, org_id="o", dir_id="x", definition=d, creator="alice",
                      create_time_ms=1563785795000, update_time_ms=1563785818250, update_user="alice")


def test_document_round_trip_keeps_server_only_fields() -> None:
    d = stored_sample().definition
    assert from_document(to_document(d)) == d


def test_document_round_trip_of_the_seed() -> None:
    d = parse_import(SEED).definition
    again = from_document(to_document(d))
    assert again == d and export_definition(again) == {"name": "outuser", **SEED["flowJson"]}


def test_java_timestamp() -> None:
    assert java_timestamp(1563785795000) == "2019-07-22 08:56:35.0"
    assert java_timestamp(1563785818250) == "2019-07-22 08:56:58.25"
    assert java_timestamp(1563785795000, ZoneInfo("Asia/Shanghai")) == "2019-07-22 16:56:35.0"


def test_flow_detail_and_graph() -> None:
    detail = flow_detail(stored_sample(), can_edit=False, can_read=True, user_locked=False)
    assert detail["flowId"] == 7 and detail["owner"] == "alice" and detail["visitor"] == ";bob;"
    assert detail["createTime"] == "2019-07-22 08:56:35.0" and detail["updateTime"] == "2019-07-22 08:56:58.25"
    assert (detail["hasEditPri"], detail["hasReadPri"], detail["active"]) == (False, True, 0)
    graph = json.loads(detail["graph"])
    assert graph["tasks"] == [
        {"taskName": "a", "taskId": "11", "nodeId": "t_11", "x": 1.5, "y": 2.0},
        {"taskName": "b", "taskId": "12", "nodeId": "t_12", "x": 0.0, "y": 0.0},
    ]
    assert graph["flows"] == [
        {"flowId": "5", "flowName": "up", "nodeId": "f_5", "isVirtual": False, "x": 0.0, "y": 0.0},
        {"flowId": "5", "flowName": "9(t)", "nodeId": "t_9", "isVirtual": True, "x": 0.0, "y": 0.0},
    ]
    assert graph["relations"] == [
        {"source": "t_11", "target": "t_12", "rerun": True, "cycleGap": "H1"},
        {"source": "f_5", "target": "t_11", "rerun": False, "cycleGap": "H0"},
        {"source": "t_9", "target": "t_12", "rerun": False, "cycleGap": "H0"},
    ]
    assert graph["parameters"] == '[{"key":"k","value":"v"}]' and graph["owners"] == "alice"


def test_round_trip_of_the_export_sample() -> None:
    """Export Flow's return sample (spec §3.6), imported and exported again, field for field."""
    run_mode = ('{"taskMode":1,"cpu":0.5,"memory":1,"maxParallel":0,"keyType":0,"datasourceId":0,'
                '"path":"","content":""}')
    exported = {
        "name": "nFlow", "cycle": "D", "cron": "0 0 0 * * ? *", "parameters": "[]", "alertMode": 3,
        "submitter": "db_x", "owners": "u", "visitors": ";v;", "type": 1, "syncType": 1, "desc": "ga",
        "startTime": "2019-07-24",
        "tasks": [{"name": "tass", "resource": "default", "type": "COMMAND", "syncType": 1, "cmd": "echo 'hello'",
                   "submitter": "", "filePackage": "", "cron": "", "priorityLevel": 0, "timeout": 300,
                   "retryLimit": 3, "retryInterval": 0, "successCode": "0", "asLink": False, "runMode": run_mode}],
        "flowLinks": [], "taskLinks": [], "relations": [], "linkRelations": [],
    }
    definition = parse_import({"flowName": "nFlow", "dirId": "x", "flowJson": exported}).definition
    assert export_definition(definition) == exported
    assert export_definition(from_document(to_document(definition))) == exported


def test_stored_documents_are_read_without_re_checking_crons() -> None:
    """A cron stored under an older, laxer parser must not make the flow unreadable."""
    doc = json.loads(to_document(stored_sample().definition))
    doc["cron"] = "not a cron"
    doc["tasks"][0]["cron"] = "nor this"
    again = from_document(json.dumps(doc))
    assert again.cron == "not a cron" and again.tasks[0].cron == "nor this"
