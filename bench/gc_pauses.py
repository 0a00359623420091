"""Pauses of Python's garbage collector inside `batchd serve` while it runs a 1,000-task workflow.

A full collection (generation 2) walks every object the process holds: after start-up that is
~150,000 (modules, tables, the app), and each such pass stops the event loop for tens of
milliseconds while tasks are waiting to start. `batchd serve` therefore freezes what start-up
built (`gc.freeze()` in `batchd.api.app._freeze_startup_objects`). This bench runs the server
twice, without the freeze (the same code, the freeze replaced by a no-op) and with it, imports
the 10-wide layered workflow of bench/engine_dag.py, runs it `--rounds` times, and prints each
generation's collections (count/ms), the full ones that fell inside a run and the longest of
them, and the run times (polled every 50 ms).

    .venv/bin/python bench/gc_pauses.py [--rounds 3]

The server is started as `python bench/gc_pauses.py --serve LOG ...batchd serve options`, which
records each collection (`gc.callbacks`) and writes the record to LOG when asked (SIGUSR1).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from engine_dag import call, flow_json, free_port, ready_client  # noqa: E402


def serve(record: Path, freeze: bool, argv: list[str]) -> None:
    """Run `batchd serve argv` with every collection timed into `record` on SIGUSR1."""
    pauses: list[tuple[int, float, float]] = []  # (generation, wall clock at start, seconds)
    began: list[float] = [0.0]

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            pauses.append((info["generation"], time.time(), time.perf_counter() - began[0]))

    def dump(*_: object) -> None:
        record.write_text(json.dumps(pauses))

    gc.callbacks.append(timed)
    signal.signal(signal.SIGUSR1, dump)
    if not freeze:
        import batchd.api.app
        batchd.api.app._freeze_startup_objects = lambda: None  # the server as it was without it
    from batchd.cli import main
    sys.argv = ["batchd", "serve", *argv]
    main()


def measure(freeze: bool, rounds: int
            ) -> tuple[list[float], list[tuple[int, float, float]], list[tuple[float, float]], Path]:
    """(run seconds, collections, (start, end) wall clock of each run, its home) of one server."""
    home = Path(tempfile.mkdtemp(prefix="batchd-bench-gc-"))
    record = home / "gc.json"
    batchd = [sys.executable, "-m", "batchd"]
    subprocess.run([*batchd, "admin", "bootstrap", "--home", str(home), "--org", "o", "--user", "u", "--json"],
                   check=True, capture_output=True)
    port = free_port()
    env = {**os.environ, "BATCHD_PARALLELISM": "2"}
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(record), *(["--no-freeze"] if not freeze else []),
                               "--", "--insecure", "--home", str(home), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    runs: list[float] = []
    windows: list[tuple[float, float]] = []
    try:
        with ready_client(port) as client:
            root = call(client, "GET", "directories", "listWorkFlowDirs")[0]["key"]
            flow_id = call(client, "POST", "flows", "import", {
                "flowName": "gc", "desc": "", "dirId": root, "flowJson": flow_json("layered", 1000)})["flowId"]
            for round_no in range(rounds):
                trigger_ms = int(time.time() * 1000) - 600_000 * (round_no + 1)
                start, began = time.time(), time.perf_counter()
                instance = call(client, "POST", "flows", "trigger", {"flowId": flow_id, "triggerTime": trigger_ms})
                watch = {"flowId": flow_id, "fromTriggerTime": trigger_ms - 60_000,
                         "toTriggerTime": trigger_ms + 60_000, "pagination": {"pageNo": 1, "pageSize": 5}}
                while True:
                    (item,) = [i for i in call(client, "POST", "flowInstances", "search", watch)["flowInsts"]
                               if i["instanceId"] == instance["flowInstanceId"]]
                    if item["status"] == 1:
                        break
                    time.sleep(0.05)
                runs.append(time.perf_counter() - began)
                windows.append((start, time.time()))
            server.send_signal(signal.SIGUSR1)
            for _ in range(100):
                if record.exists():
                    break
                time.sleep(0.05)
            pauses = [tuple(item) for item in json.loads(record.read_text())]
    finally:
        server.terminate()
        server.wait(timeout=30)
    return runs, pauses, windows, home  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--no-freeze", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("serve_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, not args.no_freeze, args.serve_args)
        return
    print(f"{'server':14} {'runs s':>16} {'gen0 n/ms':>11} {'gen1 n/ms':>11} {'gen2 n/ms':>11} "
          f"{'gen2 in runs':>13} {'longest ms':>11}")
    homes = []  # removed at the end: removing thousands of files slows creating them for minutes
    for freeze in (False, True):
        runs, pauses, windows, home = measure(freeze, args.rounds)
        homes.append(home)
        cells = []
        for generation in (0, 1, 2):
            times = [seconds for gen, _, seconds in pauses if gen == generation]
            cells.append(f"{len(times)}/{1000 * sum(times):.0f}")
        in_runs = [seconds for gen, at, seconds in pauses
                   if gen == 2 and any(start <= at <= end for start, end in windows)]
        longest = 1000 * max(in_runs, default=0.0)
        label = "with freeze" if freeze else "without freeze"
        print(f"{label:14} {' '.join(f'{run:.2f}' for run in runs):>16} {cells[0]:>11} {cells[1]:>11} "
              f"{cells[2]:>11} {len(in_runs):>13} {longest:>11.1f}", flush=True)
        print(f"{'':14} median run {statistics.median(runs):.2f} s", flush=True)
    for home in homes:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
