"""Two real `batchd serve` processes on one database share the work of many runs at once: a
chain, a fan-out and a 10-wide layered DAG, each triggered twice (one trigger through each
server). Every task instance ends with exactly one attempt, a successful one; every task's
attempt began after each of its upstream tasks' attempts had ended; both servers ran some.
And when one of the two is killed (`kill -9`) mid-run and not restarted, the other takes over:
it kills the dead one's processes, retries their tasks, and the run succeeds.

The engines claim with compare-and-set, start a chain's next task ahead of its claim, release a
fan-in's task in whichever outcome comes last, and sweep; this is all of it at once, through
HTTP, on real processes (the kill -9 tests cover crashes)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from servicekit import Backend, EnosClient, free_port, run_in_transaction, serve_process
from servicekit import insecure_call as call

from batchd.config import Settings
from batchd.engine.status import Status
from batchd.store import identity
from batchd.store.tables import task_attempts, task_instances

TASKS = 60  # per workflow
MINUTE_MS = 60_000


def relations(shape: str) -> list[tuple[str, str]]:
    names = [f"t{i:03d}" for i in range(TASKS)]
    if shape == "chain":
        return list(zip(names, names[1:]))
    if shape == "fanout":
        return [(names[0], name) for name in names[1:]]
    layers = [names[i:i + 10] for i in range(0, TASKS, 10)]
    return [(a, b) for up, down in zip(layers, layers[1:]) for a in up for b in down]


def flow_json(shape: str) -> dict[str, Any]:
    return {"type": 0, "cycle": "D", "cron": "",
            "tasks": [{"name": f"t{i:03d}", "type": "SHELL", "cmd": "true"} for i in range(TASKS)],
            "relations": [{"sourceTaskName": a, "targetTaskName": b, "rerun": True} for a, b in relations(shape)]}


def two_servers_ahead(backend: Backend, tmp_path: Path, org_id: str
                      ) -> tuple[Settings, list[Path], list[int], list[EnosClient]]:
    """What two servers on `backend`'s database need before they start: their homes and ports,
    an organisation bootstrapped (settings of the first home) and a client of each."""
    homes = [tmp_path / "a", tmp_path / "b"]
    for home in homes:
        home.mkdir()
    settings = Settings.load(home=homes[0], database_url=backend.database_url, environ={})
    creds = run_in_transaction(settings, lambda conn: identity.bootstrap(
        conn, org_id=org_id, user_id=f"u-{org_id}", user_name="tester"))
    ports = [free_port(), free_port()]
    clients = [EnosClient(f"http://127.0.0.1:{port}", creds.access_key, creds.secret_key, creds.org_id,
                          creds.user_id) for port in ports]
    return settings, homes, ports, clients


def test_two_servers_on_one_database_run_every_task_once_and_in_order(backend: Backend, tmp_path: Path) -> None:
    settings, homes, ports, clients = two_servers_ahead(backend, tmp_path, "o-two")
    with serve_process(homes[0], backend.database_url, ports[0], parallelism=2), \
            serve_process(homes[1], backend.database_url, ports[1], parallelism=2):
        root = call(clients[0], "GET", "directories", "listWorkFlowDirs")[0]["key"]
        shape_of: dict[str, str] = {}
        now_ms = int(time.time() * 1000)
        for shape in ("chain", "fanout", "layered"):
            flow_id = call(clients[0], "POST", "flows", "import",
                           body={"flowName": shape, "dirId": root, "flowJson": flow_json(shape)})["flowId"]
            for run, client in enumerate(clients):
                started = call(client, "POST", "flows", "trigger",
                               body={"flowId": flow_id, "triggerTime": now_ms - (run + 1) * 10 * MINUTE_MS})
                shape_of[started["flowInstanceId"]] = shape
        deadline = time.monotonic() + 120
        waiting = set(shape_of)
        while waiting:
            assert time.monotonic() < deadline, f"not finished: {sorted(waiting)}"
            for instance_id in sorted(waiting):
                status = call(clients[0], "GET", "flowInstances", "get", query={"flowInstId": instance_id})["status"]
                assert status in (Status.INIT, Status.WAIT, Status.RUNNING, Status.SUCCESS), (instance_id, status)
                if status == Status.SUCCESS:
                    waiting.discard(instance_id)
            time.sleep(0.2)

    async def attempts(conn: Any) -> list[Any]:
        return (await conn.execute(
            sa.select(task_instances.c.flow_instance_id, task_instances.c.task_name, task_attempts.c.outcome,
                      task_attempts.c.started_at, task_attempts.c.ended_at, task_attempts.c.owner)
            .join(task_attempts, task_attempts.c.task_instance_id == task_instances.c.instance_id, isouter=True)
            .where(task_instances.c.flow_instance_id.in_(list(shape_of))))).all()

    rows = run_in_transaction(settings, attempts)
    by_task: dict[tuple[str, str], list[Any]] = {}
    for row in rows:
        by_task.setdefault((row.flow_instance_id, row.task_name), []).append(row)
    assert len(by_task) == 6 * TASKS
    assert {key: [row.outcome for row in found] for key, found in by_task.items() if
            [row.outcome for row in found] != ["SUCCESS"]} == {}
    early = [(instance_id, up, down) for instance_id, shape in shape_of.items() for up, down in relations(shape)
             if by_task[(instance_id, down)][0].started_at < by_task[(instance_id, up)][0].ended_at]
    assert early == []
    assert len({row.owner for row in rows}) == 2  # both servers ran attempts


LONG, SHORT = 30, 3  # ticks (0.1 s apart) of a task's first process, and of any later one


def test_when_one_of_two_servers_is_killed_the_other_finishes_its_tasks(backend: Backend, tmp_path: Path) -> None:
    _, homes, ports, clients = two_servers_ahead(backend, tmp_path, "o-survivor")
    marker = tmp_path / "ticks.txt"
    # Each process of a task ticks with its attempt and its batchd's owner marker; a task's first
    # process ticks LONG times, so a surviving orphan would outlast the retry.
    tick = (f'n={SHORT}; [ "$BATCHD_ATTEMPT" = 1 ] && n={LONG}; for i in $(seq $n); do '
            f'echo "$BATCHD_TASK_INSTANCE_ID $BATCHD_ATTEMPT $BATCHD_OWNER $(date +%s.%N)" >> {marker}; sleep 0.1; done')
    flow = {"type": 0, "cycle": "D", "cron": "",
            "tasks": [{"name": f"w{i}", "type": "COMMAND", "cmd": tick, "retryLimit": 1} for i in range(4)]}
    with serve_process(homes[0], backend.database_url, ports[0], parallelism=2) as first, \
            serve_process(homes[1], backend.database_url, ports[1], parallelism=2):
        root = call(clients[0], "GET", "directories", "listWorkFlowDirs")[0]["key"]
        flow_id = call(clients[0], "POST", "flows", "import",
                       body={"flowName": "survivor", "dirId": root, "flowJson": flow})["flowId"]
        instance_id = call(clients[0], "POST", "flows", "trigger", body={"flowId": flow_id})["flowInstanceId"]
        mine = f":{first.pid}:"
        deadline = time.monotonic() + 30
        while not marker.exists() or mine not in marker.read_text():
            assert time.monotonic() < deadline, "the first server never ran a task"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)  # reaped: the survivor on this machine sees its pid gone
        deadline = time.monotonic() + 60
        while (found := call(clients[1], "GET", "flowInstances", "get", query={"flowInstId": instance_id}))[
                "statusDesc"] != "SUCCESS":
            assert found["statusDesc"] in ("INIT", "WAIT", "RUNNING"), found
            assert time.monotonic() < deadline, found
            time.sleep(0.1)

    ticks: dict[str, dict[tuple[str, str], list[float]]] = {}
    for line in marker.read_text().splitlines():
        task_instance_id, attempt, owner, moment = line.split()
        ticks.setdefault(task_instance_id, {}).setdefault((attempt, owner), []).append(float(moment))
    interrupted = {task for task, runs in ticks.items() if any(mine in owner for _, owner in runs)}
    assert interrupted  # the killed server was running at least one task
    for task in interrupted:
        runs = ticks[task]
        assert [attempt for attempt, _ in sorted(runs)] == ["1", "2"], runs  # died, then retried once
        (died, survivor) = (runs[key] for key in sorted(runs))
        assert len(died) < LONG, "the killed server's process was not killed"
        assert max(died) < min(survivor), "the retry ran beside the killed server's process"
        assert mine not in next(owner for attempt, owner in runs if attempt == "2")
    assert len(ticks) == 4  # every task ran
