"""Workflow operations through HTTP, signed like an EnOS client, on SQLite and PostgreSQL.

Tests are few and long on purpose: each starts a real batchd, so one test walks a whole story.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from servicekit import EnosClient, Service

from batchd.store.tables import flow_versions, flows, tasks

FIXTURES = Path(__file__).resolve().parent.parent / "catalog" / "fixtures"
JAVA_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+$")


def ok(envelope: dict[str, Any]) -> Any:
    assert (envelope["code"], envelope["msg"]) == (0, "OK"), envelope
    return envelope["data"]


def failed(envelope: dict[str, Any], code: int) -> str:
    assert envelope["code"] == code and envelope["data"] is None, envelope
    return envelope["msg"]


def root_dir(client: EnosClient) -> str:
    return ok(client.call("GET", "directories", "listWorkFlowDirs"))[0]["key"]


def flow_json(**fields: Any) -> dict[str, Any]:
    base = {
        "type": 1, "cycle": "D", "cron": "0 0 2 * * ? *", "owners": ";tester;", "visitors": ";bob;",
        "parameters": '[{"key":"day","value":"${cal_dt}"}]', "alertMode": 0, "syncType": 1,
        "submitter": "acct", "desc": "d", "startTime": "2024-01-01",
        "tasks": [{"name": "extract", "type": "COMMAND", "cmd": "echo e", "timeout": 60, "asLink": True},
                  {"name": "load", "type": 3, "cmd": "echo l", "retryLimit": 2}],
        "relations": [{"sourceTaskName": "extract", "targetTaskName": "load", "rerun": True}],
        "flowLinks": [], "taskLinks": [], "linkRelations": [],
    }
    return {**base, **fields}


def import_flow(client: EnosClient, name: str, **fields: Any) -> int:
    body = {"flowName": name, "dirId": root_dir(client), "desc": "d", "flowJson": flow_json(**fields)}
    return ok(client.call("POST", "flows", "import", body=body))["flowId"]


def count_rows(service: Service) -> tuple[int, int, int]:
    async def work(conn: Any) -> tuple[int, int, int]:
        return tuple([  # type: ignore[return-value]
            (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()
            for table in (flows, tasks, flow_versions)
        ])

    return service.in_transaction(work)


def test_seed_sample_malformed_then_escaped(client: EnosClient) -> None:
    """The Import Flow page's sample has `"cmd": "echo "hello""`: refused with the position; with
    the quotes escaped it imports, and Export gives back exactly what was imported."""
    directory = root_dir(client)
    malformed = (FIXTURES / "seed_import_flow_malformed.json").read_text()
    answer = client.call("POST", "flows", "import", raw_body=malformed.encode())
    assert "line 19, column 31" in failed(answer, 62102)

    sample = json.loads((FIXTURES / "seed_import_flow.json").read_text())
    sample["dirId"] = directory
    flow_id = ok(client.call("POST", "flows", "import", body=sample))["flowId"]
    assert isinstance(flow_id, int)
    exported = ok(client.call("GET", "flows", "export", query={"flowId": flow_id}))
    assert exported == {"name": "outuser", **sample["flowJson"]}
    assert exported["tasks"][0]["cmd"] == 'echo "hello"'

    sample["flowJson"] = exported  # a second import of the export is the same flow again
    sample["flowName"] = "outuser2"
    again = ok(client.call("POST", "flows", "import", body=sample))["flowId"]
    assert ok(client.call("GET", "flows", "export", query={"flowId": again})) == {**exported, "name": "outuser2"}


def test_flow_lifecycle(service: Service, client: EnosClient) -> None:
    body = {"flowId": "77", "flowName": "etl", "dirId": root_dir(client),
            "flowJson": flow_json(type="1", alertMode="3")}
    assert ok(client.call("POST", "flows", "import", body=body)) == {"flowId": 77}

    detail = ok(client.call("GET", "flows", "get", query={"flowId": "77"}))
    assert (detail["flowId"], detail["flowName"], detail["active"], detail["creator"]) == (77, "etl", 0, "tester")
    assert (detail["owner"], detail["visitor"], detail["alertMode"], detail["type"]) == (";tester;", ";bob;", 3, 1)
    assert detail["parameters"] == '[{"key":"day","value":"${cal_dt}"}]' and detail["doAs"] == "acct"
    assert JAVA_TIMESTAMP.match(detail["createTime"]) and JAVA_TIMESTAMP.match(detail["updateTime"])
    assert (detail["hasEditPri"], detail["hasReadPri"], detail["version"]) == (True, True, 1)
    graph = json.loads(detail["graph"])
    ids = {t["taskName"]: t["taskId"] for t in graph["tasks"]}
    assert all(isinstance(v, str) for v in ids.values())
    assert graph["relations"] == [{"source": f"t_{ids['extract']}", "target": f"t_{ids['load']}",
                                   "rerun": True, "cycleGap": "D0"}]
    edit = ok(client.call("GET", "flows", "loadForEdit", query={"flowId": 77}))
    assert edit["graph"] == detail["graph"] and edit["queue"] == ""

    # Save: rename `load`, add `report` after it, move the canvas; task configs survive.
    save = {"id": "77", "name": "etl", "type": 1, "freq": "0 0 3 * * ? *", "cycle": "D", "alertMode": 1,
            "doAs": "acct", "owners": ";tester;", "visitors": ";bob;", "active": 0, "startTime": "2024-01-01",
            "tasks": [{"taskName": "extract", "taskId": ids["extract"], "nodeId": f"t_{ids['extract']}",
                       "x": 10, "y": 5},
                      {"taskName": "load2", "taskId": ids["load"], "nodeId": f"t_{ids['load']}"},
                      {"taskName": "report", "nodeId": "new-1"}],
            "relations": [{"source": f"t_{ids['extract']}", "target": f"t_{ids['load']}", "rerun": True},
                          {"source": f"t_{ids['load']}", "target": "new-1", "rerun": False, "cycleGap": "D0"}],
            "flows": []}
    assert ok(client.call("POST", "flows", "save", body=save)) == {"flowId": 77}
    exported = ok(client.call("GET", "flows", "export", query={"flowId": 77}))
    assert [(t["name"], t["cmd"], t["retryLimit"]) for t in exported["tasks"]] == [
        ("extract", "echo e", 0), ("load2", "echo l", 2), ("report", "", 0)]
    assert exported["cron"] == "0 0 3 * * ? *" and exported["alertMode"] == 1
    assert [(r["sourceTaskName"], r["targetTaskName"]) for r in exported["relations"]] == [
        ("extract", "load2"), ("load2", "report")]

    # The previous version stays readable, and can be restored as a new version.
    old = ok(client.call("GET", "flows", "export", query={"flowId": 77, "version": 1}))
    assert [t["name"] for t in old["tasks"]] == ["extract", "load"]
    assert ok(client.call("GET", "flows", "get", query={"flowId": 77}))["version"] == 2
    ok(client.call("POST", "flows", "save", body={"id": 77, "restoreVersion": "1"}))
    assert ok(client.call("GET", "flows", "export", query={"flowId": 77})) == old
    assert count_rows(service) == (1, 2, 3)

    # Enable / disable.
    # The graph shows the state too; the same stored version read again must not show a stale one.
    assert ok(client.call("POST", "flows", "enable", body={"flowId": "77"})) == ""
    enabled = ok(client.call("GET", "flows", "get", query={"flowId": 77}))
    assert enabled["active"] == 1 and json.loads(enabled["graph"])["active"] == 1
    assert ok(client.call("POST", "flows", "disable", body={"flowId": 77})) == ""
    disabled = ok(client.call("GET", "flows", "get", query={"flowId": 77}))
    assert disabled["active"] == 0 and json.loads(disabled["graph"])["active"] == 0

    # Delete is a GET; afterwards the flow is gone everywhere.
    assert ok(client.call("GET", "flows", "delete", query={"flowId": 77})) == ""
    gone = client.call("GET", "flows", "get", query={"flowId": 77})
    assert failed(gone, 62102) == "flowId: workflow 77 does not exist"
    assert count_rows(service) == (0, 0, 0)


def test_invalid_requests(service: Service, client: EnosClient) -> None:
    flow_id = import_flow(client, "base")
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("GET", "get", {"query": {}}, "flowId: is required"),
        ("GET", "get", {"query": {"flowId": "abc"}}, 'flowId: "abc" is not an integer'),
        ("GET", "export", {"query": {"flowId": 999}}, "flowId: workflow 999 does not exist"),
        ("GET", "get", {"query": {"flowId": flow_id, "version": 5}},
         f"version: workflow {flow_id} has no version 5 (current: 1)"),
        ("POST", "import", {"body": {"flowName": "x", "dirId": "nope", "flowJson": flow_json()}},
         'dirId: Directory does not exist: "nope"'),
        ("POST", "import", {"body": {"dirId": "nope", "flowJson": flow_json()}}, "flowName: is required"),
        ("POST", "import", {"body": None}, "body: null is not a JSON object"),
        ("POST", "save", {"body": {"id": flow_id, "freq": "0 0 24 * * ? *"}},
         'freq: "0 0 24 * * ? *": hour: 24 is out of range 0-23'),
        ("POST", "enable", {"body": {"flowId": "x"}}, 'flowId: "x" is not an integer'),
    ]
    for method, action, options, message in cases:
        assert failed(client.call(method, "flows", action, **options), 62102) == message, (action, options)
    root = root_dir(client)
    cyclic = flow_json(relations=[{"sourceTaskName": "extract", "targetTaskName": "load"},
                                  {"sourceTaskName": "load", "targetTaskName": "extract"}])
    answer = client.call("POST", "flows", "import", body={"flowName": "c", "dirId": root, "flowJson": cyclic})
    assert failed(answer, 62102) == "flowJson.relations: tasks are in a cycle: extract -> load -> extract"
    bad_timeout = flow_json()
    bad_timeout["tasks"][1]["timeout"] = -5
    answer = client.call("POST", "flows", "import", body={"flowName": "t", "dirId": root, "flowJson": bad_timeout})
    assert failed(answer, 62102) == "flowJson.tasks[1].timeout: -5 is out of range 0-604800"
    # Nothing of the refused calls is left: one flow, its two tasks, one version; the next id is 2.
    assert count_rows(service) == (1, 2, 1)
    assert import_flow(client, "next") == flow_id + 1


def test_references_and_delete(client: EnosClient) -> None:
    up = import_flow(client, "up")
    down = import_flow(
        client, "down",
        flowLinks=[{"linkId": "0", "sourceFlowName": "up"}],
        taskLinks=[{"linkId": "1", "sourceFlowName": "up", "sourceTaskName": "extract"}],
        linkRelations=[{"linkId": "0", "targetTaskName": "extract", "rerun": False},
                       {"linkId": "1", "targetTaskName": "load", "rerun": True}],
    )
    exported = ok(client.call("GET", "flows", "export", query={"flowId": down}))
    assert exported["flowLinks"] == [{"linkId": "0", "sourceFlowName": "up"}]
    assert exported["taskLinks"] == [{"linkId": "1", "sourceFlowName": "up", "sourceTaskName": "extract"}]
    graph = json.loads(ok(client.call("GET", "flows", "get", query={"flowId": down}))["graph"])
    assert [(f["flowId"], f["nodeId"], f["isVirtual"]) for f in graph["flows"]][0] == (str(up), f"f_{up}", False)
    message = failed(client.call("GET", "flows", "delete", query={"flowId": up}), 62104)
    assert message.startswith("This workflow is relied on by other workflows and cannot be deleted.")
    answer = client.call("POST", "flows", "import", body={
        "flowName": "x", "dirId": root_dir(client),
        "flowJson": flow_json(flowLinks=[{"linkId": "0", "sourceFlowName": "ghost"}])})
    assert failed(answer, 62102) == (
        'flowJson.flowLinks[0].sourceFlowName: no workflow named "ghost" in this organisation')
    # Dropping the references with Save frees the upstream.
    ok(client.call("POST", "flows", "save", body={"id": down, "flows": [], "relations": [
        {"source": graph["tasks"][0]["nodeId"], "target": graph["tasks"][1]["nodeId"]}]}))
    assert ok(client.call("GET", "flows", "delete", query={"flowId": up})) == ""


def test_permissions(client: EnosClient, make_user: Callable[..., EnosClient],
                     other_org_client: EnosClient) -> None:
    flow_id = import_flow(client, "guarded")
    visitor = make_user("u-bob", name="bob")
    stranger = make_user("u-sam", name="sam")
    for reader, editable in ((client, True), (visitor, False), (stranger, False)):
        detail = ok(reader.call("GET", "flows", "get", query={"flowId": flow_id}))
        assert (detail["hasEditPri"], detail["hasReadPri"]) == (editable, True)
        ok(reader.call("GET", "flows", "export", query={"flowId": flow_id}))
        ok(reader.call("GET", "flows", "loadForEdit", query={"flowId": flow_id}))
        assert ok(reader.call("POST", "flows", "search", body={"expression": "guard"})) == [
            {"flowId": str(flow_id), "flowName": "guarded"}]
    writes = [("POST", "save", {"body": {"id": flow_id, "desc": "mine now"}}),
              ("POST", "enable", {"body": {"flowId": flow_id}}),
              ("POST", "disable", {"body": {"flowId": flow_id}}),
              ("GET", "delete", {"query": {"flowId": flow_id}})]
    for method, action, options in writes:
        for user in (visitor, stranger):
            assert failed(user.call(method, "flows", action, **options), 62103).startswith("User has no privilege")
    for method, action, options in [*writes, ("GET", "get", {"query": {"flowId": flow_id}}),
                                    ("GET", "export", {"query": {"flowId": flow_id}})]:
        failed(other_org_client.call(method, "flows", action, **options), 62102)
    assert ok(other_org_client.call("POST", "flows", "search", body={})) == []
    assert ok(other_org_client.call("GET", "flows", "getMyFlow")) == []

    assert ok(client.call("GET", "flows", "getMyFlow")) == [
        {"flowId": str(flow_id), "editable": True, "flowName": "guarded", "cycle": "D"}]
    assert ok(visitor.call("GET", "flows", "getMyFlow", query={"expression": "GUA"})) == [
        {"flowId": str(flow_id), "editable": False, "flowName": "guarded", "cycle": "D"}]
    assert ok(visitor.call("GET", "flows", "getMyFlow", query={"expression": "zzz"})) == []
    assert ok(stranger.call("GET", "flows", "getMyFlow")) == []
    # Making sam an owner lets him change the flow.
    ok(client.call("POST", "flows", "save", body={"id": flow_id, "owners": "tester;sam"}))
    assert ok(stranger.call("POST", "flows", "disable", body={"flowId": flow_id})) == ""
    failed(client.call("GET", "flows", "get", query={"flowId": flow_id, "userId": "u-nobody"}), 62101)
    # A locked owner may still read, but not save, enable or disable (62105).
    ok(client.call("POST", "flows", "save", body={"id": flow_id, "owners": "tester;sam;lou"}))
    locked = make_user("u-lou", name="lou", locked=True)
    assert ok(locked.call("GET", "flows", "get", query={"flowId": flow_id}))["isUserLocked"] is True
    for method, action, options in writes[:3]:
        assert failed(locked.call(method, "flows", action, **options), 62105) == "Your account has been locked"


def test_search_pagination_and_sorting(client: EnosClient) -> None:
    for name in ("alpha", "beta", "alphabet", "gamma"):
        import_flow(client, name)
    search = lambda body: [f["flowName"] for f in ok(client.call("POST", "flows", "search", body=body))]  # noqa: E731
    assert search({"expression": "alpha"}) == ["alpha", "alphabet"]
    assert search({"expression": "3"}) == ["alphabet"]
    page = {"pageNo": 1, "pageSize": 3, "sorters": [{"field": "createTime", "order": "DESC"}]}
    assert search({"pagination": page}) == ["gamma", "alphabet", "beta"]
    assert search({"pagination": {**page, "pageNo": 2}}) == ["alpha"]
    assert search({"pagination": {"pageNo": 0, "pageSize": "2", "sorters": [{"field": "update_time"}]}}) == [
        "alpha", "beta"]
    by_start = {"pageNo": 1, "pageSize": 2, "sorters": [{"field": "start_time", "order": "asc"}]}
    assert search({"pagination": by_start}) == ["alpha", "beta"]
    answer = client.call("POST", "flows", "search", body={"pagination": {"pageNo": 1, "pageSize": 0}})
    assert failed(answer, 62102) == "pagination.pageSize: 0 is below 1"
    answer = client.call("POST", "flows", "search",
                         body={"pagination": {"pageNo": 1, "pageSize": 5, "sorters": [{"field": "flowName"}]}})
    assert "The sorters field parameter is invalid" in failed(answer, 62102)
