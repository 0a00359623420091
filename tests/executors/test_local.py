"""LocalExecutor with real processes: the parallelism bound, cancel while queued, stop."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from pathlib import Path

import pytest

from batchd.executors import Executor, LocalExecutor
from batchd.executors.local import STOPPED
from batchd.runner import AttemptOutcome, AttemptSpec, attempt_header
from batchd.runner.process import live_members


def spec(tmp_path: Path, n: int, command: str) -> AttemptSpec:
    now = dt.datetime(2019, 8, 8, tzinfo=dt.timezone.utc)
    return AttemptSpec(
        task_instance_id=f"1-{n}",
        attempt=1,
        task_type="SHELL",
        command=command,
        timeout_seconds=20,
        workdir=tmp_path / f"w{n}",
        log_path=tmp_path / "logs" / f"{n}.log",
        header=attempt_header(1, 1, f"1-{n}", command, "t", now),
        kill_grace_seconds=1.0,
    )


def test_default_parallelism_is_the_cpu_count() -> None:
    assert LocalExecutor().parallelism == (os.cpu_count() or 1)
    assert isinstance(LocalExecutor(3), Executor)
    with pytest.raises(ValueError, match="at least 1"):
        LocalExecutor(0)


def test_submit_before_start_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="before start"):
        asyncio.run(LocalExecutor(1).submit(spec(tmp_path, 0, "true")))


def test_never_more_than_parallelism_attempts_at_once(tmp_path: Path) -> None:
    running = 0
    most = 0

    async def scenario() -> list[AttemptOutcome]:
        executor = LocalExecutor(2)
        await executor.start()

        async def started(pid: int) -> None:
            nonlocal running, most
            running += 1
            most = max(most, running)

        async def one(n: int) -> AttemptOutcome:
            nonlocal running
            outcome = await executor.submit(spec(tmp_path, n, "sleep 0.2"), started)
            running -= 1
            return outcome

        outcomes = await asyncio.gather(*(one(n) for n in range(6)))
        await executor.stop()
        return outcomes

    begin = time.monotonic()
    outcomes = asyncio.run(scenario())
    assert [o.exit_code for o in outcomes] == [0] * 6
    assert most == 2
    assert time.monotonic() - begin >= 0.6  # three rounds of two


def test_cancel_while_queued_returns_at_once_without_starting(tmp_path: Path) -> None:
    async def scenario() -> tuple[AttemptOutcome, float]:
        executor = LocalExecutor(1)
        await executor.start()
        busy = asyncio.create_task(executor.submit(spec(tmp_path, 0, "sleep 100")))
        await asyncio.sleep(0.1)
        cancel = asyncio.Event()
        queued = asyncio.create_task(executor.submit(spec(tmp_path, 1, "echo no"), None, cancel))
        await asyncio.sleep(0.1)
        begin = time.monotonic()
        cancel.set()
        outcome = await queued
        waited = time.monotonic() - begin
        await executor.stop()
        assert (await busy).cancelled
        return outcome, waited

    outcome, waited = asyncio.run(scenario())
    assert outcome.cancelled and outcome.exit_code is None and outcome.error is None
    assert waited < 0.5
    assert not (tmp_path / "logs" / "1.log").exists()


def test_stop_kills_running_attempts_and_drops_queued_ones(tmp_path: Path) -> None:
    pids: list[int] = []

    async def scenario() -> tuple[list[AttemptOutcome], AttemptOutcome]:
        executor = LocalExecutor(2)
        await executor.start()

        async def started(pid: int) -> None:
            pids.append(pid)

        jobs = [
            asyncio.create_task(executor.submit(spec(tmp_path, n, "sleep 100 & sleep 100"), started))
            for n in range(4)
        ]
        while len(pids) < 2:
            await asyncio.sleep(0.01)
        await executor.stop()
        assert all(job.done() for job in jobs)
        late = await executor.submit(spec(tmp_path, 9, "true"))
        return [job.result() for job in jobs], late

    begin = time.monotonic()
    outcomes, late = asyncio.run(scenario())
    assert time.monotonic() - begin < 5
    ran = [o for o in outcomes if o.pid is not None]
    dropped = [o for o in outcomes if o.pid is None]
    assert len(ran) == 2 and len(dropped) == 2
    assert all(o.cancelled and o.exit_code == -15 for o in ran)
    assert all(o.cancelled and o.exit_code is None and o.error == STOPPED for o in dropped)
    assert late.cancelled and late.error == STOPPED
    for pid in pids:
        assert live_members(pid) == []


def test_one_cancel_event_may_serve_several_attempts(tmp_path: Path) -> None:
    async def scenario() -> list[AttemptOutcome]:
        executor = LocalExecutor(2)
        await executor.start()
        flow_cancel = asyncio.Event()
        jobs = [
            asyncio.create_task(executor.submit(spec(tmp_path, n, "sleep 100"), None, flow_cancel))
            for n in range(3)
        ]
        await asyncio.sleep(0.2)
        flow_cancel.set()
        outcomes = await asyncio.gather(*jobs)
        await executor.stop()
        return outcomes

    outcomes = asyncio.run(scenario())
    assert all(o.cancelled for o in outcomes)
    assert sorted(o.exit_code is None for o in outcomes) == [False, False, True]


def test_a_caller_cancelled_while_queued_frees_nothing_it_did_not_take(tmp_path: Path) -> None:
    async def scenario() -> AttemptOutcome:
        executor = LocalExecutor(1)
        await executor.start()
        busy = asyncio.create_task(executor.submit(spec(tmp_path, 0, "sleep 0.3")))
        await asyncio.sleep(0.05)
        queued = asyncio.create_task(executor.submit(spec(tmp_path, 1, "sleep 100")))
        await asyncio.sleep(0.05)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        await busy
        outcome = await executor.submit(spec(tmp_path, 2, "echo after"))
        assert executor._slots is not None and not executor._slots.locked()
        await executor.stop()
        return outcome

    assert asyncio.run(scenario()).exit_code == 0
