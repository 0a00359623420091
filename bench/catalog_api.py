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
        [--variant NAME[:tree=DIR][,http=h11|httptools][,loop=asyncio|uvloop] ...]

Side by side (A/B in one run, since this machine's noise moves whole runs by a millisecond):
each `--variant` is a server of its own on the same database, all started together; the latency
calls of an operation alternate between the variants call by call (so each meets the same noise),
then each variant's throughput is measured in turn. `tree=DIR` runs the server from another
source tree (e.g. `git archive` of an older commit: its `src` goes first on PYTHONPATH);
`http=`/`loop=` force uvicorn's HTTP parser and event loop whatever `batchd serve` chooses.
Without `--variant` there is one server, as it is. Each server's actual loop and HTTP parser,
read from its memory map, are printed.

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
        try:
            connection.request(method, path, body=content, headers=headers)
            response = connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # The server closed an idle keep-alive connection (uvicorn: after 5 s, e.g. while
            # another variant was measured) before this request reached it: reconnect once.
            connection.close()
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

# `batchd serve` with uvicorn.run's `http`/`loop` forced from BENCH_UVICORN (JSON), for variants.
LAUNCHER = """
import json, os, sys, uvicorn
forced, run = json.loads(os.environ.get("BENCH_UVICORN") or "{}"), uvicorn.run
def forced_run(*args, **kwargs):
    return run(*args, **{**kwargs, **forced})
uvicorn.run = forced_run
from batchd.cli import main
main()
"""


class Variant:
    """One server to measure (`--variant NAME[:tree=DIR][,http=...][,loop=...]`)."""

    def __init__(self, spec: str) -> None:
        self.name, _, options = spec.partition(":")
        self.tree: Path | None = None
        self.uvicorn: dict[str, str] = {}
        for option in filter(None, options.split(",")):
            key, _, value = option.partition("=")
            if key == "tree":
                self.tree = Path(value).resolve()
                if not (self.tree / "src" / "batchd").is_dir():
                    raise SystemExit(f"--variant {spec}: {self.tree}/src/batchd is not a batchd source tree")
            elif key in ("http", "loop"):
                self.uvicorn[key] = value
            else:
                raise SystemExit(f"--variant {spec}: unknown option {key!r} (tree, http, loop)")

    def command(self) -> list[str]:
        return [sys.executable, "-c", LAUNCHER] if self.uvicorn else BATCHD

    def environment(self) -> dict[str, str]:
        env = {"BENCH_UVICORN": json.dumps(self.uvicorn)} if self.uvicorn else {}
        if self.tree is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.tree / "src"), os.environ.get("PYTHONPATH")]))
        return env


def server_stack(pid: int) -> str:
    """The event loop and HTTP parser a running server has loaded (from /proc/PID/maps)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return "?"
    loop = "uvloop" if "/uvloop/" in maps else "asyncio"
    return f"{loop}+{'httptools' if '/httptools/' in maps else 'h11'}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(home: Path, *, insecure: bool, variant: Variant | None = None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "BATCHD_HOME": str(home), **(variant.environment() if variant else {})}
    env.pop("BATCHD_DATABASE_URL", None)
    command = [*(variant.command() if variant else BATCHD), "serve", "--home", str(home), "--port", str(port)]
    command += ["--insecure"] if insecure else []
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


def measure(calls: dict[str, list[Call]], clients: int,
            connect: dict[str, Callable[[], http.client.HTTPConnection]]) -> dict[str, dict[str, float]]:
    """Per variant: latency of the first half of its `calls` one after the other, then throughput
    of the second half on `clients` threads. The latency calls of the variants alternate call by
    call, so that every variant meets the same moments of this machine's noise."""
    names = list(calls)
    half = {name: len(batch) // 2 for name, batch in calls.items()}
    latencies: dict[str, list[float]] = {name: [] for name in names}
    for i in range(max(half.values())):
        for name in names if i % 2 == 0 else names[::-1]:
            if i < half[name]:
                started = time.perf_counter()
                calls[name][i](None)
                latencies[name].append((time.perf_counter() - started) * 1000)
    results = {}
    for name in names:
        concurrent = calls[name][half[name]:]
        chunks = [concurrent[i::clients] for i in range(clients)]

        def worker(chunk: list[Call], connection: http.client.HTTPConnection) -> None:
            try:
                for call in chunk:
                    call(connection)
            finally:
                connection.close()

        threads = [threading.Thread(target=worker, args=(chunk, connect[name]())) for chunk in chunks]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        ordered = sorted(latencies[name])
        results[name] = {"p50": percentile(ordered, 50), "p95": percentile(ordered, 95),
                         "p99": percentile(ordered, 99), "rps": len(concurrent) / elapsed}
    return results


def run_mode(base_urls: dict[str, str], creds: dict[str, str], dir_id: str, *, signed: bool, rounds: int,
             requests: int, clients: int, stored: int, label: str) -> dict[str, dict[str, dict[str, float]]]:
    """Medians per variant and operation; `base_urls`: one server per variant, measured in turn."""
    counter = iter(range(10**9))
    bodies = [flow_json(100_000 + i) for i in range(20)]
    expressions = ["stored-01", "stored-0042", "nightly", "stored-9", "zz-no-match", "flow-"]
    rng = random.Random(7)
    flow_ids: list[int] = []

    def makers(client: Client) -> dict[str, Callable[[int], Call]]:
        def import_call(i: int) -> Call:
            name = f"{label}-import-{next(counter)}"
            content = json.dumps(import_body(name, dir_id, bodies[i % 20])).encode()
            return lambda http: client.call("POST", "flows", "import", body=content, http=http)

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

        return {"floor": floor_call, "import": import_call, "get": get_call, "search": search_call}

    clients_of = {name: Client(url, creds, signed=signed) for name, url in base_urls.items()}
    variants = {name: makers(client) for name, client in clients_of.items()}
    first = next(iter(clients_of.values()))
    flow_ids += [int(f["flowId"]) for f in first.call("POST", "flows", "search", body={"expression": "stored-"})]
    assert len(flow_ids) >= stored, f"only {len(flow_ids)} stored workflows"
    # Warm-up: first calls pay for imports, caches and connection set-up.
    for ops in variants.values():
        for make in ops.values():
            for i in range(10):
                make(i)(None)
    names = list(variants)
    operations = list(variants[names[0]])
    per_round: dict[str, dict[str, list[dict[str, float]]]] = {v: {op: [] for op in operations} for v in names}
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for op in operations:
            measured = measure({v: [variants[v][op](i) for i in range(2 * requests)] for v in order}, clients,
                               {v: clients_of[v].connection for v in order})
            for variant, row in measured.items():
                per_round[variant][op].append(row)
        for variant in names:
            tag = label if len(names) == 1 else f"{label} {variant}"
            print(f"  {tag} round {r + 1}/{rounds}: " + ", ".join(
                f"{op} p50 {rows[-1]['p50']:.2f} ms" for op, rows in per_round[variant].items()), file=sys.stderr)
    return {v: {op: {k: statistics.median(row[k] for row in rows) for k in rows[0]} for op, rows in ops.items()}
            for v, ops in per_round.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300, help="calls per operation per round, for each of latency and throughput")
    parser.add_argument("--stored", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--modes", default="signed,insecure")
    parser.add_argument("--home", type=Path, help="reuse this home (default: a fresh temporary one)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME[:tree=DIR][,http=h11|httptools][,loop=asyncio|uvloop]: one server of several "
                             "measured side by side (module docstring); repeat it")
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
        variants = [Variant(spec) for spec in args.variant] or [None]
        results: dict[str, Any] = {}
        stacks: dict[str, str] = {}
        for mode in args.modes.split(","):
            servers = {}
            try:
                for variant in variants:
                    process, base_url = start_server(home, insecure=mode == "insecure", variant=variant)
                    name = variant.name if variant else ""
                    servers[name] = (process, base_url)
                    stacks[name] = server_stack(process.pid)
                results[mode] = run_mode({name: url for name, (_, url) in servers.items()}, creds, dir_id,
                                         signed=mode == "signed", rounds=args.rounds, requests=args.requests,
                                         clients=args.clients, stored=args.stored, label=f"{mode}-{int(time.time())}")
            finally:
                for process, _ in servers.values():
                    stop_server(process)

    print(f"{args.stored:,} stored workflows of {TASKS} tasks; medians of {args.rounds} rounds; "
          f"latency: {args.requests} sequential calls; throughput: {args.requests} calls on {args.clients} clients")
    for spec in args.variant:
        name = spec.partition(":")[0]
        print(f"variant {name}: {spec}, server on {stacks.get(name, '?')}")
    if not args.variant:
        print(f"server on {stacks.get('', '?')}")
    width = max([7, *(len(spec.partition(":")[0]) for spec in args.variant)])
    print(f"{'mode':9} {'variant':{width}} {'operation':8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>8}  "
          "target p50")
    for mode, by_variant in results.items():
        for operation in next(iter(by_variant.values())):
            for variant, ops in by_variant.items():
                row = ops[operation]
                target = TARGETS_MS.get(operation)
                verdict = "" if target is None else f"< {target:g} ms " + ("met" if row["p50"] < target else "MISSED")
                print(f"{mode:9} {variant or '-':{width}} {operation:8} {row['p50']:8.2f} {row['p95']:8.2f} "
                      f"{row['p99']:8.2f} {row['rps']:8.0f}  {verdict}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
