"""Catalogue API latency and throughput: Import Flow, Get Flow and Search Flow over real HTTP.

A fresh temporary home, `batchd admin bootstrap`, then `batchd serve` (SQLite, WAL) as a child
process, called like real clients do: a token from the token service and every call signed
(spec §6). With `--modes signed,insecure` the same measurements are repeated against
`batchd serve --insecure` on the same database, to show what signing costs.

Workflows are realistic: 50 tasks (shell, python, data integration), a DAG of ~70 relations,
flow parameters, `runMode` on every task, a daily cron. Before measuring, `--stored` (10,000)
such workflows are stored through the real Import Flow code path in-process (the catalogue's
`import_flow` in batched transactions, to keep the set-up to a minute), so Get and Search run
against a realistic table.

Per round and operation: `--requests` sequential calls on one keep-alive connection (latency:
p50/p95/p99 of each call as the client sees it), then the same number spread over `--clients`
threads (throughput: requests/s). Medians over `--rounds` rounds are reported. The client is the
standard library's `http.client` on keep-alive connections: httpx, used until 2026-11-25, spent
~1.5 ms of its own per call, which the server's latency should not include. For the same reason
Import's 28 KB body is JSON-encoded before the timed call (since 2026-11-25 12:45 UTC; ~0.3 ms);
signing stays in it (it needs the call's timestamp). Run:

    .venv/bin/python bench/catalog_api.py [--rounds 5] [--requests 300] [--stored 10000]
        [--clients 4] [--modes signed,insecure] [--json out.json]

The server's JSON access log (one line per request) goes to /dev/null.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from batchd.config import Settings

API = "/batch-processing-service/v2.1"
ROOT = Path(__file__).resolve().parent.parent
BATCHD = [sys.executable, "-m", "batchd"]
TASKS = 50
TARGETS_MS = {"import": 5.0, "get": 2.0, "search": 20.0}
# `floor`: Get Current Time, the cheapest call there is (no database work but the transaction):
# what HTTP, the framework, signing and the access log cost before any catalogue work.


# --- realistic workflows -----------------------------------------------------------------------


def flow_json(seed: int, tasks: int = TASKS) -> dict[str, Any]:
    """A daily workflow of `tasks` tasks: a layered DAG (each task after 1-2 earlier ones)."""
    rng = random.Random(seed)
    kinds = ["SHELL", "PYTHON", "DATA_INTEGRATION", "COMMAND"]
    task_list = []
    for i in range(tasks):
        run_mode = {"taskMode": 1 + (i % 2), "cpu": 0.5, "memory": 1, "maxParallel": 0, "keyType": 0,
                    "datasourceId": 0, "path": "", "content": ""}
        task_list.append({
            "name": f"task_{i:02d}",
            "resource": "default",
            "type": kinds[i % len(kinds)],
            "cmd": f"python etl.py --step {i} --date ${{bizdate}} --region ${{region}}",
            "submitter": "etl",
            "filePackage": "",
            "cron": "",
            "priorityLevel": i % 5,
            "timeout": 3600,
            "retryLimit": 3,
            "retryInterval": 60,
            "successCode": "0",
            "asLink": False,
            "runMode": json.dumps(run_mode),
            "syncType": 1,
        })
    relations = []
    for i in range(1, tasks):
        for source in sorted(rng.sample(range(i), min(i, rng.choice([1, 1, 2])))):
            relations.append({"sourceTaskName": f"task_{source:02d}", "targetTaskName": f"task_{i:02d}", "rerun": 0})
    return {
        "cycle": "D",
        "cron": "0 30 2 * * ? *",
        "parameters": json.dumps([{"key": "bizdate", "value": "${yyyyMMdd-1d}"}, {"key": "region", "value": "eu"}]),
        "submitter": "etl",
        "owners": "",
        "visitors": "",
        "type": 1,
        "desc": f"nightly load {seed}",
        "tasks": task_list,
        "relations": relations,
        "startTime": "2026-01-01",
        "flowLinks": [],
        "syncType": 1,
        "linkRelations": [],
        "alertMode": 0,
        "taskLinks": [],
    }


def import_body(name: str, dir_id: str, definition: dict[str, Any]) -> dict[str, Any]:
    return {"flowName": name, "desc": "", "dirId": dir_id, "flowJson": definition}


# --- an EnOS client (spec §6), independent of the server's code --------------------------------


class Client:
    def __init__(self, base_url: str, creds: dict[str, str], *, signed: bool) -> None:
        self.base_url, self.creds, self.signed = base_url, creds, signed
        self.http = self.connection()
        self._last_ts = 0
        self._lock = threading.Lock()
        self.token = self._get_token() if signed else ""

    def connection(self) -> http.client.HTTPConnection:
        """A keep-alive connection to the server (one per thread: they are not shared)."""
        address = urlsplit(self.base_url)
        return http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=60)

    def _timestamp(self) -> int:
        with self._lock:  # strictly increasing: identical calls in one ms would be replays
            self._last_ts = max(time.time_ns() // 1_000_000, self._last_ts + 1)
            return self._last_ts

    def _exchange(self, connection: http.client.HTTPConnection, method: str, path: str, content: bytes,
                  headers: dict[str, str]) -> tuple[int, Any]:
        connection.request(method, path, body=content, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())

    def _get_token(self) -> str:
        ts = self._timestamp()
        secret, key = self.creds["secretKey"], self.creds["accessKey"]
        encryption = hashlib.sha256(f"{key}{ts}{secret}".encode()).hexdigest()
        body = json.dumps({"appKey": key, "timestamp": ts, "encryption": encryption}).encode()
        _, answer = self._exchange(self.http, "POST", "/apim-token-service/v2.0/token/get", body,
                                   {"Content-Type": "application/json"})
        assert answer["status"] == 0, answer
        return answer["data"]["accessToken"]

    def call(self, method: str, resource: str, action: str, *, query: dict[str, Any] | None = None,
             body: Any = None, http: http.client.HTTPConnection | None = None) -> Any:
        params = {"action": action, "userId": self.creds["userId"], "orgId": self.creds["orgId"]}
        params.update({k: str(v) for k, v in (query or {}).items()})
        # bytes: a body encoded beforehand (outside the timed call: encoding is the client's work)
        content = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json;charset=UTF-8"}
        if self.signed:
            ts = self._timestamp()
            signed_params = "".join(f"{name}{params[name]}" for name in sorted(params))
            signature = hashlib.sha256(
                self.token.encode() + signed_params.encode() + content + f"{ts}{self.creds['secretKey']}".encode()
            ).hexdigest()
            headers |= {"apim-accesstoken": self.token, "apim-timestamp": str(ts), "apim-signature": signature}
        status, envelope = self._exchange(http or self.http, method, f"{API}/{resource}?{urlencode(params)}",
                                          content, headers)
        if status != 200 or envelope["code"] != 0:
            raise RuntimeError(f"{action}: HTTP {status} {envelope}")
        return envelope["data"]


# --- the server --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(home: Path, *, insecure: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "BATCHD_HOME": str(home)}
    env.pop("BATCHD_DATABASE_URL", None)
    command = [*BATCHD, "serve", "--home", str(home), "--port", str(port)] + (["--insecure"] if insecure else [])
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            probe.request("GET", "/readyz")
            if probe.getresponse().status == 200:
                return process, base_url
        except OSError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit("batchd serve did not become ready")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def bootstrap(home: Path) -> dict[str, str]:
    out = subprocess.run(
        [*BATCHD, "admin", "bootstrap", "--home", str(home), "--org", "o-bench", "--user", "u-bench",
         "--name", "bench", "--json"],
        check=True, capture_output=True, text=True, env={**os.environ, "BATCHD_HOME": str(home)},
    ).stdout
    return json.loads(out)


def store_workflows(home: Path, creds: dict[str, str], dir_id: str, count: int, batch: int = 250) -> None:
    """`count` workflows through the catalogue's Import Flow, in-process, `batch` per transaction."""
    from batchd.catalog.flows import import_flow
    from batchd.api.context import Caller
    from batchd.store.database import open_database

    settings = Settings.load(home=home, environ={})
    caller = Caller(org_id=creds["orgId"], user_id=creds["userId"], user_name="bench")

    async def run() -> None:
        database = open_database(settings)
        await database.migrate()
        try:
            for start in range(0, count, batch):
                async with database.transaction() as conn:
                    for n in range(start, min(start + batch, count)):
                        await import_flow(conn, caller, import_body(f"stored-{n:05d}", dir_id, flow_json(n)))
        finally:
            await database.dispose()

    asyncio.run(run())


# --- measuring ---------------------------------------------------------------------------------


def percentile(sorted_ms: list[float], p: float) -> float:
    index = min(len(sorted_ms) - 1, max(0, round(p / 100 * len(sorted_ms) + 0.5) - 1))
    return sorted_ms[index]


Call = Callable[[http.client.HTTPConnection | None], Any]


def measure(calls: list[Call], clients: int, connect: Callable[[], http.client.HTTPConnection]) -> dict[str, float]:
    """Latency of `calls` one after the other, then throughput of the same calls on `clients` threads."""
    half = len(calls) // 2
    sequential, concurrent = calls[:half], calls[half:]
    latencies = []
    for call in sequential:
        started = time.perf_counter()
        call(None)
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    chunks = [concurrent[i::clients] for i in range(clients)]

    def worker(chunk: list[Call]) -> None:
        connection = connect()
        try:
            for call in chunk:
                call(connection)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(chunk,)) for chunk in chunks]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {
        "p50": percentile(latencies, 50), "p95": percentile(latencies, 95), "p99": percentile(latencies, 99),
        "rps": len(concurrent) / elapsed,
    }


def run_mode(base_url: str, creds: dict[str, str], dir_id: str, *, signed: bool, rounds: int, requests: int,
             clients: int, stored: int, label: str) -> dict[str, dict[str, float]]:
    client = Client(base_url, creds, signed=signed)
    counter = iter(range(10**9))
    bodies = [flow_json(100_000 + i) for i in range(20)]
    expressions = ["stored-01", "stored-0042", "nightly", "stored-9", "zz-no-match", "flow-"]

    def import_call(i: int) -> Call:
        name = f"{label}-import-{next(counter)}"
        content = json.dumps(import_body(name, dir_id, bodies[i % 20])).encode()
        return lambda http: client.call("POST", "flows", "import", body=content, http=http)

    rng = random.Random(7)
    flow_ids = [int(f["flowId"]) for f in client.call("POST", "flows", "search", body={"expression": "stored-"})]
    assert len(flow_ids) >= stored, f"only {len(flow_ids)} stored workflows"

    def get_call(i: int) -> Call:
        flow_id = rng.choice(flow_ids)
        return lambda http: client.call("GET", "flows", "get", query={"flowId": flow_id}, http=http)

    def search_call(i: int) -> Call:
        body = {"expression": expressions[i % len(expressions)],
                "pagination": {"pageNo": 1 + i % 3, "pageSize": 20,
                               "sorters": [{"field": "updateTime", "order": "DESC"}]}}
        return lambda http: client.call("POST", "flows", "search", body=body, http=http)

    def floor_call(i: int) -> Call:
        return lambda http: client.call("GET", "time", "getCurrentTime", http=http)

    makers = {"floor": floor_call, "import": import_call, "get": get_call, "search": search_call}
    # Warm-up: first calls pay for imports, caches and connection set-up.
    for make in makers.values():
        for i in range(10):
            make(i)(None)
    per_round: dict[str, list[dict[str, float]]] = {name: [] for name in makers}
    for r in range(rounds):
        for name, make in makers.items():
            per_round[name].append(measure([make(i) for i in range(2 * requests)], clients, client.connection))
        print(f"  {label} round {r + 1}/{rounds}: " + ", ".join(
            f"{name} p50 {rows[-1]['p50']:.2f} ms" for name, rows in per_round.items()), file=sys.stderr)
    return {name: {k: statistics.median(row[k] for row in rows) for k in rows[0]} for name, rows in per_round.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300, help="calls per operation per round, for each of latency and throughput")
    parser.add_argument("--stored", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--modes", default="signed,insecure")
    parser.add_argument("--home", type=Path, help="reuse this home (default: a fresh temporary one)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="batchd-bench-") as tmp:
        home = args.home or Path(tmp)
        creds = bootstrap(home)
        process, base_url = start_server(home, insecure=False)
        try:
            root = Client(base_url, creds, signed=True).call("GET", "directories", "listWorkFlowDirs")
            dir_id = root[0]["key"]
        finally:
            stop_server(process)
        existing = 0
        if args.home:
            process, base_url = start_server(home, insecure=True)
            try:
                existing = len(Client(base_url, creds, signed=False).call(
                    "POST", "flows", "search", body={"expression": "stored-"}))
            finally:
                stop_server(process)
        if existing < args.stored:
            started = time.perf_counter()
            store_workflows(home, creds, dir_id, args.stored - existing)
            print(f"stored {args.stored - existing} workflows of {TASKS} tasks in "
                  f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
        results: dict[str, Any] = {}
        for mode in args.modes.split(","):
            process, base_url = start_server(home, insecure=mode == "insecure")
            try:
                results[mode] = run_mode(base_url, creds, dir_id, signed=mode == "signed", rounds=args.rounds,
                                         requests=args.requests, clients=args.clients, stored=args.stored,
                                         label=f"{mode}-{int(time.time())}")
            finally:
                stop_server(process)

    print(f"{args.stored:,} stored workflows of {TASKS} tasks; medians of {args.rounds} rounds; "
          f"latency: {args.requests} sequential calls; throughput: {args.requests} calls on {args.clients} clients")
    print(f"{'mode':9} {'operation':8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>8}  target p50")
    for mode, ops in results.items():
        for name, row in ops.items():
            target = TARGETS_MS.get(name)
            verdict = "" if target is None else f"< {target:g} ms " + ("met" if row["p50"] < target else "MISSED")
            print(f"{mode:9} {name:8} {row['p50']:8.2f} {row['p95']:8.2f} {row['p99']:8.2f} {row['rps']:8.0f}  "
                  f"{verdict}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
