"""Trigger-to-SUCCESS time of a 1,000-task workflow of `true` tasks, beside the spawn floor.

Shapes: a chain (each task after the previous one), a fan-out (one root, 999 children) and a
10-wide layered DAG (100 layers of 10, each task after every task of the layer before). The
floor is the same number of `true` processes spawned by a plain asyncio loop with the same
parallelism, and (`dag floor`) the same again with each process started only once its upstream
processes have exited — the best any scheduler of that DAG can do with that parallelism: for a
chain, one process at a time; for the layered DAG, layer after layer. batchd runs as a real
`batchd serve --insecure` on loopback with a fresh SQLite home; the time is from the Trigger
Flow call to the instance's change to SUCCESS, as batchd recorded it (the row's `updated_at`,
milliseconds, stamped as the transaction that records the last task's success begins, which
commits well under a millisecond later; read from the SQLite file once the run is over). The end is noticed by polling List Flow Instances every
`--poll` seconds (0.2), as a dashboard would; `polled s`, the last column, is the time until the
poll saw it, which adds half the poll interval on average (until commit 9fc37f5 the bench
reported that, polling every 50 ms, which cost the server ~4% of its CPU). Beside the times,
the CPU each side spent per task (user + system of the server process from /proc, of the
floor's own process; children excluded on both sides): on a machine whose speed drifts between
runs, a steadier measure of batchd's own work.

    .venv/bin/python bench/engine_dag.py [--tasks 1000] [--rounds 3] [--parallelism 2] [--poll 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

BASE = "/batch-processing-service/v2.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shape_relations(shape: str, n: int) -> list[tuple[str, str]]:
    """(upstream, downstream) task names of a shape."""
    names = [f"t{i:04d}" for i in range(n)]
    if shape == "chain":
        return [(names[i - 1], names[i]) for i in range(1, n)]
    if shape == "fanout":
        return [(names[0], names[i]) for i in range(1, n)]
    width = 10  # layered
    layers = [names[i:i + width] for i in range(0, n, width)]
    return [(a, b) for up, down in zip(layers, layers[1:]) for a in up for b in down]


def flow_json(shape: str, n: int) -> dict:
    names = [f"t{i:04d}" for i in range(n)]
    relations = shape_relations(shape, n)
    return {
        "cycle": "D", "cron": "0 0 0 * * ? *", "parameters": "[]", "submitter": "bench", "owners": "u",
        "visitors": "", "type": 0, "desc": "", "startTime": "2024-01-01", "syncType": 1, "alertMode": 0,
        "tasks": [{"name": name, "resource": "default", "type": "SHELL", "cmd": "true", "submitter": "",
                   "filePackage": "", "cron": "", "priorityLevel": 0, "timeout": 60, "retryLimit": 0,
                   "retryInterval": 0, "successCode": "0", "waitCode": "", "asLink": False,
                   "runMode": "{\"taskMode\":1}", "syncType": 1} for name in names],
        "relations": [{"sourceTaskName": a, "targetTaskName": b, "rerun": True} for a, b in relations],
        "flowLinks": [], "taskLinks": [], "linkRelations": [],
    }


def call(client: httpx.Client, method: str, resource: str, action: str, body: dict | None = None, **query) -> object:
    params = {"action": action, "orgId": "o", "userId": "u", **query}
    response = client.request(method, f"{BASE}/{resource}", params=params,
                              content=None if body is None else json.dumps(body))
    envelope = response.json()
    if envelope.get("code") != 0:
        raise RuntimeError(f"{action}: {envelope}")
    return envelope["data"]


def process_cpu_s(pid: int) -> float:
    """User + system CPU of process `pid` so far (Linux /proc), children not included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def floor(n: int, parallelism: int, relations: list[tuple[str, str]] | None = None) -> float:
    """Spawn `n` `true` processes, at most `parallelism` at a time; with `relations` (of the
    `names` of `flow_json`), each only once its upstream processes have exited."""
    slots = asyncio.Semaphore(parallelism)
    names = [f"t{i:04d}" for i in range(n)]
    exited = {name: asyncio.Event() for name in names}
    upstream: dict[str, list[str]] = {name: [] for name in names}
    for source, target in relations or ():
        upstream[target].append(source)

    async def one(name: str) -> None:
        for before in upstream[name]:
            await exited[before].wait()
        async with slots:
            proc = await asyncio.create_subprocess_exec("true")
            await proc.wait()
        exited[name].set()

    began = time.perf_counter()
    await asyncio.gather(*(one(name) for name in names))
    return time.perf_counter() - began


def succeeded_ms(home: Path, instance_id: str) -> int:
    """When batchd changed the instance to SUCCESS (epoch ms, this machine's clock), from its
    SQLite file, read-only: the wire's times have whole seconds."""
    with contextlib.closing(sqlite3.connect(f"file:{home / 'batchd.db'}?mode=ro", uri=True)) as db:
        (updated,) = db.execute("SELECT updated_at FROM flow_instances WHERE instance_id = ? AND status = 1",
                                (instance_id,)).fetchone()
    return int(updated)


def timed_floor(n: int, parallelism: int, relations: list[tuple[str, str]] | None = None) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of `floor`."""
    cpu = time.process_time()
    wall = asyncio.run(floor(n, parallelism, relations))
    return wall, time.process_time() - cpu


def start_server(home: Path, env: dict[str, str], log: Any) -> tuple[subprocess.Popen[bytes], int]:
    """A bootstrapped home (org `o`, user `u`) and `batchd serve --insecure` on it, on a free
    port: (the server's process, its port)."""
    batchd = [sys.executable, "-m", "batchd"]
    subprocess.run([*batchd, "admin", "bootstrap", "--home", str(home), "--org", "o", "--user", "u", "--json"],
                   check=True, capture_output=True, env=env)
    port = free_port()
    server = subprocess.Popen([*batchd, "serve", "--insecure", "--home", str(home), "--port", str(port)],
                              stdout=log, stderr=subprocess.STDOUT, env=env)
    return server, port


@contextmanager
def ready_client(port: int) -> Iterator[httpx.Client]:
    """A client of the server on `port`, once it answers /readyz."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        for _ in range(200):
            try:
                if client.get("/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        yield client


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--shapes", default="chain,fanout,layered", help="comma-separated subset to run")
    parser.add_argument("--keep-home", action="store_true", help="keep the server's home (logs, database) afterwards")
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between List Flow Instances polls")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="batchd-bench-engine-"))
    # The home's own SQLite database, whatever this shell's BATCHD_DATABASE_URL says.
    env = {**{k: v for k, v in os.environ.items() if k != "BATCHD_DATABASE_URL"},
           "BATCHD_PARALLELISM": str(args.parallelism)}
    log = open(home / "server.log", "wb")  # noqa: SIM115 - closed with the server below
    server, port = start_server(home, env, log)
    print(f"server log: {home / 'server.log'}" + ("" if args.keep_home else " (removed at the end: --keep-home)"),
          file=sys.stderr)
    try:
        with ready_client(port) as client:
            root = call(client, "GET", "directories", "listWorkFlowDirs")[0]["key"]
            print(f"{'shape':10} {'batchd s':>10} {'floor s':>9} {'ratio':>7} {'ms/task':>8} "
                  f"{'dag floor s':>12} {'ratio':>7} {'cpu ms/task':>12} {'floor cpu':>10} {'polled s':>9}")
            for shape in args.shapes.split(","):
                flow_id = call(client, "POST", "flows", "import", {
                    "flowName": f"bench-{shape}", "desc": "", "dirId": root,
                    "flowJson": flow_json(shape, args.tasks)})["flowId"]
                ours, polled, floors, dag, cpu_ours, cpu_floor = [], [], [], [], [], []
                for round_no in range(args.rounds):
                    trigger_ms = int(time.time() * 1000) - 60_000 * (round_no + 1) * 10
                    cpu_began = process_cpu_s(server.pid)
                    began, began_ms = time.perf_counter(), time.time() * 1000
                    inst = call(client, "POST", "flows", "trigger", {"flowId": flow_id, "triggerTime": trigger_ms})
                    inst_id = inst["flowInstanceId"]
                    watch = {"flowId": flow_id, "fromTriggerTime": trigger_ms - 60_000,
                             "toTriggerTime": trigger_ms + 60_000, "pagination": {"pageNo": 1, "pageSize": 5}}
                    while True:
                        # Watched the way a dashboard watches runs: List Flow Instances, which
                        # shows the status without the 1,000-node graph Get Flow Instance builds.
                        (data,) = [item for item in call(client, "POST", "flowInstances", "search", watch)["flowInsts"]
                                   if item["instanceId"] == inst_id]
                        if data["status"] == 1:
                            break
                        if data["status"] in (-1, 4, 7, 8) or time.perf_counter() - began > args.timeout:
                            raise RuntimeError(f"{shape}: instance ended {data['statusDesc']}")
                        time.sleep(args.poll)
                    polled.append(time.perf_counter() - began)
                    cpu_ours.append(process_cpu_s(server.pid) - cpu_began)
                    ours.append((succeeded_ms(home, inst_id) - began_ms) / 1000)
                    wall, cpu = timed_floor(args.tasks, args.parallelism)
                    floors.append(wall)
                    cpu_floor.append(cpu)
                    dag.append(timed_floor(args.tasks, args.parallelism, shape_relations(shape, args.tasks))[0])
                a, b, c = statistics.median(ours), statistics.median(floors), statistics.median(dag)
                seen = statistics.median(polled)
                cpu_a, cpu_b = (1000 * statistics.median(values) / args.tasks for values in (cpu_ours, cpu_floor))
                print(f"{shape:10} {a:10.2f} {b:9.2f} {a / b:7.2f} {1000 * (a - b) / args.tasks:8.2f} "
                      f"{c:12.2f} {a / c:7.2f} {cpu_a:12.2f} {cpu_b:10.2f} {seen:9.2f}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        if not args.keep_home:
            # ~6,000 files and folders a run, which would pile up in /tmp. Removing them makes
            # creating files 5-20x slower here for minutes (docs/performance.md, "Engine"), so
            # a series of runs keeps its homes until it ends (bench/engine_ab.sh).
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
