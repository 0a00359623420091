"""Executor floor: what batchd adds on top of spawning processes (`python bench/executor_floor.py`).

The question: 1,000 no-op tasks through `LocalExecutor` vs a plain asyncio loop spawning the
same 1,000 processes with the same parallelism (target: within 1.5x). Each case below is one
way to run N tasks; its docstring is its report line. Reported: median wall time of REPEAT runs,
per-task cost, and the ratio to the floor that spawns the same program.

Options: `--tasks N` (1000), `--parallelism P` (CPU count), `--repeat R` (5). Workdirs and logs
go to a temporary folder: set TMPDIR (e.g. `TMPDIR=/dev/shm`) to see how much of an attempt's
cost is the file system rather than batchd. The CPU column is this process's CPU (every thread,
so asyncio's child-watcher threads too); it is steadier than wall time on a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from batchd.executors import LocalExecutor  # noqa: E402
from batchd.runner import AttemptSpec, attempt_header  # noqa: E402


async def _floor(argv: list[str], tasks: int, parallelism: int, root: Path | None = None) -> None:
    """Spawn `argv` `tasks` times; with `root`, each in its own new workdir, output to a log file."""
    slots = asyncio.Semaphore(parallelism)

    async def one(i: int) -> None:
        async with slots:
            if root is None:
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, start_new_session=True,
                )
                await proc.wait()
                return
            workdir = root / f"w{i}"
            workdir.mkdir()
            with open(root / f"{i}.log", "ab", buffering=0) as log:
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=workdir,
                    start_new_session=True,
                )
                await proc.wait()

    await asyncio.gather(*(one(i) for i in range(tasks)))


async def floor_true(tasks: int, parallelism: int, _root: Path) -> None:
    """floor: asyncio.create_subprocess_exec('true') under a semaphore"""
    await _floor(["true"], tasks, parallelism)


async def floor_true_files(tasks: int, parallelism: int, root: Path) -> None:
    """floor + the files every attempt needs: mkdir a workdir, open a log file as stdout/stderr"""
    await _floor(["true"], tasks, parallelism, root)


async def floor_bash(tasks: int, parallelism: int, _root: Path) -> None:
    """floor: asyncio.create_subprocess_exec('bash', '-c', 'true;') under a semaphore"""
    await _floor(["bash", "-c", "true;"], tasks, parallelism)


async def _batchd(command: str, tasks: int, parallelism: int, root: Path) -> None:
    executor = LocalExecutor(parallelism)
    await executor.start()
    now = dt.datetime.now(dt.timezone.utc)

    async def one(i: int) -> None:
        spec = AttemptSpec(
            task_instance_id=f"1-{i}", attempt=1, task_type="SHELL", command=command,
            timeout_seconds=300, workdir=root / f"w{i}", log_path=root / f"logs/{i}.log",
            header=attempt_header(1, 1, f"1-{i}", command, "bench", now),
        )

        async def started(pid: int) -> None:
            pass

        outcome = await executor.submit(spec, started, asyncio.Event())
        assert outcome.exit_code == 0, outcome

    await asyncio.gather(*(one(i) for i in range(tasks)))
    await executor.stop()


async def batchd_true(tasks: int, parallelism: int, root: Path) -> None:
    """batchd: LocalExecutor, SHELL task `true` (exec'd directly), header + log file, workdir, timeout and cancel armed"""
    await _batchd("true", tasks, parallelism, root)


async def batchd_bash(tasks: int, parallelism: int, root: Path) -> None:
    """batchd: LocalExecutor, SHELL task `true;` (needs bash: script file in the workdir)"""
    await _batchd("true;", tasks, parallelism, root)


Case = Callable[[int, int, Path], Awaitable[None]]
#: (case, the floors it is compared with)
CASES: list[tuple[Case, tuple[Case, ...]]] = [
    (floor_true, ()),
    (floor_true_files, (floor_true,)),
    (batchd_true, (floor_true, floor_true_files)),
    (floor_bash, ()),
    (batchd_bash, (floor_bash,)),
]


def _parent_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--parallelism", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{args.tasks} tasks, parallelism {args.parallelism}, median of {args.repeat} "
          f"interleaved rounds, Python {sys.version.split()[0]}, load {os.getloadavg()[0]:.1f}")
    walls: dict[Case, list[float]] = {case: [] for case, _ in CASES}
    cpus: dict[Case, list[float]] = {case: [] for case, _ in CASES}
    for _ in range(args.repeat):  # interleaved, so a noisy neighbour hurts every case alike
        for case, _floor_case in CASES:
            with tempfile.TemporaryDirectory() as root:
                cpu, begin = _parent_cpu(), time.perf_counter()
                asyncio.run(case(args.tasks, args.parallelism, Path(root)))
                walls[case].append(time.perf_counter() - begin)
                cpus[case].append(_parent_cpu() - cpu)
    print("case: wall, wall/task, CPU/task of this process (all threads), then wall and CPU")
    print("ratios to each floor the case is compared with")
    for case, floors in CASES:
        wall, cpu = statistics.median(walls[case]), statistics.median(cpus[case])
        ratios = "".join(
            f"  {wall / statistics.median(walls[f]):.2f}x/{cpu / statistics.median(cpus[f]):.2f}x"
            f" vs {f.__name__}"
            for f in floors
        )
        print(f"{case.__name__}: {wall:.3f} s, {wall / args.tasks * 1e3:.3f} ms, "
              f"{cpu / args.tasks * 1e3:.3f} ms CPU{ratios}\n    {case.__doc__}")


if __name__ == "__main__":
    main()
