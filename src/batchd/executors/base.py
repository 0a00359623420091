"""The contract between the engine and whatever runs attempts (a local pool, a queue, ...)."""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

from batchd.runner import AttemptOutcome, AttemptSpec
from batchd.runner.plugins import OnStarted


@runtime_checkable
class Executor(Protocol):
    """Runs attempts with bounded parallelism.

    - `start()` before the first `submit`; `stop()` once, at shutdown.
    - `submit` waits for a free slot, runs the attempt, and returns its outcome. It returns at
      once, with `cancelled=True`, when `cancel` is set while it waits for a slot. The engine
      decides what the outcome means (`batchd.runner.classify`) and about retries.
    - `stop()` refuses new submissions (they return `cancelled=True` with `error` saying the
      executor stopped), sets the `cancel` event of every pending submission so running groups
      are killed and queued ones never start, and returns when all of them have returned.
      A caller tells a shutdown from its own cancel by knowing whether it set the event.

    An executor whose attempts run as processes of this machine, carrying the environment
    the engine gives them, says so with a true class attribute `runs_here`: only then may the
    engine start an attempt before its claim commits (`Engine._start_ahead`), since only then
    can crash recovery find and kill it by its owner marker.
    """

    async def start(self) -> None: ...

    async def submit(
        self,
        spec: AttemptSpec,
        on_started: OnStarted | None = None,
        cancel: asyncio.Event | None = None,
    ) -> AttemptOutcome: ...

    async def stop(self) -> None: ...
