"""`batchd serve` runs on uvloop with httptools (pinned dependencies, named explicitly in
cli/serve.py), and the engine works there: child exits are watched through the loop (a pidfd
reader where the kernel has them), so a task that ends and one that is killed at its timeout
must both be seen by a real server process, not only by the in-process test servers.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from servicekit import EnosClient, run_in_transaction

from batchd.config import Settings
from batchd.store import identity


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(client: EnosClient, method: str, resource: str, action: str, **options: Any) -> Any:
    envelope = client.call(method, resource, action, sign=False, **options)
    assert envelope["code"] == 0, envelope
    return envelope["data"]


def test_serve_runs_on_uvloop_and_httptools_and_its_engine_sees_tasks_end(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    settings = Settings.load(home=home, environ={})
    creds = run_in_transaction(settings, lambda conn: identity.bootstrap(
        conn, org_id="o-serve", user_id="u-serve", user_name="tester"))
    port = free_port()
    client = EnosClient(f"http://127.0.0.1:{port}", creds.access_key, creds.secret_key, creds.org_id, creds.user_id)
    env = {**os.environ, "BATCHD_TIMEZONE": "UTC"}
    env.pop("BATCHD_DATABASE_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "batchd", "serve", "--insecure", "--port", str(port), "--home", str(home)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.stderr and server.stderr.read()
                time.sleep(0.05)
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
    finally:
        server.terminate()
        server.wait(timeout=30)

    assert hello["stsDesc"] == "SUCCESS" and "hello from uvloop" in log
    assert slow["stsDesc"] == "TIMEOUT"  # killed at its 1 s timeout, long before `sleep 30` ends
    assert found["statusDesc"] in ("FAIL", "TIMEOUT")
