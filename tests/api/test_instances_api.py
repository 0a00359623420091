"""Reading instances through HTTP: List Flow Instances (filters, sorting, pages), Get Task Instance,
Get Task Instance Log (while running, maxLength, errors), on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

from servicekit import EnosClient
from test_flows_api import failed, ok
from test_runs_api import MINUTE_MS, import_flow, instance, past, task, task_log, trigger, wait_for


def search(client: EnosClient, **body: Any) -> dict[str, Any]:
    return ok(client.call("POST", "flowInstances", "search", body=body))


def test_list_flow_instances_filters_sorts_and_pages(client: EnosClient, other_org_client: EnosClient) -> None:
    first, _ = import_flow(client, "alpha", [task("t", "echo a")])
    second, _ = import_flow(client, "beta", [task("t", "exit 1")])
    base = past(20)
    alpha = [trigger(client, first, base + i * MINUTE_MS) for i in range(3)]
    beta = trigger(client, second, base + 5 * MINUTE_MS)
    for instance_id in alpha:
        wait_for(client, instance_id, "SUCCESS")
    wait_for(client, beta, "FAIL")

    everything = search(client)
    assert everything["count"] == 4 and len(everything["flowInsts"]) == 4
    item = next(i for i in everything["flowInsts"] if i["instanceId"] == beta)
    assert (item["status"], item["statusDesc"], item["flowName"], item["isCancelled"]) == (-1, "FAIL", "beta", False)
    assert "graph" not in item and item["hasEditPri"] is True and item["calDt"]

    assert search(client, flowId=first)["count"] == 3
    assert [i["instanceId"] for i in search(client, status="-1")["flowInsts"]] == [beta]
    assert search(client, status="1,-1")["count"] == 4
    assert search(client, expression="BET")["count"] == 1  # flow name, any case
    assert search(client, expression=alpha[1])["count"] == 1  # instance id
    assert search(client, type=0, owner="", expression="")["count"] == 4
    assert search(client, type=1)["count"] == 0
    assert search(client, owner="tester")["count"] == 4 and search(client, owner="nobody")["count"] == 0
    window = search(client, fromTriggerTime=str(base + MINUTE_MS), toTriggerTime=base + 2 * MINUTE_MS)
    assert [i["instanceId"] for i in window["flowInsts"]] == [alpha[2], alpha[1]]  # newest trigger first by default

    for field in ("triggerTime", "trigger_time"):
        page = search(client, pagination={"pageNo": 1, "pageSize": 2, "sorters": [{"field": field, "order": "ASC"}]})
        assert page["count"] == 4 and [i["instanceId"] for i in page["flowInsts"]] == alpha[:2]
    page2 = search(client, pagination={"pageNo": 2, "pageSize": 2, "sorters": [{"field": "triggerTime"}]})
    assert [i["instanceId"] for i in page2["flowInsts"]] == [alpha[2], beta]
    page0 = search(client, pagination={"pageNo": 0, "pageSize": 1, "sorters": [{"field": "trigger_time",
                                                                                   "order": "desc"}]})
    assert [i["instanceId"] for i in page0["flowInsts"]] == [beta]
    # One workflow's runs start one after another; a page is cut from the whole sorted list.
    by_start = [{"field": "startTime", "order": "DESC"}]
    assert [i["instanceId"] for i in search(client, flowId=first, pagination={
        "pageNo": 1, "pageSize": 2, "sorters": by_start})["flowInsts"]] == [alpha[2], alpha[1]]
    assert [i["instanceId"] for i in search(client, flowId=first, pagination={
        "pageNo": 2, "pageSize": 2, "sorters": by_start})["flowInsts"]] == [alpha[0]]
    for field in ("endTime", "end_time", "startTime", "createTime", "update_time"):
        assert search(client, pagination={"pageNo": 1, "pageSize": 10, "sorters": [{"field": field}]})["count"] == 4
    bad = client.call("POST", "flowInstances", "search",
                      body={"pagination": {"pageNo": 1, "pageSize": 10, "sorters": [{"field": "flowName"}]}})
    assert "The sorters field parameter is invalid" in failed(bad, 62102)
    assert search(other_org_client) == {"flowInsts": [], "count": 0}
    assert search(other_org_client, flowId=first) == {"flowInsts": [], "count": 0}  # not even by its id


def test_task_instance_and_its_log_while_running(client: EnosClient) -> None:
    flow_id, ids = import_flow(client, "logs", [task("talk", "echo first; sleep 1.5; echo second", timeout=60,
                                                     retryLimit=2, retryInterval=3)])
    instance_id = trigger(client, flow_id, past(1))
    task_instance_id = f"{ids['talk']}-{instance_id.split('-', 1)[1]}"
    deadline = time.monotonic() + 10
    while True:
        envelope = task_log(client, ids["talk"], instance_id)
        if envelope["code"] == 0 and "first\n" in envelope["data"]["log"]:
            break
        assert time.monotonic() < deadline, envelope
        time.sleep(0.05)
    assert not envelope["data"]["log"].endswith("second\n")  # readable while the task runs
    running = ok(client.call("GET", "taskInstances", "get", query={"taskInstId": task_instance_id}))
    assert (running["stsDesc"], running["endTime"]) == ("RUNNING", None)
    wait_for(client, instance_id, "SUCCESS")
    got = ok(client.call("GET", "taskInstances", "get", query={"taskInstId": task_instance_id}))
    assert got["instanceId"] == task_instance_id and got["taskId"] == ids["talk"] and got["taskName"] == "talk"
    assert (got["status"], got["stsDesc"], got["runNum"], got["recallNum"]) == (1, "SUCCESS", 1, 0)
    assert (got["timeout"], got["recallLimit"], got["recallInterval"], got["cycle"]) == (60, 2, 3, "D")
    assert got["cmd"] == "echo first; sleep 1.5; echo second" and got["ifPre"] == 1 and got["isTimeout"] is False
    assert got["startTime"] and got["endTime"] and got["triggerTime"] == instance(client, instance_id)["triggerTime"]
    log = ok(task_log(client, ids["talk"], instance_id))["log"]
    assert log.startswith("=" * 73 + "\nrun  num:\t1\n") and log.endswith("first\nsecond\n")
    assert ok(task_log(client, ids["talk"], instance_id, maxLength=""))["log"] == log  # empty = absent
    assert ok(task_log(client, ids["talk"], instance_id, maxLength=0))["log"] == ""

    assert failed(client.call("GET", "taskInstances", "getLog", query={"taskInstId": "1-nothing"}), 62102) \
        .startswith("Instance not found")
    assert failed(client.call("GET", "taskInstances", "get", query={"taskInstId": "1-nothing"}), 62102) \
        .startswith("Instance not found")
    waiting = trigger(client, flow_id, int(time.time() * 1000) + 5 * MINUTE_MS)  # waits: no attempt yet
    suffix = waiting.split("-", 1)[1]
    assert failed(client.call("GET", "taskInstances", "getLog", query={"taskInstId": f"{ids['talk']}-{suffix}"}),
                  62109) == "No log found"


def test_list_flow_instances_checks_the_caller_and_keeps_the_signature_in_its_one_trip(
        client: EnosClient, other_org_client: EnosClient) -> None:
    """List Flow Instances answers in one read on the database's worker thread, the caller
    check included: the same refusals as every other call, and a signed call is still kept, so
    the same signed request a second time is refused as replayed."""
    flow_id, _ = import_flow(client, "watched", [task("t", "true")])
    assert failed(client.as_user("nobody").call("POST", "flowInstances", "search", body={}), 62101)
    assert failed(client.call("POST", "flowInstances", "search", query={"userId": other_org_client.user_id},
                              body={}), 62101)
    missing = client.call("POST", "flowInstances", "search", query={"userId": None}, body={})
    assert missing["code"] == 62102 and "userId" in missing["msg"]
    assert failed(client.call("POST", "flowInstances", "search", body={"flowId": "x1"}), 62102)

    raw = b'{"flowId": %d}' % flow_id
    query = {"action": "search", "orgId": client.org_id, "userId": client.user_id}
    timestamp = client.timestamp()
    headers = {"apim-timestamp": str(timestamp), "apim-signature": client.signature(client.token, query, raw, timestamp)}
    first = client.request("POST", "flowInstances", "search", raw_body=raw, headers=headers)
    second = client.request("POST", "flowInstances", "search", raw_body=raw, headers=headers)
    assert first.json()["code"] == 0 and first.json()["data"]["count"] == 0
    assert second.status_code == 401 and "replayed" in second.json()["msg"]
