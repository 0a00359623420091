"""History: does a large store of finished instances slow the API down? Over real HTTP.

A fresh temporary home (SQLite, WAL), `--flows` (1,000) periodic 3-task workflows imported
through the catalogue's real code path (disabled, so the scheduler stays quiet and only the
measured calls touch the database), then `batchd serve --insecure` as a child process. The same
calls are measured twice on the same database: first with a small history
(`--baseline-per-flow` 40 finished instances per workflow: enough that the listed page 2 of 20 is
full), then after `--finished` (1,000,000 in all) finished instances (status SUCCESS, one task
instance each, one per flow per day back from now; a quarter manual) were inserted with bulk SQL
and the server was restarted. Per operation, `--requests` sequential calls on one keep-alive connection; p50/p99
as the client sees them:

- Get Flow Instance of a random instance (of the triggered ones, and of the finished ones);
- List Flow Instances of one workflow, page 2 of 20 sorted by triggerTime DESC (and by
  startTime ASC), with the total count;
- Search Flow (the catalogue's query, for comparison: it does not read instances);
- Trigger Flow (a new manual instance; distinct minutes, so none collides).

    flock /tmp/batchd-bench.lock .venv/bin/python bench/history.py [--flows 1000]
        [--finished 1000000] [--requests 300] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from catalog_api import Client, start_server, stop_server  # noqa: E402
from scheduler_fire_lag import ALICE, flow_json, insert_finished  # noqa: E402

from batchd.catalog import directories as dirs  # noqa: E402
from batchd.catalog import flows as catalog  # noqa: E402
from batchd.config import Settings  # noqa: E402
from batchd.store import identity  # noqa: E402
from batchd.store.database import open_database  # noqa: E402

CREDS = {"userId": ALICE.user_id, "orgId": ALICE.org_id}


def store_flows(home: Path, count: int) -> list[int]:
    settings = Settings.load(home=home, environ={})

    async def run() -> list[int]:
        database = open_database(settings)
        await database.migrate()
        try:
            async with database.transaction() as conn:
                await identity.create_org(conn, ALICE.org_id, ALICE.org_id)
                await identity.add_user(conn, org_id=ALICE.org_id, user_id=ALICE.user_id, name=ALICE.user_name)
                root = (await dirs.list_directories(conn, ALICE))[0]["key"]
            flow_ids = []
            for first in range(0, count, 500):
                async with database.transaction() as conn:
                    for i in range(first, min(count, first + 500)):
                        body = {"flowName": f"hist-{i:06d}", "dirId": root, "flowJson": flow_json("0 0 3 * * ?")}
                        flow_ids.append((await catalog.import_flow(conn, ALICE, body))["flowId"])
            return flow_ids
        finally:
            await database.dispose()

    return asyncio.run(run())


def store_finished(db_path: Path, flow_ids: list[int], count: int, skip_days: int = 0) -> list[str]:
    """`count` finished instances with bulk SQL, one per workflow per day going back from
    `skip_days` days ago; returns a sample of their ids."""
    conn = sqlite3.connect(db_path)
    definition = conn.execute("SELECT definition FROM flows WHERE flow_id = ?", (flow_ids[0],)).fetchone()[0]
    day_ms = 86_400_000
    now_ms = int(time.time()) // 60 * 60_000
    rows, tasks, sample = [], [], []
    for n in range(count):
        flow_id = flow_ids[n % len(flow_ids)]
        trigger = now_ms - (skip_days + n // len(flow_ids) + 1) * day_ms - 3600_000
        origin = "schedule" if n % 4 else "manual"
        suffix = time.strftime("%Y%m%d%H%M%S", time.gmtime(trigger / 1000))
        instance_id = f"{flow_id}-{suffix}"
        if n % 997 == 0:
            sample.append(instance_id)
        rows.append((instance_id, flow_id, ALICE.org_id, f"hist-{flow_id}", 1, "alice", "alice", origin, 1, 0,
                     trigger, "2020-01-01", trigger, trigger + 5000, trigger, trigger + 5000, definition,
                     '[{"key":"region","value":"eu"}]'))
        tasks.append((f"9{flow_id}-{suffix}", instance_id, 1, "extract", 1, 1, trigger, trigger + 5000, trigger))
        if len(rows) == 50_000:
            insert_finished(conn, rows, tasks)
            rows, tasks = [], []
    insert_finished(conn, rows, tasks)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return sample


def latency(calls: list[Any]) -> dict[str, float]:
    times = []
    for call in calls:
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"p50": times[len(times) // 2], "p99": times[min(len(times) - 1, int(0.99 * len(times)))],
            "n": len(times)}


def measure(home: Path, flow_ids: list[int], finished_sample: list[str], requests: int,
            minute_base: int) -> dict[str, dict[str, float]]:
    process, base_url = start_server(home, insecure=True)
    try:
        client = Client(base_url, CREDS, signed=False)
        rng = random.Random(11)
        minutes = iter(range(10**6))

        def trigger() -> Any:
            flow_id = rng.choice(flow_ids)
            return client.call("POST", "flows", "trigger", body={
                "flowId": flow_id, "triggerTime": minute_base + next(minutes) * 60_000})

        made = [trigger() for _ in range(20)]  # warm-up, and instances to get
        made_ids = [m["flowInstanceId"] for m in made]

        def get(ids: list[str]) -> Any:
            return lambda: client.call("GET", "flowInstances", "get", query={"flowInstId": rng.choice(ids)})

        def listing(field: str, order: str) -> Any:
            return lambda: client.call("POST", "flowInstances", "search", body={
                "flowId": rng.choice(flow_ids),
                "pagination": {"pageNo": 2, "pageSize": 20, "sorters": [{"field": field, "order": order}]}})

        def search() -> Any:
            return client.call("POST", "flows", "search", body={
                "expression": "hist-00", "pagination": {"pageNo": 1, "pageSize": 20}})

        operations = {
            "get_triggered": get(made_ids),
            "list_by_trigger_time_desc": listing("triggerTime", "DESC"),
            "list_by_start_time_asc": listing("startTime", "ASC"),
            "search_flow": search,
            "trigger_flow": trigger,
        }
        if finished_sample:
            operations["get_finished"] = get(finished_sample)
        for call in operations.values():
            for _ in range(5):
                call()
        return {name: latency([call] * requests) for name, call in operations.items()}
    finally:
        stop_server(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flows", type=int, default=1000)
    parser.add_argument("--finished", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--baseline-per-flow", type=int, default=40,
                        help="finished instances per workflow in the baseline (enough for page 2 of 20)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="batchd-bench-history-") as tmp:
        home = Path(tmp)
        started = time.perf_counter()
        flow_ids = store_flows(home, args.flows)
        print(f"stored {args.flows} workflows in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        # Manual triggers far in the future, in distinct minutes for each phase.
        base = (int(time.time()) // 60 + 10 * 24 * 60) * 60_000
        results: dict[str, Any] = {"flows": args.flows, "finished": args.finished, "requests": args.requests}
        # The baseline is a small history that still fills the listed pages: with none, page 2
        # of a workflow's instances is empty and List compares 20 items with none.
        small = args.baseline_per_flow * len(flow_ids)
        small_sample = store_finished(home / "batchd.db", flow_ids, small)
        results["baseline_finished"] = small
        results["baseline"] = measure(home, flow_ids, small_sample, args.requests, base)
        started = time.perf_counter()
        sample = store_finished(home / "batchd.db", flow_ids, args.finished - small, args.baseline_per_flow)
        results["insert_s"] = round(time.perf_counter() - started, 1)
        print(f"inserted {args.finished} finished instances in {results['insert_s']} s", file=sys.stderr)
        results["history"] = measure(home, flow_ids, sample, args.requests, base + 10**6 * 60_000)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
