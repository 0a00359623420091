"""`LocalExecutor`: attempts as child processes of this batchd, at most `parallelism` at a time.

The work happens in subprocesses, so an asyncio semaphore around `run_attempt` is the whole pool:
no worker processes, no queues, no result channel. That keeps the overhead per attempt to a few
event-loop steps (see bench/executor_floor.py).
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter

from batchd.clock import now_ms
from batchd.runner import AttemptOutcome, AttemptSpec, run_attempt
from batchd.runner.records import CancelEvent
from batchd.runner.plugins import OnStarted

STOPPED = "executor stopped before the attempt started"


class LocalExecutor:
    """Bounded local pool; see `batchd.executors.base.Executor` for the contract."""

    #: Attempts run as children of this process, on this machine (`Executor`'s docstring).
    runs_here = True

    def __init__(self, parallelism: int | None = None) -> None:
        parallelism = parallelism if parallelism is not None else (os.cpu_count() or 1)
        if parallelism < 1:
            raise ValueError(f"parallelism must be at least 1, got {parallelism}")
        self.parallelism = parallelism
        self._slots: asyncio.Semaphore | None = None
        self._pending: Counter[asyncio.Event] = Counter()  # one event may serve several
        self._drained: asyncio.Event | None = None
        self._stopping = False

    async def start(self) -> None:
        """Create the pool. Submitting before `start` is a programming error (RuntimeError)."""
        self._slots = asyncio.Semaphore(self.parallelism)
        self._drained = asyncio.Event()
        self._drained.set()
        self._stopping = False

    async def submit(
        self,
        spec: AttemptSpec,
        on_started: OnStarted | None = None,
        cancel: asyncio.Event | None = None,
    ) -> AttemptOutcome:
        """Wait for a slot (or for `cancel`), run the attempt, return its outcome."""
        if self._slots is None or self._drained is None:
            raise RuntimeError("LocalExecutor.submit() called before start()")
        if self._stopping:
            return _not_started(STOPPED)
        cancel = cancel if cancel is not None else CancelEvent()
        self._pending[cancel] += 1
        self._drained.clear()
        try:
            if not await self._acquire(cancel):
                return _not_started(STOPPED if self._stopping else None)
            try:
                return await run_attempt(spec, on_started=on_started, cancel=cancel)
            finally:
                self._slots.release()
        finally:
            self._pending[cancel] -= 1
            if not self._pending[cancel]:
                del self._pending[cancel]
            if not self._pending:
                self._drained.set()

    async def _acquire(self, cancel: asyncio.Event) -> bool:
        """Take a slot; False if `cancel` was set first (then no slot is held)."""
        assert self._slots is not None
        if not self._slots.locked():
            await self._slots.acquire()  # free slot: no waiting, no extra tasks
            return True
        acquiring = asyncio.ensure_future(self._slots.acquire())
        cancelled = asyncio.ensure_future(cancel.wait())
        try:
            await asyncio.wait({acquiring, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # our caller was cancelled: leave holding no slot
            cancelled.cancel()
            if acquiring.done() and not acquiring.cancelled():
                self._slots.release()
            acquiring.cancel()
            raise
        cancelled.cancel()
        if not acquiring.done():
            acquiring.cancel()
            return False
        if cancel.is_set():  # got the slot just as cancel came: give it back
            self._slots.release()
            return False
        return True

    async def stop(self) -> None:
        """Cancel everything pending (running groups are killed) and wait until it has returned."""
        self._stopping = True
        for event in list(self._pending):
            event.set()
        if self._drained is not None:
            await self._drained.wait()


def _not_started(error: str | None) -> AttemptOutcome:
    moment = now_ms()
    return AttemptOutcome(
        exit_code=None, cancelled=True, error=error, started_ms=moment, ended_ms=moment
    )
