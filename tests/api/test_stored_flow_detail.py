"""Get Flow answered from the answer stored with the flow (`catalog.rendering`), through HTTP.

What a user checks: every write that changes what Get Flow shows (Import, Save, Enable, Disable)
shows up in the next Get, for every kind of caller, exactly as the full read of the document
shows it; a flow whose stored answer is missing (a row written before migration 0009 filled
them) reads the same; flows with references still show their upstreams' names of today.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from servicekit import EnosClient, Service
from test_flows_api import failed, import_flow, ok

from batchd.api.envelope import JsonText, success
from batchd.store.tables import flows

#: The stored answer marks its holes with a raw \x1f; a flow's own text holding one must survive.
UNUSUAL_TEXT = 'renamed a task \x1f "quoted" ü \\ end'


def stored_text(service: Service, flow_id: int) -> str | None:
    async def work(conn: Any) -> str | None:
        return (await conn.execute(sa.select(flows.c.detail).where(flows.c.flow_id == flow_id))).scalar_one()

    return service.in_transaction(work)


def set_stored_text(service: Service, flow_id: int, text: str | None) -> None:
    async def work(conn: Any) -> None:
        await conn.execute(sa.update(flows).where(flows.c.flow_id == flow_id).values(detail=text))

    service.in_transaction(work)


def detail_both_ways(service: Service, reader: EnosClient, flow_id: int, action: str = "get",
                     **query: Any) -> dict[str, Any]:
    """The FlowDetail `reader` gets from the stored answer, checked equal to what the same call
    gets when the flow has none (the full read of the document); the stored answer is put back."""
    text = stored_text(service, flow_id)
    assert text is not None, "the last write stored no answer"
    served = ok(reader.call("GET", "flows", action, query={"flowId": flow_id, **query}))
    set_stored_text(service, flow_id, None)
    try:
        full = ok(reader.call("GET", "flows", action, query={"flowId": flow_id, **query}))
    finally:
        set_stored_text(service, flow_id, text)
    assert served == full
    return served


def test_every_write_shows_in_the_next_get(service: Service, client: EnosClient,
                                           make_user: Callable[..., EnosClient]) -> None:
    alice = make_user("u-alice", name="alice")
    member = make_user("u-member", name="member")
    locked = make_user("u-lou", name="lou", locked=True)
    flow_id = import_flow(client, "stored", owners=";tester;alice;")

    imported = detail_both_ways(service, client, flow_id)
    assert (imported["flowName"], imported["active"], imported["updateUser"], imported["version"]) == (
        "stored", 0, "tester", 1)
    graph = json.loads(imported["graph"])
    assert [t["taskName"] for t in graph["tasks"]] == ["extract", "load"] and graph["active"] == 0
    for reader, editable, is_locked in ((client, True, False), (alice, True, False), (member, False, False),
                                        (locked, False, True)):
        seen = detail_both_ways(service, reader, flow_id)
        assert (seen["hasEditPri"], seen["hasReadPri"], seen["isUserLocked"]) == (editable, True, is_locked)
        assert {k: v for k, v in seen.items() if k not in ("hasEditPri", "isUserLocked")} == {
            k: v for k, v in imported.items() if k not in ("hasEditPri", "isUserLocked")}
    assert detail_both_ways(service, member, flow_id, "loadForEdit") == {**imported, "hasEditPri": False}

    ok(alice.call("POST", "flows", "enable", body={"flowId": flow_id}))
    enabled = detail_both_ways(service, client, flow_id)
    assert (enabled["active"], enabled["updateUser"], json.loads(enabled["graph"])["active"]) == (1, "alice", 1)

    ids = {t["taskName"]: t["taskId"] for t in graph["tasks"]}
    ok(client.call("POST", "flows", "save", body={
        "id": flow_id, "desc": UNUSUAL_TEXT,
        "tasks": [{"taskName": "extract", "taskId": ids["extract"], "nodeId": f"t_{ids['extract']}"},
                  {"taskName": "load2", "taskId": ids["load"], "nodeId": f"t_{ids['load']}"}],
        "relations": [{"source": f"t_{ids['extract']}", "target": f"t_{ids['load']}"}]}))
    saved = detail_both_ways(service, client, flow_id)
    assert (saved["desc"], saved["version"], saved["updateUser"], saved["active"]) == (UNUSUAL_TEXT, 2, "tester", 1)
    assert [t["taskName"] for t in json.loads(saved["graph"])["tasks"]] == ["extract", "load2"]
    # An older version is read from its document, as before.
    first = ok(client.call("GET", "flows", "get", query={"flowId": flow_id, "version": 1}))
    assert (first["version"], [t["taskName"] for t in json.loads(first["graph"])["tasks"]]) == (1, ["extract", "load"])
    assert ok(client.call("GET", "flows", "get", query={"flowId": flow_id, "version": 2})) == saved

    ok(client.call("POST", "flows", "disable", body={"flowId": flow_id}))
    disabled = detail_both_ways(service, client, flow_id)
    assert (disabled["active"], json.loads(disabled["graph"])["active"]) == (0, 0)


def test_refusals_read_as_before(service: Service, client: EnosClient, other_org_client: EnosClient) -> None:
    flow_id = import_flow(client, "kept")
    assert failed(other_org_client.call("GET", "flows", "get", query={"flowId": flow_id}), 62102) == (
        f"flowId: workflow {flow_id} does not exist")
    failed(client.call("GET", "flows", "get", query={"flowId": flow_id, "userId": "u-nobody"}), 62101)
    failed(client.call("GET", "flows", "get", query={"flowId": flow_id, "orgId": "o-other"}), 62101)
    assert failed(client.call("GET", "flows", "get", query={"flowId": "x"}), 62102).startswith("flowId:")
    assert failed(client.call("GET", "flows", "get", query={"flowId": flow_id, "version": 9}), 62102) == (
        f"version: workflow {flow_id} has no version 9 (current: 1)")
    assert failed(client.call("GET", "flows", "get", query={"flowId": flow_id + 1000}), 62102) == (
        f"flowId: workflow {flow_id + 1000} does not exist")


def test_flows_with_references_show_todays_upstream_names(service: Service, client: EnosClient) -> None:
    up = import_flow(client, "up")
    down = import_flow(client, "down", flowLinks=[{"linkId": "0", "sourceFlowName": "up"}],
                       linkRelations=[{"linkId": "0", "targetTaskName": "extract", "rerun": False}])
    assert stored_text(service, down) is None  # read the full way, every time
    ok(client.call("POST", "flows", "save", body={"id": up, "name": "upstream"}))
    graph = json.loads(ok(client.call("GET", "flows", "get", query={"flowId": down}))["graph"])
    assert [f["flowName"] for f in graph["flows"]] == ["upstream"]


def test_an_answer_sent_as_text_is_the_envelope_json_would_make() -> None:
    data = {"flowName": UNUSUAL_TEXT, "graph": json.dumps({"name": UNUSUAL_TEXT}), "n": 1, "ok": True}
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    as_text, as_data = success(JsonText(text), "r-1"), success(data, "r-1")
    assert as_text.body == as_data.body
    assert as_text.headers["content-type"] == as_data.headers["content-type"] == "application/json"
