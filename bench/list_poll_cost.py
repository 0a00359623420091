"""What a dashboard polling List Flow Instances costs the server: CPU and wall time per call.

A real `batchd serve --insecure` on a fresh SQLite home; one 1,000-task layered workflow
(bench/engine_dag.py's) imported and run once; then `--rounds` rounds of `--calls` List Flow
Instances calls, filtered and paged as engine_dag.py's watcher asks, one after the other. The
server's CPU comes from /proc (user + system, children excluded).

    .venv/bin/python bench/list_poll_cost.py [--calls 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_dag import call, flow_json, process_cpu_s, ready_client, start_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="batchd-bench-list-"))
    server, port = start_server(home, dict(os.environ), subprocess.DEVNULL)
    try:
        with ready_client(port) as client:
            root = call(client, "GET", "directories", "listWorkFlowDirs")[0]["key"]
            flow_id = call(client, "POST", "flows", "import", {
                "flowName": "listed", "desc": "", "dirId": root, "flowJson": flow_json("layered", 1000)})["flowId"]
            trigger_ms = int(time.time() * 1000) - 600_000
            call(client, "POST", "flows", "trigger", {"flowId": flow_id, "triggerTime": trigger_ms})
            watch = {"flowId": flow_id, "fromTriggerTime": trigger_ms - 60_000, "toTriggerTime": trigger_ms + 60_000,
                     "pagination": {"pageNo": 1, "pageSize": 5}}
            while call(client, "POST", "flowInstances", "search", watch)["flowInsts"][0]["status"] != 1:
                time.sleep(0.2)
            for _ in range(50):  # warm-up
                call(client, "POST", "flowInstances", "search", watch)
            print(f"{'round':>5} {'server cpu ms/call':>19} {'wall ms/call':>13}")
            for round_no in range(args.rounds):
                cpu, began = process_cpu_s(server.pid), time.perf_counter()
                for _ in range(args.calls):
                    call(client, "POST", "flowInstances", "search", watch)
                wall = time.perf_counter() - began
                print(f"{round_no + 1:5} {1000 * (process_cpu_s(server.pid) - cpu) / args.calls:19.2f} "
                      f"{1000 * wall / args.calls:13.2f}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
