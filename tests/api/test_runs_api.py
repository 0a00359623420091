"""Running workflows through HTTP (Trigger, Trigger From Task, Update And Trigger, Cancel), black-box,
signed like an EnOS client, on SQLite and PostgreSQL. Tasks are real bash commands that append
`name start end` lines to a marker file, so order and overlap are checked from what really ran.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

from servicekit import EnosClient, Service
from test_flows_api import failed, ok

MINUTE_MS = 60_000


def task(name: str, cmd: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "type": "COMMAND", "cmd": cmd, **fields}


def marked(name: str, marker: Path, body: str = "") -> str:
    """A command that runs `body` between two timestamps appended to `marker`."""
    return f'S=$(date +%s.%N); {body}\nrc=$?; echo "{name} $S $(date +%s.%N)" >> {marker}; exit $rc'


def import_flow(client: EnosClient, name: str, tasks: list[dict[str, Any]],
                relations: list[tuple[str, str, bool]] = (), **fields: Any) -> tuple[int, dict[str, int]]:
    """Import a manual flow; (flow id, task ids by name)."""
    root = ok(client.call("GET", "directories", "listWorkFlowDirs"))[0]["key"]
    flow_json = {
        "type": 0, "cycle": "D", "cron": "", "owners": ";tester;", "visitors": ";bob;", "parameters": "[]",
        "alertMode": 0, "syncType": 1, "submitter": "acct", "desc": "", "startTime": "", "tasks": tasks,
        "relations": [{"sourceTaskName": s, "targetTaskName": t, "rerun": r} for s, t, r in relations],
        "flowLinks": [], "taskLinks": [], "linkRelations": [], **fields,
    }
    flow_id = ok(client.call("POST", "flows", "import", body={"flowName": name, "dirId": root, "flowJson": flow_json}))
    flow_id = flow_id["flowId"]
    graph = json.loads(ok(client.call("GET", "flows", "get", query={"flowId": flow_id}))["graph"])
    return flow_id, {t["taskName"]: int(t["taskId"]) for t in graph["tasks"]}


def past(minutes: int) -> int:
    """A trigger time `minutes` whole minutes ago (distinct minutes never collide)."""
    now = int(time.time() * 1000)
    return now - now % MINUTE_MS - minutes * MINUTE_MS + 1234


def trigger(client: EnosClient, flow_id: int, trigger_ms: int, action: str = "trigger", **body: Any) -> str:
    data = ok(client.call("POST", "flows", action, body={"flowId": flow_id, "triggerTime": trigger_ms, **body}))
    return data["flowInstanceId"]


def instance(client: EnosClient, instance_id: str) -> dict[str, Any]:
    return ok(client.call("GET", "flowInstances", "get", query={"flowInstId": instance_id}))


def wait_for(client: EnosClient, instance_id: str, *statuses: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = instance(client, instance_id)
        if found["statusDesc"] in statuses:
            return found
        assert time.monotonic() < deadline, f"{instance_id} is {found['statusDesc']}, not {statuses}: {found}"
        time.sleep(0.1)


def node_statuses(found: dict[str, Any]) -> dict[str, str]:
    return {n["taskName"]: n["status"] for n in json.loads(found["graph"])["tasks"]}


def task_instance(client: EnosClient, task_id: int, flow_instance_id: str) -> dict[str, Any]:
    suffix = flow_instance_id.split("-", 1)[1]
    return ok(client.call("GET", "taskInstances", "get", query={"taskInstId": f"{task_id}-{suffix}"}))


def task_log(client: EnosClient, task_id: int, flow_instance_id: str, **query: Any) -> dict[str, Any]:
    suffix = flow_instance_id.split("-", 1)[1]
    return client.call("GET", "taskInstances", "getLog", query={"taskInstId": f"{task_id}-{suffix}", **query})


def runs(marker: Path) -> dict[str, list[tuple[float, float]]]:
    found: dict[str, list[tuple[float, float]]] = {}
    for line in marker.read_text().splitlines():
        name, start, end = line.split()
        found.setdefault(name, []).append((float(start), float(end)))
    return found


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# --- tests ------------------------------------------------------------------------------------


def test_chain_fan_out_fan_in_runs_in_dependency_order(client: EnosClient, tmp_path: Path) -> None:
    marker = tmp_path / "runs.txt"
    flow_id, ids = import_flow(client, "diamond", [
        task("a", marked("a", marker, "echo hello from a")), task("b", marked("b", marker, "sleep 0.3")),
        task("c", marked("c", marker, "sleep 0.3")), task("d", marked("d", marker)),
    ], [("a", "b", True), ("a", "c", True), ("b", "d", True), ("c", "d", True)])
    instance_id = trigger(client, flow_id, past(3))
    assert instance_id.startswith(f"{flow_id}-") and instance_id.endswith("00") and len(instance_id.split("-")[1]) == 14

    found = wait_for(client, instance_id, "SUCCESS")
    assert found["status"] == 1 and found["flowId"] == flow_id and found["isCancelled"] is False
    assert node_statuses(found) == {"a": "SUCCESS", "b": "SUCCESS", "c": "SUCCESS", "d": "SUCCESS"}
    done = runs(marker)
    (a,), (b,), (c,), (d,) = done["a"], done["b"], done["c"], done["d"]
    assert a[1] <= b[0] and a[1] <= c[0] and max(b[1], c[1]) <= d[0]
    assert b[0] < c[1] and c[0] < b[1]  # the fan-out ran in parallel
    log = ok(task_log(client, ids["a"], instance_id))["log"]
    assert log.count("run  num:\t1") == 1 and "hello from a" in log and f"instance:\t{ids['a']}-" in log
    inst = task_instance(client, ids["a"], instance_id)
    assert (inst["status"], inst["stsDesc"], inst["runNum"], inst["recallNum"]) == (1, "SUCCESS", 1, 0)
    assert inst["flowInstId"] == instance_id and inst["type"] == 3 and inst["isTimeout"] is False


def test_a_failure_fails_the_flow_at_once_and_nothing_downstream_starts(client: EnosClient, tmp_path: Path) -> None:
    marker = tmp_path / "runs.txt"
    flow_id, ids = import_flow(client, "fails", [
        task("bad", marked("bad", marker, "exit 3")), task("after", marked("after", marker)),
        task("slow", marked("slow", marker, "sleep 1.5")),
    ], [("bad", "after", True)])
    instance_id = trigger(client, flow_id, past(2))
    found = wait_for(client, instance_id, "FAIL", timeout=10)
    assert found["status"] == -1
    assert node_statuses(found)["slow"] == "RUNNING"  # the parallel branch keeps running
    time.sleep(0.3)
    deadline = time.monotonic() + 10
    while node_statuses(instance(client, instance_id))["slow"] != "SUCCESS":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    final = instance(client, instance_id)
    assert final["statusDesc"] == "FAIL"
    assert node_statuses(final) == {"bad": "FAIL", "after": "INIT", "slow": "SUCCESS"}
    assert "after" not in runs(marker)


def test_retry_then_success_timeout_and_wait_code(client: EnosClient, tmp_path: Path) -> None:
    flag, flag2, pid_file = tmp_path / "tried", tmp_path / "waited", tmp_path / "pid"
    flow_id, ids = import_flow(client, "flaky", [
        task("retry", f"echo try; if [ -f {flag} ]; then exit 0; fi; touch {flag}; exit 1", retryLimit=2),
        task("waits", f"if [ -f {flag2} ]; then exit 0; fi; touch {flag2}; exit 5", waitCode="5",
             retryInterval=1, successCode="0"),
    ])
    instance_id = trigger(client, flow_id, past(4))
    wait_for(client, instance_id, "SUCCESS")
    retried = task_instance(client, ids["retry"], instance_id)
    assert (retried["runNum"], retried["recallNum"]) == (2, 1)
    log = ok(task_log(client, ids["retry"], instance_id))["log"]
    assert log.count("=" * 73) == 2 and log.count("try\n") == 2 and "attempt:\t2" in log
    waited = task_instance(client, ids["waits"], instance_id)
    assert (waited["runNum"], waited["recallNum"]) == (2, 0)

    slow_id, slow_ids = import_flow(client, "slow", [
        task("sleeper", f"echo $$ > {pid_file}; sleep 30", timeout=1, retryLimit=0),
    ])
    slow_instance = trigger(client, slow_id, past(4))
    found = wait_for(client, slow_instance, "FAIL", timeout=15)
    assert node_statuses(found) == {"sleeper": "TIMEOUT"}
    timed_out = task_instance(client, slow_ids["sleeper"], slow_instance)
    assert (timed_out["status"], timed_out["isTimeout"]) == (7, True)
    assert not pid_alive(int(pid_file.read_text()))


def test_cancel_kills_the_running_task_and_cancels_the_rest(client: EnosClient, make_user: Any,
                                                             tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    flow_id, ids = import_flow(client, "long", [
        task("sleeper", f"echo $$ > {pid_file}; sleep 30"), task("next", "echo never"),
    ], [("sleeper", "next", True)])
    instance_id = trigger(client, flow_id, past(1))
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid = int(pid_file.read_text())
    assert failed(make_user(name="stranger").call("POST", "flowInstances", "cancel",
                                                  body={"flowInstId": instance_id}), 62103)
    assert ok(client.call("POST", "flowInstances", "cancel", body={"flowInstId": instance_id})) == ""
    found = instance(client, instance_id)
    assert (found["statusDesc"], found["isCancelled"]) == ("CANCEL", True)
    assert node_statuses(found) == {"sleeper": "CANCEL", "next": "CANCEL"}
    deadline = time.monotonic() + 10
    while pid_alive(pid):
        assert time.monotonic() < deadline, "the cancelled task still runs"
        time.sleep(0.05)
    again = client.call("POST", "flowInstances", "cancel", body={"flowInstId": instance_id})
    assert again["code"] == 0  # cancelling twice is harmless
    assert failed(client.call("POST", "flowInstances", "cancel", body={"flowInstId": "nope-1"}), 62102)


def test_trigger_from_task_follows_rerun_true_edges_only(client: EnosClient, tmp_path: Path) -> None:
    marker = tmp_path / "runs.txt"
    flow_id, ids = import_flow(client, "partial", [
        task("a", marked("a", marker)), task("b", marked("b", marker)), task("c", marked("c", marker)),
        task("d", marked("d", marker)),
    ], [("a", "b", True), ("b", "c", True), ("c", "d", False)])
    instance_id = trigger(client, flow_id, past(2), "triggerFromTask", taskId=ids["b"])
    found = wait_for(client, instance_id, "SUCCESS")
    assert node_statuses(found) == {"a": "SKIP", "b": "SUCCESS", "c": "SUCCESS", "d": "SKIP"}
    assert set(runs(marker)) == {"b", "c"}
    bad = client.call("POST", "flows", "triggerFromTask", body={"flowId": flow_id, "taskId": 999999,
                                                                 "triggerTime": past(5)})
    assert "taskId" in failed(bad, 62102)


def test_update_and_trigger_overrides_parameters_for_one_run(client: EnosClient, service: Service) -> None:
    flow_id, ids = import_flow(client, "params", [task("show", "echo x=${x} y=${y} day=${cal_dt} id=${instance_id}")],
                               parameters='[{"key":"x","value":"1"},{"key":"y","value":"kept"}]')
    fixed = int(dt.datetime(2024, 3, 10, 12, 0, 30, tzinfo=dt.timezone.utc).timestamp() * 1000)
    instance_id = trigger(client, flow_id, fixed, "updateAndTrigger", parameters=[{"key": "x", "value": "42"}])
    found = wait_for(client, instance_id, "SUCCESS")
    local = dt.datetime.fromtimestamp(fixed / 1000, tz=dt.timezone.utc).astimezone(service.settings.zone)
    cal_dt = (local.date() - dt.timedelta(days=1)).isoformat()
    assert found["calDt"] == cal_dt and found["triggerTime"] == f"{local:%Y-%m-%d %H:%M:%S}"
    assert instance_id == f"{flow_id}-{local:%Y%m%d%H%M}00"
    assert json.loads(found["parameters"]) == [{"key": "x", "value": "42"}, {"key": "y", "value": "kept"}]
    log = ok(task_log(client, ids["show"], instance_id))["log"]
    assert f"x=42 y=kept day={cal_dt} id={instance_id}\n" in log
    tail = ok(task_log(client, ids["show"], instance_id, maxLength=10))["log"]
    assert len(tail) == 10 and log.endswith(tail)
    stored = ok(client.call("GET", "flows", "export", query={"flowId": flow_id}))
    assert stored["parameters"] == '[{"key":"x","value":"1"},{"key":"y","value":"kept"}]'
    # the Java sample's JSON string and the Python sample's "k=v" strings work too
    second = trigger(client, flow_id, fixed + MINUTE_MS, "updateAndTrigger", parameters='[{"key":"x","value":"7"}]')
    third = trigger(client, flow_id, fixed + 2 * MINUTE_MS, "updateAndTrigger", parameters=["x=8"])
    for inst, value in ((second, "7"), (third, "8")):
        wait_for(client, inst, "SUCCESS")
        assert f"x={value} y=kept" in ok(task_log(client, ids["show"], inst))["log"]
    for _ in range(2):  # the second listing answers from the cache of instances listed before
        items = ok(client.call("POST", "flowInstances", "search", body={"flowId": flow_id}))["flowInsts"]
        shown = {item["instanceId"]: json.loads(item["parameters"]) for item in items}
        assert shown == {inst: [{"key": "x", "value": value}, {"key": "y", "value": "kept"}]
                         for inst, value in ((instance_id, "42"), (second, "7"), (third, "8"))}


def test_one_instance_per_workflow_runs_at_a_time_in_trigger_order(client: EnosClient, tmp_path: Path) -> None:
    marker = tmp_path / "runs.txt"
    flow_id, _ = import_flow(client, "serial", [task("t", marked("t", marker, "sleep 0.8"))])
    minute = past(10)
    first = trigger(client, flow_id, minute)
    again = client.call("POST", "flows", "trigger", body={"flowId": flow_id, "triggerTime": minute + 5000})
    assert "do not trigger the same workflow repeatedly in 1 minute" in failed(again, 62102)
    second = trigger(client, flow_id, minute + MINUTE_MS)
    wait_for(client, first, "RUNNING")
    # the engine takes the second instance in on its next pass (INIT until then), and it waits
    wait_for(client, second, "WAIT")
    assert instance(client, first)["statusDesc"] == "RUNNING"
    wait_for(client, second, "SUCCESS")
    assert instance(client, first)["statusDesc"] == "SUCCESS"
    (one,), (two,) = [[r] for r in runs(marker)["t"]]
    assert one[1] <= two[0]
    future = trigger(client, flow_id, int(time.time() * 1000) + 3 * MINUTE_MS)
    time.sleep(1)
    assert instance(client, future)["statusDesc"] == "WAIT"


def test_a_reference_waits_for_the_upstream_run_of_the_same_business_date(client: EnosClient, tmp_path: Path) -> None:
    marker = tmp_path / "runs.txt"
    up_id, up_ids = import_flow(client, "upstream", [task("u", marked("u", marker), asLink=True)])
    down_id, down_ids = import_flow(
        client, "downstream", [task("d", marked("d", marker))],
        flowLinks=[{"linkId": "0", "sourceFlowName": "upstream"}],
        linkRelations=[{"linkId": "0", "targetTaskName": "d", "rerun": False}],
    )
    day = past(30)
    down = trigger(client, down_id, day)
    time.sleep(1.2)
    found = instance(client, down)
    assert found["statusDesc"] == "RUNNING" and node_statuses(found) == {"d": "WAIT"}
    assert json.loads(found["graph"])["flows"][0]["status"] == "NONE"
    up = trigger(client, up_id, day + MINUTE_MS)
    wait_for(client, up, "SUCCESS")
    found = wait_for(client, down, "SUCCESS")
    assert json.loads(found["graph"])["flows"][0] == {
        "flowId": str(up_id), "flowName": "upstream", "nodeId": f"f_{up_id}", "isVirtual": False,
        "flowInstId": up, "status": "SUCCESS",
    }
    (u,), (d,) = runs(marker)["u"], runs(marker)["d"]
    assert u[1] <= d[0]


def test_who_may_trigger_and_who_sees_instances(client: EnosClient, make_user: Any,
                                                other_org_client: EnosClient) -> None:
    flow_id, ids = import_flow(client, "guarded", [task("t", "echo hi")])
    visitor = make_user(name="bob")
    assert failed(visitor.call("POST", "flows", "trigger", body={"flowId": flow_id, "triggerTime": past(1)}), 62103)
    locked = make_user(name="tester2", locked=True)
    assert failed(locked.call("POST", "flows", "trigger", body={"flowId": flow_id, "triggerTime": past(1)}), 62103)
    instance_id = trigger(client, flow_id, past(1))
    wait_for(client, instance_id, "SUCCESS")
    assert visitor.call("GET", "flowInstances", "get", query={"flowInstId": instance_id})["code"] == 0
    assert failed(other_org_client.call("GET", "flowInstances", "get", query={"flowInstId": instance_id}), 62102)
    assert failed(other_org_client.call("POST", "flows", "trigger",
                                        body={"flowId": flow_id, "triggerTime": past(2)}), 62102)
    suffix = instance_id.split("-", 1)[1]
    assert failed(other_org_client.call("GET", "taskInstances", "getLog",
                                        query={"taskInstId": f"{ids['t']}-{suffix}"}), 62102) .startswith("Instance not found")
    listed = ok(other_org_client.call("POST", "flowInstances", "search", body={}))
    assert listed == {"flowInsts": [], "count": 0}
    assert failed(other_org_client.call("POST", "flowInstances", "cancel", body={"flowInstId": instance_id}), 62102)
    # deleting the workflow deletes its instances
    assert ok(client.call("GET", "flows", "delete", query={"flowId": flow_id})) == ""
    assert failed(client.call("GET", "flowInstances", "get", query={"flowInstId": instance_id}), 62102)


def test_python_tasks_plugin_kinds_and_empty_workflows(client: EnosClient) -> None:
    flow_id, ids = import_flow(client, "kinds", [
        task("py", "import sys\nprint('python', sys.version_info[0])", type="PYTHON"),
        task("hive", "select 1", type="HIVE"),
    ])
    instance_id = trigger(client, flow_id, past(1))
    found = wait_for(client, instance_id, "FAIL")
    wait_for_task = time.monotonic() + 10
    while node_statuses(instance(client, instance_id))["py"] != "SUCCESS":
        assert time.monotonic() < wait_for_task
        time.sleep(0.1)
    assert node_statuses(found)["hive"] == "FAIL"
    assert "python 3\n" in ok(task_log(client, ids["py"], instance_id))["log"]
    assert "HIVE" in ok(task_log(client, ids["hive"], instance_id))["log"]  # the runner says why

    empty_id, _ = import_flow(client, "empty", [])
    for action, extra in (("trigger", {}), ("updateAndTrigger", {"parameters": []})):
        refused = client.call("POST", "flows", action, body={"flowId": empty_id, "triggerTime": past(1), **extra})
        assert failed(refused, 62104) == "This workflow has no task. You cannot trigger it."
