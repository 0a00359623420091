"""`kill -9` of a real `batchd serve` mid-run loses nothing and runs nothing twice at the same time.

A server process (python -m batchd serve --insecure on loopback) runs tasks that append a tick
line with their pid every 0.1 s to a marker file. The server is killed with SIGKILL while the
first task ticks, then started again on the same home and database. Then:
- every accepted trigger completes (the instances queued behind the killed one too);
- the interrupted attempt is recorded as having died with batchd and retried (retryLimit 1);
- the orphaned process group of the killed attempt was killed before the retry started: the
  ticks of the two attempts' processes never interleave;
- the log written before the kill is still readable, followed by the died line and the retry.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from servicekit import Backend, EnosClient, free_port, run_in_transaction, serve_process
from servicekit import insecure_call as call

from batchd.config import Settings
from batchd.store import identity

MINUTE_MS = 60_000
LONG, SHORT = 300, 5  # ticks of the killed attempt (outlives any restart) and of every other attempt


#: Runs `batchd` (its arguments follow) with the claim of a successor started ahead frozen: the
#: server writes the file named by BATCHD_TEST_FROZEN and stops in that transaction for good,
#: after the successor's process started and before anything was committed — the window a
#: `kill -9` must survive (`Engine._start_ahead`).
FROZEN_CLAIM = """
import os, sys, time
from batchd.engine import progress
def frozen(*args, **kwargs):
    with open(os.environ["BATCHD_TEST_FROZEN"], "w") as mark:
        mark.write("frozen")
    time.sleep(600)
progress.claim_started = frozen
from batchd.cli import main
sys.argv = ["batchd", *sys.argv[1:]]
main()
"""


@contextmanager
def server(home: Path, database_url: str, port: int, *, frozen: Path | None = None
           ) -> Iterator[subprocess.Popen[bytes]]:
    """`batchd serve` on `home`, four slots; with `frozen`, its successor claims freeze (above)."""
    launcher = None if frozen is None else ["-c", FROZEN_CLAIM]
    env = None if frozen is None else {"BATCHD_TEST_FROZEN": str(frozen)}
    with serve_process(home, database_url, port, parallelism=4, launcher=launcher, env=env) as process:
        yield process


def ticking(marker: Path) -> str:
    # Only a first attempt ticks `${ticks}` times; a retry ticks SHORT times.
    return (f'n=${{ticks}}; [ "$BATCHD_ATTEMPT" = 1 ] || n={SHORT}; for i in $(seq $n); do echo "$BATCHD_TASK_INSTANCE_ID $$ $(date +%s.%N)" >> {marker}; '
            f'echo tick $i; sleep 0.1; done')


def once_long(marker: Path, ran: Path) -> str:
    # The first process to run it ticks LONG times, any later one SHORT times.
    return (f'n={SHORT}; [ -e {ran} ] || {{ n={LONG}; touch {ran}; }}; for i in $(seq $n); do '
            f'echo "$BATCHD_TASK_INSTANCE_ID $$ $(date +%s.%N)" >> {marker}; echo tick $i; sleep 0.1; done')


def test_kill_9_mid_run_then_restart(backend: Backend, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    marker = tmp_path / "ticks.txt"
    settings = Settings.load(home=home, database_url=backend.database_url, environ={})
    creds = run_in_transaction(settings, lambda conn: identity.bootstrap(
        conn, org_id="o-kill", user_id="u-kill", user_name="tester"))
    port = free_port()
    client = EnosClient(f"http://127.0.0.1:{port}", creds.access_key, creds.secret_key, creds.org_id, creds.user_id)

    with server(home, backend.database_url, port) as first:
        root = call(client, "GET", "directories", "listWorkFlowDirs")[0]["key"]
        flow = {"type": 0, "cycle": "D", "cron": "", "owners": "", "visitors": "", "parameters": f'[{{"key":"ticks","value":"{SHORT}"}}]',
                "tasks": [{"name": "w", "type": "COMMAND", "cmd": ticking(marker), "retryLimit": 1},
                          {"name": "x", "type": "COMMAND", "cmd": "echo done"}],
                "relations": [{"sourceTaskName": "w", "targetTaskName": "x", "rerun": True}]}
        flow_id = call(client, "POST", "flows", "import",
                       body={"flowName": "crash", "dirId": root, "flowJson": flow})["flowId"]
        graph = json.loads(call(client, "GET", "flows", "get", query={"flowId": flow_id})["graph"])
        w_id = next(int(t["taskId"]) for t in graph["tasks"] if t["taskName"] == "w")
        now = int(time.time() * 1000)
        base = now - now % MINUTE_MS - 10 * MINUTE_MS
        accepted = [call(client, "POST", "flows", "updateAndTrigger", body={
            "flowId": flow_id, "triggerTime": base + i * MINUTE_MS,
            "parameters": [{"key": "ticks", "value": str(LONG if i == 0 else SHORT)}]})["flowInstanceId"]
            for i in range(3)]
        deadline = time.monotonic() + 20
        while not marker.exists() or len(marker.read_text().splitlines()) < 4:
            assert time.monotonic() < deadline, "the first task never started"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)  # reaped: its pid is gone, so the next server recovers at once

    interrupted = f"{w_id}-{accepted[0].split('-', 1)[1]}"
    with server(home, backend.database_url, port):
        deadline = time.monotonic() + 60
        for instance_id in accepted:
            while (found := call(client, "GET", "flowInstances", "get", query={"flowInstId": instance_id}))[
                    "statusDesc"] != "SUCCESS":
                assert found["statusDesc"] in ("INIT", "WAIT", "RUNNING"), found
                assert time.monotonic() < deadline, found
                time.sleep(0.1)
        task = call(client, "GET", "taskInstances", "get", query={"taskInstId": interrupted})
        assert (task["stsDesc"], task["runNum"], task["recallNum"]) == ("SUCCESS", 2, 1)
        log = call(client, "GET", "taskInstances", "getLog", query={"taskInstId": interrupted})["log"]

    before, died, after = log.partition("died with batchd")
    assert died, log
    assert "run  num:\t1" in before and "tick 1\n" in before  # written before the kill, still there
    assert "attempt:\t2" in after and f"tick {SHORT}\n" in after
    ticks: dict[str, dict[str, list[float]]] = {}
    for line in marker.read_text().splitlines():
        instance_id, pid, moment = line.split()
        ticks.setdefault(instance_id, {}).setdefault(pid, []).append(float(moment))
    assert len(ticks) == 3 and len(ticks[interrupted]) == 2  # the killed attempt and its retry
    killed = min(ticks[interrupted].values(), key=min)
    assert len(killed) < LONG, "the orphan of the killed attempt was not killed"
    for by_pid in ticks.values():
        spans = sorted((min(times), max(times)) for times in by_pid.values())
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert end < start, f"two attempts ticked at the same time: {spans}"
    spans = sorted((min(t), max(t)) for by_pid in ticks.values() for t in by_pid.values())
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end < start, "two instances of one workflow ran at the same time"


def test_kill_9_after_a_successor_started_ahead_of_its_claim(backend: Backend, tmp_path: Path) -> None:
    """The crash lands after the chain's second task started (ahead of its claim) and before the
    transaction recording the first task's success committed: the database knows nothing of the
    second task's process. The restarted server must kill that orphan (by the dead server's
    owner marker) before the first task's retry lets the second task run again."""
    home = tmp_path / "home"
    home.mkdir()
    marker, frozen = tmp_path / "ticks.txt", tmp_path / "frozen"
    settings = Settings.load(home=home, database_url=backend.database_url, environ={})
    creds = run_in_transaction(settings, lambda conn: identity.bootstrap(
        conn, org_id="o-ahead", user_id="u-ahead", user_name="tester"))
    port = free_port()
    client = EnosClient(f"http://127.0.0.1:{port}", creds.access_key, creds.secret_key, creds.org_id, creds.user_id)

    with server(home, backend.database_url, port, frozen=frozen) as first:
        root = call(client, "GET", "directories", "listWorkFlowDirs")[0]["key"]
        flow = {"type": 0, "cycle": "D", "cron": "", "owners": "", "visitors": "",
                "tasks": [{"name": "a", "type": "COMMAND", "cmd": "true", "retryLimit": 1},
                          {"name": "b", "type": "COMMAND", "cmd": once_long(marker, tmp_path / "b-ran")},
                          {"name": "c", "type": "COMMAND", "cmd": "echo done"}],
                "relations": [{"sourceTaskName": "a", "targetTaskName": "b", "rerun": True},
                              {"sourceTaskName": "b", "targetTaskName": "c", "rerun": True}]}
        flow_id = call(client, "POST", "flows", "import",
                       body={"flowName": "ahead", "dirId": root, "flowJson": flow})["flowId"]
        graph = json.loads(call(client, "GET", "flows", "get", query={"flowId": flow_id})["graph"])
        task_ids = {t["taskName"]: t["taskId"] for t in graph["tasks"]}
        instance_id = call(client, "POST", "flows", "trigger", body={"flowId": flow_id})["flowInstanceId"]
        deadline = time.monotonic() + 20
        while not frozen.exists() or not marker.exists() or len(marker.read_text().splitlines()) < 3:
            assert time.monotonic() < deadline, "the second task was not started ahead of its claim"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    (orphan_pid,) = {line.split()[1] for line in marker.read_text().splitlines()}
    ticks_at_kill = len(marker.read_text().splitlines())

    with server(home, backend.database_url, port):
        deadline = time.monotonic() + 60
        while (found := call(client, "GET", "flowInstances", "get", query={"flowInstId": instance_id}))[
                "statusDesc"] != "SUCCESS":
            assert found["statusDesc"] in ("INIT", "WAIT", "RUNNING"), found
            assert time.monotonic() < deadline, found
            time.sleep(0.1)
        suffix = instance_id.split("-", 1)[1]
        tasks = {name: call(client, "GET", "taskInstances", "get", query={"taskInstId": f"{task_id}-{suffix}"})
                 for name, task_id in task_ids.items()}
    # The first task's success was never committed: its attempt died with batchd and was retried;
    # the second task's process of the crashed server has no attempt, and its one attempt ran after.
    assert (tasks["a"]["stsDesc"], tasks["a"]["runNum"], tasks["a"]["recallNum"]) == ("SUCCESS", 2, 1)
    assert (tasks["b"]["stsDesc"], tasks["b"]["runNum"]) == ("SUCCESS", 1)
    by_pid: dict[str, list[float]] = {}
    for line in marker.read_text().splitlines():
        _, pid, moment = line.split()
        by_pid.setdefault(pid, []).append(float(moment))
    assert set(by_pid) - {orphan_pid}, "the second task never ran for real after the restart"
    orphan = by_pid.pop(orphan_pid)
    assert ticks_at_kill <= len(orphan) < LONG, "the orphan started ahead of its claim was not killed"
    (real,) = by_pid.values()
    assert max(orphan) < min(real), "the orphan and the second task's real attempt ran at the same time"
    assert len(real) == SHORT


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-v"])
