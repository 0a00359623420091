"""What starting one child costs the parent: `subprocess.Popen` against batchd's `posix_spawnp`.

Each way starts `true` the way an attempt starts (own session, stdin /dev/null, stdout and
stderr to a log, a working directory, batchd's environment plus a few variables), waits for it,
and repeats. Printed per way and round: the median wall time of the start call and the parent's
CPU per child (`time.process_time`, so the child's own work is not counted). The ways alternate,
so drift on a noisy machine hits both.

    .venv/bin/python bench/spawn_cost.py [--children 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from batchd.runner.posix_spawn import spawner


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--children", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="batchd-bench-spawn-"))
    env = {**os.environ, "BATCHD_TASK_INSTANCE_ID": "f-202401010000-t0001", "BATCHD_ATTEMPT": "1",
           "PWD": str(workdir)}
    fast = spawner()
    if fast is None:
        raise SystemExit("posix_spawnp with chdir and closefrom needs glibc 2.34+")
    with open(workdir / "log", "ab", buffering=0) as log:

        def popen() -> Callable[[], object]:
            child = subprocess.Popen(["true"], stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=workdir,
                                     env=env, start_new_session=True)
            return child.wait

        def posix_spawnp() -> Callable[[], object]:
            child = fast.spawn(["true"], output=log.fileno(), cwd=str(workdir), env=env)
            return lambda: os.waitpid(child.pid, 0)

        print(f"{'way':14} {'start median us':>16} {'parent cpu us/child':>20}")
        for _ in range(args.rounds):
            for name, start in (("Popen", popen), ("posix_spawnp", posix_spawnp)):
                walls = []
                cpu = time.process_time()
                for _ in range(args.children):
                    began = time.perf_counter()
                    wait = start()
                    walls.append(time.perf_counter() - began)
                    wait()
                per_child = (time.process_time() - cpu) / args.children
                print(f"{name:14} {1e6 * statistics.median(walls):16.0f} {1e6 * per_child:20.0f}", flush=True)


if __name__ == "__main__":
    main()
