"""Black-box: a periodic workflow enabled through the API on a running batchd (SQLite and
PostgreSQL) gets instances from the scheduler that run through the engine to SUCCESS, and Get /
List Flow Instances show them as scheduled runs: an id with the fire's second, that second as
triggerTime, calDt the day before, and task instances with ifPre 0 (not a manual trigger).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from servicekit import EnosClient, Service


def ok(envelope: dict[str, Any]) -> Any:
    assert (envelope["code"], envelope["msg"]) == (0, "OK"), envelope
    return envelope["data"]


def import_periodic(client: EnosClient, cron: str) -> tuple[int, int]:
    root = ok(client.call("GET", "directories", "listWorkFlowDirs"))[0]["key"]
    flow_json = {
        "type": 1, "cycle": "mi", "cron": cron, "owners": ";tester;", "parameters": "[]",
        "startTime": dt.date.today().isoformat(),
        "tasks": [{"name": "hello", "type": "COMMAND", "cmd": "echo scheduled ${unix_timestamp}"}],
    }
    flow_id = ok(client.call("POST", "flows", "import", body={"flowName": "every-2s", "dirId": root,
                                                                 "flowJson": flow_json}))["flowId"]
    graph = json.loads(ok(client.call("GET", "flows", "get", query={"flowId": flow_id}))["graph"])
    return flow_id, int(graph["tasks"][0]["taskId"])


def listed(client: EnosClient, flow_id: int) -> list[dict[str, Any]]:
    body = {"flowId": flow_id, "pagination": {"pageNo": 1, "pageSize": 50,
                                                "sorters": [{"field": "triggerTime", "order": "ASC"}]}}
    return ok(client.call("POST", "flowInstances", "search", body=body))["flowInsts"]


def test_a_scheduled_instance_runs_to_success_and_reads_as_scheduled(service: Service) -> None:
    client = service.client()
    flow_id, task_id = import_periodic(client, "*/2 * * * * ? *")
    assert listed(client, flow_id) == []  # imported disabled: nothing fires
    enabled_at = time.time()
    ok(client.call("POST", "flows", "enable", body={"flowId": flow_id}))
    deadline = time.monotonic() + 30
    while True:
        done = [i for i in listed(client, flow_id) if i["statusDesc"] == "SUCCESS"]
        if done:
            break
        assert time.monotonic() < deadline, listed(client, flow_id)
        time.sleep(0.2)
    first = done[0]
    zone = service.settings.zone
    suffix = first["instanceId"].split("-", 1)[1]
    fired = dt.datetime.strptime(suffix, "%Y%m%d%H%M%S").replace(tzinfo=zone)
    assert first["instanceId"] == f"{flow_id}-{suffix}" and fired.second % 2 == 0
    assert enabled_at - 1 < fired.timestamp() < enabled_at + 30  # after the enable, not back-filled
    found = ok(client.call("GET", "flowInstances", "get", query={"flowInstId": first["instanceId"]}))
    assert found["statusDesc"] == "SUCCESS" and found["triggerTime"] == f"{fired:%Y-%m-%d %H:%M:%S}"
    assert found["calDt"] == (fired.date() - dt.timedelta(days=1)).isoformat() == first["calDt"]
    assert found["freq"] == "*/2 * * * * ? *"
    task = ok(client.call("GET", "taskInstances", "get", query={"taskInstId": f"{task_id}-{suffix}"}))
    assert task["stsDesc"] == "SUCCESS" and task["ifPre"] == 0 and task["triggerTime"] == found["triggerTime"]
    log = ok(client.call("GET", "taskInstances", "getLog", query={"taskInstId": f"{task_id}-{suffix}"}))
    assert f"scheduled {int(fired.timestamp())}" in json.dumps(log)
    # Disable stops it at once (the scheduler hears of the write): nothing new after a moment.
    ok(client.call("POST", "flows", "disable", body={"flowId": flow_id}))
    time.sleep(0.5)
    count = len(listed(client, flow_id))
    time.sleep(3)
    assert len(listed(client, flow_id)) == count
