"""Workflow directories through HTTP, signed like an EnOS client, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from servicekit import EnosClient


def ok(envelope: dict[str, Any]) -> Any:
    assert (envelope["code"], envelope["msg"]) == (0, "OK"), envelope
    return envelope["data"]


def test_directory_tree(client: EnosClient, other_org_client: EnosClient) -> None:
    (root,) = ok(client.call("GET", "directories", "listWorkFlowDirs"))
    assert {k: root[k] for k in ("title", "type", "isDirectory", "children")} == {
        "title": "Workflow", "type": 1, "isDirectory": True, "children": []}
    assert len(root["key"]) == 32 and all(c in "0123456789abcdef" for c in root["key"])

    etl = ok(client.call("POST", "directories", "create", body={"dirName": "etl", "parentId": root["key"]}))["dirId"]
    nested = ok(client.call("POST", "directories", "create", body={"dirName": "daily", "parentId": etl}))["dirId"]
    ok(client.call("POST", "directories", "create", body={"dirName": "archive", "parentId": root["key"]}))
    flow_json = {"type": 0, "cycle": "D", "owners": "tester", "tasks": [{"name": "t", "type": "COMMAND"}]}
    flow_id = ok(client.call("POST", "flows", "import",
                             body={"flowName": "w", "dirId": nested, "flowJson": flow_json}))["flowId"]

    (tree,) = ok(client.call("GET", "directories", "listWorkFlowDirs"))
    assert [c["title"] for c in tree["children"]] == ["archive", "etl"]
    daily = tree["children"][1]["children"][0]
    assert (daily["title"], daily["key"]) == ("daily", nested)
    assert daily["children"] == [{"editable": True, "title": "w", "type": 1, "key": flow_id, "isDirectory": False}]

    # Another organisation sees only its own (empty) tree and cannot use ours.
    (theirs,) = ok(other_org_client.call("GET", "directories", "listWorkFlowDirs"))
    assert theirs["children"] == [] and theirs["key"] != root["key"]
    answer = other_org_client.call("POST", "directories", "create", body={"dirName": "x", "parentId": etl})
    assert (answer["code"], answer["msg"]) == (62102, "parentId not found")
    answer = other_org_client.call("POST", "flows", "import",
                                   body={"flowName": "w2", "dirId": etl, "flowJson": flow_json})
    assert answer["code"] == 62102 and "Directory does not exist" in answer["msg"]


def test_create_directory_errors(client: EnosClient) -> None:
    root = ok(client.call("GET", "directories", "listWorkFlowDirs"))[0]["key"]
    ok(client.call("POST", "directories", "create", body={"dirName": "dup", "parentId": root}))
    cases = [
        ({"parentId": root}, "param: dirName cannot be empty"),
        ({"dirName": "", "parentId": root}, "param: dirName cannot be empty"),
        ({"dirName": "x"}, "param: parentId cannot be empty"),
        ({"dirName": "x", "parentId": "0" * 32}, "parentId not found"),
        ({"dirName": "dup", "parentId": root}, "A directory of the same name already exists"),
    ]
    for body, message in cases:
        answer = client.call("POST", "directories", "create", body=body)
        assert (answer["code"], answer["msg"], answer["data"]) == (62102, message, None), body
    answer = client.call("POST", "directories", "create", body={"dirName": "x", "parentId": root},
                         query={"userId": "u-unknown"})
    assert answer["code"] == 62101
