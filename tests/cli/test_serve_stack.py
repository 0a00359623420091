"""`batchd serve` runs on uvloop with httptools (pinned dependencies, named explicitly in
cli/serve.py), and the engine works there: child exits are watched through the loop (a pidfd
reader where the kernel has them), so a task that ends and one that is killed at its timeout
must both be seen by a real server process, not only by the in-process test servers.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from servicekit import EnosClient, free_port, run_in_transaction, serve_process
from servicekit import insecure_call as call

from batchd.config import Settings
from batchd.store import identity


def test_serve_runs_on_uvloop_and_httptools_and_its_engine_sees_tasks_end(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    settings = Settings.load(home=home, environ={})
    creds = run_in_transaction(settings, lambda conn: identity.bootstrap(
        conn, org_id="o-serve", user_id="u-serve", user_name="tester"))
    port = free_port()
    client = EnosClient(f"http://127.0.0.1:{port}", creds.access_key, creds.secret_key, creds.org_id, creds.user_id)
    with serve_process(home, settings.database_url, port) as server:
        maps = Path(f"/proc/{server.pid}/maps").read_text()
        assert "/uvloop/" in maps and "/httptools/" in maps

        root = call(client, "GET", "directories", "listWorkFlowDirs")[0]["key"]
        flow = {"type": 0, "cycle": "D", "cron": "", "owners": "", "visitors": "",
                "tasks": [{"name": "hello", "type": "COMMAND", "cmd": "echo hello from uvloop"},
                          {"name": "slow", "type": "COMMAND", "cmd": "sleep 30", "timeout": 1}],
                "relations": [{"sourceTaskName": "hello", "targetTaskName": "slow"}]}
        flow_id = call(client, "POST", "flows", "import",
                       body={"flowName": "stack", "dirId": root, "flowJson": flow})["flowId"]
        graph = json.loads(call(client, "GET", "flows", "get", query={"flowId": flow_id})["graph"])
        ids = {t["taskName"]: int(t["taskId"]) for t in graph["tasks"]}
        instance = call(client, "POST", "flows", "trigger",
                        body={"flowId": flow_id, "triggerTime": int(time.time() * 1000)})["flowInstanceId"]
        suffix = instance.split("-", 1)[1]

        deadline = time.monotonic() + 25  # well before `sleep 30` could end by itself
        while (found := call(client, "GET", "flowInstances", "get", query={"flowInstId": instance}))[
                "statusDesc"] in ("INIT", "WAIT", "RUNNING"):
            assert time.monotonic() < deadline, found
            time.sleep(0.1)
        hello = call(client, "GET", "taskInstances", "get", query={"taskInstId": f"{ids['hello']}-{suffix}"})
        slow = call(client, "GET", "taskInstances", "get", query={"taskInstId": f"{ids['slow']}-{suffix}"})
        log = call(client, "GET", "taskInstances", "getLog", query={"taskInstId": f"{ids['hello']}-{suffix}"})["log"]

    assert hello["stsDesc"] == "SUCCESS" and "hello from uvloop" in log
    assert slow["stsDesc"] == "TIMEOUT"  # killed at its 1 s timeout, long before `sleep 30` ends
    assert found["statusDesc"] in ("FAIL", "TIMEOUT")
