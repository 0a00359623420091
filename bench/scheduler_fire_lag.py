"""Scheduler fire lag: from a fire's due time to its flow instance row committed, on SQLite.

A fresh temporary home (SQLite, WAL, migrated), `--flows` (10,000) periodic workflows stored
through the catalogue's real Import Flow code path (batched transactions; the database file is
kept in a cache under the temp folder and copied on later runs) and enabled. Each flow
fires once every `--period` seconds, the flows spread evenly over the period, so
`flows / period` fires fall due every second (10,000 / 60 s ≈ 167 per second). The real
`Scheduler` (system clock) then runs for `--seconds`; for every fire it reports
`committed_at - due` (the clock read right after the commit of the transaction that created the
instance through the engine's `create_flow_instance`). Fires due in the first `--warmup` seconds
are left out (start-up: the full load of every flow). No engine runs, so instances stay INIT:
this is the scheduler's overhead alone.

With `--finished N`, N finished flow instances (status SUCCESS, one task instance each) of
those flows are stored first, so the instance tables and their indexes have a realistic size;
the start-up load (which reads the newest scheduled instance per flow) is timed too. With several
sizes (`--finished 0,1000000`) a home is made for each and they are measured in turn, `--rounds`
times (0, 1M, 0, 1M, ...): this machine's load changes within minutes, and measuring them
alternately in one run is what makes their medians comparable. The homes are deleted at the end
(`--keep` keeps them).

    .venv/bin/python bench/scheduler_fire_lag.py [--flows 10000] [--period 60] [--seconds 40]
        [--warmup 5] [--finished 0[,1000000]] [--rounds 1] [--batch-size 200] [--json out.json]
        [--keep] [--no-cache]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from batchd.api.context import Caller
from batchd.catalog import directories as dirs
from batchd.catalog import flows as catalog
from batchd.config import Settings
from batchd.scheduler.service import Fired, Scheduler
from batchd.store import identity
from batchd.store.database import Database, open_database

IMPORT_BATCH = 500
CACHE = Path(tempfile.gettempdir()) / "batchd-bench-scheduler-cache"  # imported flows, by size


ALICE = Caller(org_id="o1", user_id="u1", user_name="alice")


def cron_for(index: int, period: int) -> str:
    """A cron firing every `period` seconds (60 * a divisor of 60), offset by `index`."""
    offset = index % period
    minutes = period // 60
    if minutes <= 1:
        return f"{offset % 60} * * * * ?"
    if minutes == 60:
        return f"{offset % 60} {offset // 60} * * * ?"
    return f"{offset % 60} {offset // 60}/{minutes} * * * ?"


def flow_json(cron: str) -> dict[str, Any]:
    return {
        "type": 1, "cycle": "mi", "cron": cron, "owners": "alice", "startTime": "2020-01-01",
        "parameters": [{"key": "region", "value": "eu"}],
        "tasks": [
            {"name": "extract", "type": "COMMAND", "cmd": "echo extract ${region}"},
            {"name": "load", "type": "COMMAND", "cmd": "echo load", "retryLimit": 2, "retryInterval": 5},
            {"name": "report", "type": "PYTHON", "cmd": "print('report')"},
        ],
        "relations": [
            {"sourceTaskName": "extract", "targetTaskName": "load", "rerun": True},
            {"sourceTaskName": "load", "targetTaskName": "report", "rerun": True},
        ],
    }


async def store_flows(database: Database, count: int, period: int) -> list[int]:
    async with database.transaction() as conn:
        await identity.create_org(conn, "o1", "o1")
        await identity.add_user(conn, org_id="o1", user_id="u1", name="alice")
        root = (await dirs.list_directories(conn, ALICE))[0]["key"]
    flow_ids: list[int] = []
    for first in range(0, count, IMPORT_BATCH):
        async with database.transaction() as conn:
            for i in range(first, min(count, first + IMPORT_BATCH)):
                body = {"flowName": f"flow-{i:06d}", "dirId": root, "flowJson": flow_json(cron_for(i, period))}
                flow_ids.append((await catalog.import_flow(conn, ALICE, body))["flowId"])
    return flow_ids


def store_finished(db_path: Path, flow_ids: list[int], count: int, period: int, *, newest: bool = False) -> None:
    """`count` finished instances (and one task instance each): one per flow per day back from
    now; with `newest`, instead each flow's last fire before now (origin schedule), as a running
    scheduler would have left it, so the restart measured below has no missed fire to make."""
    conn = sqlite3.connect(db_path)
    definition = json.dumps(flow_json("0 * * * * ?"))
    day_ms = 86_400_000
    now_s = int(time.time())
    rows, tasks = [], []
    for n in range(count):
        index = n % len(flow_ids)
        flow_id = flow_ids[index]
        if newest:
            trigger, origin = (now_s - (now_s - index % period) % period) * 1000, "schedule"
        else:
            trigger = now_s * 1000 - (n // len(flow_ids) + 1) * day_ms
            origin = "schedule" if n % 4 else "manual"
        suffix = time.strftime("%Y%m%d%H%M%S", time.gmtime(trigger / 1000))
        rows.append((f"{flow_id}-{suffix}", flow_id, "o1", f"flow-{flow_id}", 1, "alice", "alice", origin, 1, 0,
                     trigger, "2020-01-01", trigger, trigger + 5000, trigger, trigger + 5000, definition, "[]"))
        tasks.append((f"t{flow_id}-{suffix}", f"{flow_id}-{suffix}", 1, "extract", 1, 1, trigger, trigger + 5000, trigger))
        if len(rows) == 50_000:
            insert_finished(conn, rows, tasks)
            rows, tasks = [], []
    insert_finished(conn, rows, tasks)
    # Fold the gigabyte of WAL into the database now, or the scheduler's first commits do it.
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def insert_finished(conn: sqlite3.Connection, rows: list[tuple[Any, ...]], tasks: list[tuple[Any, ...]]) -> None:
    with conn:
        conn.executemany(
            "INSERT INTO flow_instances (instance_id, flow_id, org_id, flow_name, flow_type, creator, owners, origin,"
            " status, is_cancelled, trigger_time, cal_dt, start_time, end_time, created_at, updated_at, definition,"
            " parameters) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        conn.executemany(
            "INSERT INTO task_instances (instance_id, flow_instance_id, task_id, task_name, status, run_num,"
            " start_time, end_time, created_at) VALUES (?,?,?,?,?,?,?,?,?)", tasks)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def prepare(args: argparse.Namespace, finished: int) -> tuple[Settings, float]:
    """A fresh home with the imported flows, `finished` finished instances, every flow enabled;
    (its settings, set-up seconds)."""
    home = Path(tempfile.mkdtemp(prefix="batchd-bench-scheduler-"))
    settings = Settings(home=home, database_url=f"sqlite+aiosqlite:///{home / 'batchd.db'}", timezone="UTC")
    cached = CACHE / f"flows{args.flows}-period{args.period}.db"
    began = time.perf_counter()
    if cached.exists() and not args.no_cache:  # the same imported flows, copied: no 3-minute set-up
        shutil.copy(cached, home / "batchd.db")
        database = open_database(settings)
        await database.migrate()
        flow_ids = list(range(1, args.flows + 1))
    else:
        database = open_database(settings)
        await database.migrate()
        flow_ids = await store_flows(database, args.flows, args.period)
        await database.dispose()
        CACHE.mkdir(parents=True, exist_ok=True)
        shutil.copy(home / "batchd.db", cached)
        database = open_database(settings)
    setup_s = time.perf_counter() - began
    if finished:
        began = time.perf_counter()
        await database.dispose()  # no pooled connection may pin the WAL during the bulk insert
        store_finished(home / "batchd.db", flow_ids, finished - len(flow_ids), args.period)
        store_finished(home / "batchd.db", flow_ids, len(flow_ids), args.period, newest=True)
        print(f"stored {finished:,} finished instances in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    enable_at_ms = int(time.time() * 1000)
    async with database.transaction() as conn:
        await conn.exec_driver_sql(f"UPDATE flows SET active = 1, update_time = {enable_at_ms}")
    await database.dispose()
    return settings, setup_s


async def measure(args: argparse.Namespace, settings: Settings) -> tuple[list[float], int, float]:
    """Run the scheduler on `settings`' home for `--seconds`; (lags in ms of the fires due after
    the warm-up, instances made among them, start-up load seconds)."""
    database = open_database(settings)
    fired: list[Fired] = []
    scheduler = Scheduler(database, settings, batch_size=args.batch_size, on_fired=fired.append)
    started = time.time()
    task = asyncio.create_task(scheduler.run())
    while scheduler.next_due() is None and not task.done():
        await asyncio.sleep(0.01)
    load_s = time.time() - started
    await asyncio.sleep(args.seconds)
    await scheduler.stop()
    await task
    await database.dispose()
    measured = [f for f in fired if f.fire_time >= started + args.warmup]
    lags_ms = [(f.committed_at - f.fire_time) * 1000 for f in measured]
    return lags_ms, sum(1 for f in measured if f.instance_id is not None), load_s


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every history size of `--finished`, `--rounds` times in turn (0, 1M, 0, 1M, ...), so a
    change in the machine's load falls on all of them alike; one result per size."""
    homes = [(finished, *await prepare(args, finished)) for finished in args.finished]
    lags: dict[int, list[float]] = {finished: [] for finished, *_ in homes}
    medians: dict[int, list[float]] = {finished: [] for finished, *_ in homes}
    made: dict[int, int] = dict.fromkeys(lags, 0)
    loads: dict[int, list[float]] = {finished: [] for finished, *_ in homes}
    try:
        for _ in range(args.rounds):
            for finished, settings, _setup in homes:
                round_lags, round_made, load_s = await measure(args, settings)
                lags[finished] += round_lags
                made[finished] += round_made
                loads[finished].append(round(load_s, 2))
                if round_lags:
                    medians[finished].append(round(statistics.median(round_lags), 1))
                print(f"finished {finished:,}: p50 {medians[finished][-1] if round_lags else None} ms, "
                      f"{len(round_lags)} fires", file=sys.stderr)
    finally:
        if not args.keep:
            for _, settings, _ in homes:
                shutil.rmtree(settings.home, ignore_errors=True)
    results = []
    for finished, _, setup_s in homes:
        values = lags[finished]
        results.append({
            "flows": args.flows, "period_s": args.period, "fires_per_s": round(args.flows / args.period, 1),
            "finished_instances": finished, "batch_size": args.batch_size, "rounds": args.rounds,
            "measured_s": args.rounds * (args.seconds - args.warmup), "fires": len(values),
            "instances_made": made[finished],
            "lag_ms_p50": round(statistics.median(values), 1) if values else None,
            "lag_ms_p99": round(percentile(values, 0.99), 1) if values else None,
            "lag_ms_max": round(max(values), 1) if values else None,
            "lag_ms_p50_per_round": medians[finished],
            "startup_load_s": loads[finished], "import_setup_s": round(setup_s, 1),
        })
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", type=int, default=10_000)
    parser.add_argument("--period", type=int, default=60, help="seconds between two fires of one flow (60*k, k | 60)")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--finished", type=lambda text: [int(n) for n in text.split(",")], default=[0],
                        help="finished instances stored; several, comma-separated, are measured in turn")
    parser.add_argument("--rounds", type=int, default=1, help="times each --finished size is measured, in turn")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the temporary homes (deleted by default)")
    parser.add_argument("--no-cache", action="store_true", help=f"import the flows again (cache: {CACHE})")
    args = parser.parse_args()
    if args.period % 60 or 60 % (args.period // 60):
        parser.error("--period must be 60 times a divisor of 60")
    results = asyncio.run(run(args))
    text = json.dumps(results[0] if len(results) == 1 else results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
