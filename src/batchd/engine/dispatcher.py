"""The `Engine`: one loop per batchd process that moves instances along and runs their tasks.

The hot path is an attempt's end: one transaction records its outcome (which, for a success,
makes the direct downstream tasks READY and may finish the flow) and claims the next READY tasks
for the slots free now, which start at once. A chain of tasks therefore moves with one database
transaction per task and no help from the loop.

The loop does everything else. Each turn, in this order:

1. crash recovery (every `RECOVERY_EVERY_S`): attempts whose batchd is gone are declared dead,
   their leftover process group killed first, then retried per `retryLimit` (`recovery`);
2. the scheduling pass (`progress.schedule_pass`): admit queued flow instances and evaluate their
   tasks, release WAIT tasks whose time came — one transaction, serialised across processes on
   PostgreSQL; at start and every `SWEEP_EVERY_S`, the sweep re-evaluates every running instance
   (`SWEEP_CHUNK` instances per transaction), the net under the hot path;
3. cancel checks: any attempt this process runs whose task is no longer RUNNING as that attempt
   (cancelled by any process, its workflow deleted, or claimed anew by another batchd after
   this one was frozen past its lease) gets its `cancel` event set, and the runner kills it;
4. claims: as many READY tasks as the executor has free slots, each compare-and-set to RUNNING
   with an attempt row owned by this process, then handed to the executor.

The loop sleeps until `wake()` (a new instance, a cancel, an attempt that ended its flow or did
not succeed) or `POLL_S`, whichever comes first, so retries and future trigger times are
noticed within `POLL_S`. The lease of this process's open attempts is renewed every `LEASE_RENEW_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from batchd.clock import now_ms
from batchd.config import Settings
from batchd.engine import instances, progress, recovery
from batchd.engine.progress import INTERRUPTED, Claim, DefinitionCache, Owner, Result
from batchd.engine.status import Status
from batchd.executors.base import Executor
from batchd.runner.header import Clock, attempt_header
from batchd.runner.process import OWNER_MARKER
from batchd.runner.records import PYTHON_KIND, SHELL_KINDS, AttemptOutcome, AttemptSpec, CancelEvent
from batchd.runner.variables import substitute
from batchd.runner.verdict import Verdict, classify
from batchd.store.database import Database, after_commit
from batchd.store.tables import task_attempts, task_instances

log = logging.getLogger("batchd.engine")

POLL_S = 0.5
LEASE_MS = 30_000
LEASE_RENEW_S = 5.0
RECOVERY_EVERY_S = 2.0
SWEEP_EVERY_S = 5.0
SWEEP_CHUNK = 50
RECORD_TRIES = 5  # an outcome is recorded again after a database error, with growing pauses
#: Task kinds whose attempts are processes of this machine (the runner's own), not a plugin's.
LOCAL_KINDS = SHELL_KINDS | {PYTHON_KIND}

_engines: set[Engine] = set()
T = TypeVar("T")


def wake_all(delay_s: float = 0.05) -> None:
    """Wake every engine of this process once the caller's transaction has committed: at the
    commit when the caller is inside a `Database.transaction()` (a trigger, a cancel), else
    after `delay_s`."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    if not after_commit(_wake_engines):
        loop.call_later(delay_s, _wake_engines)


def _wake_engines() -> None:
    for engine in list(_engines):
        engine.wake()


class Engine:
    """Runs flow instances of one database with one executor; `start()` / `stop()` from the app."""

    def __init__(self, database: Database, settings: Settings, executor: Executor, *, slots: int) -> None:
        self.database = database
        self.settings = settings
        self.executor = executor
        self.slots = slots
        self.owner = Owner(owner=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
                           host=socket.gethostname(), pid=os.getpid())
        self.cache = DefinitionCache()
        self._clock = Clock(settings.zone)  # the headers' current time
        self._wake = asyncio.Event()
        self._writes = asyncio.Lock()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._running: dict[str, tuple[int, asyncio.Event, asyncio.Task[None]]] = {}
        self._paths: dict[str, tuple[Path, Path]] = {}  # `_folders`
        # (flow instance, task name) of each attempt in `_running`: its task is certainly not done
        self._names: dict[str, tuple[str, str]] = {}
        # successors' specs made ahead, and whether their log file was made too (`_make_ready`)
        self._specs: dict[str, tuple[AttemptSpec, bool]] = {}
        self._unclaimed: set[str] = set()  # attempts started ahead of their claim's commit (`_start_ahead`)
        # Only where the attempt's processes run on this machine may one start before its claim
        # commits: after a crash, recovery finds them by their owner marker and kills them.
        self._ahead = bool(getattr(executor, "runs_here", False))
        self._last_recovery = 0.0
        self._last_renewal = 0.0
        self._last_sweep: float | None = None

    # --- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        instances.set_default_zone(self.settings.zone)
        await self._recover()
        self._loop_task = asyncio.create_task(self._loop(), name="batchd-engine")
        _engines.add(self)

    async def stop(self) -> None:
        """Stop claiming, kill the attempts still running and put their tasks back (no retry is
        consumed: a clean stop is not the task's fault), then return."""
        _engines.discard(self)
        self._stopping = True
        self.wake()
        if self._loop_task is not None:
            await self._loop_task
        for _, cancel, _task in self._running.values():
            cancel.set()
        if self._running:
            await asyncio.gather(*(task for _, _, task in self._running.values()), return_exceptions=True)

    def wake(self) -> None:
        self._wake.set()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction of this engine, queued behind the engine's other ones first.

        SQLite has one writer; when two of this process's connections ask at once, the loser
        sleeps in SQLite's busy handler (1, 2, 5, 10 ... ms steps) long after the lock is free.
        Queueing here wakes the next one the moment the previous commits.
        """
        async with self._writes, self.database.transaction() as conn:
            yield conn

    async def _write(self, work: Callable[[sa.Connection], T]) -> T:
        """`work` in one write transaction on the database's worker thread (`progress`'s steps
        are synchronous: a transaction of ten statements makes one trip), queued like
        `_transaction`."""
        async with self._writes:
            return await self.database.run_write(work)

    # --- the loop -----------------------------------------------------------------------------

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                await self._turn()
            except Exception:  # noqa: BLE001 - the loop must survive a bad turn; the next one retries
                log.exception("engine turn failed")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=POLL_S)
            except TimeoutError:
                pass
            self._wake.clear()

    async def _turn(self) -> None:
        clock = asyncio.get_running_loop().time()
        if clock - self._last_recovery >= RECOVERY_EVERY_S:
            self._last_recovery = clock
            await self._recover()
        if clock - self._last_renewal >= LEASE_RENEW_S and self._running:
            self._last_renewal = clock
            async with self._transaction() as conn:
                await conn.execute(sa.update(task_attempts).where(
                    task_attempts.c.owner == self.owner.owner, task_attempts.c.ended_at.is_(None)
                ).values(lease_until=now_ms() + LEASE_MS))
        await self._write(lambda conn: progress.schedule_pass(conn, now_ms(), self.cache))
        if self._last_sweep is None or clock - self._last_sweep >= SWEEP_EVERY_S:
            self._last_sweep = clock
            await self._sweep()
        await self._check_cancels()
        if self._stopping:
            return
        async with self._writes:  # free slots counted and filled under the lock: no over-claim
            free = self.slots - len(self._running)
            self._start(await self.database.run_write(lambda conn: self._claim(conn, free), short=True))

    async def _sweep(self) -> None:
        """`progress.sweep` over every running instance, `SWEEP_CHUNK` instances per transaction,
        so that a sweep over thousands of running instances never holds the write lock long."""
        async with self.database.read_transaction() as conn:
            running = await conn.run_sync(progress.running_instances)
        for first in range(0, len(running), SWEEP_CHUNK):
            chunk = running[first:first + SWEEP_CHUNK]
            await self._write(lambda conn: progress.sweep(conn, chunk, now_ms(), self.cache))  # noqa: B023

    def _claim(self, conn: sa.Connection, free: int) -> list[Claim]:
        return progress.claim_ready(conn, self.owner, free, now_ms(), LEASE_MS, self.cache, self._log_path)

    def _start(self, claims: list[Claim]) -> None:
        for claim in claims:
            cancel = CancelEvent()
            task = asyncio.create_task(self._run(claim, cancel), name=f"attempt-{claim.task_instance_id}")
            self._remember(claim, cancel, task)
            self._make_ready(claim)

    async def _recover(self) -> None:
        async with self._transaction() as conn:
            dead = await recovery.declare_dead_attempts(conn, self.owner, now_ms(), self.cache)
        if dead:
            log.warning("declared %d attempt(s) dead: %s", len(dead), ", ".join(dead))

    async def _check_cancels(self) -> None:
        """Set the cancel event of each attempt whose task is no longer RUNNING as that attempt:
        cancelled or deleted, or run again by another batchd (this one was frozen past its
        lease, and a batchd on another machine declared the attempt dead and claimed the task
        anew: RUNNING, but with a higher run number).

        Only the attempts running when the read began are judged: attempts started while it ran
        (an outcome's claims) are not in its answer, and reading "no row" as "cancelled" killed
        them at random (found by the engine bench)."""
        if not self._running:
            return
        asked = {instance_id: attempt for instance_id, (attempt, _, _) in self._running.items()
                 if instance_id not in self._unclaimed}  # not RUNNING yet, by design
        async with self.database.read_transaction() as conn:
            rows = {instance_id: (status, run_num) for instance_id, status, run_num in (await conn.execute(
                sa.select(task_instances.c.instance_id, task_instances.c.status, task_instances.c.run_num)
                .where(task_instances.c.instance_id.in_(list(asked)))
            )).all()}
        for instance_id, attempt in asked.items():
            running = self._running.get(instance_id)
            if running is not None and running[0] == attempt and rows.get(instance_id) != (Status.RUNNING, attempt):
                running[1].set()

    # --- one attempt --------------------------------------------------------------------------

    def _log_path(self, flow_instance_id: str, task_instance_id: str) -> Path:
        return self._folders(flow_instance_id)[0] / f"{task_instance_id}.log"

    def _folders(self, flow_instance_id: str) -> tuple[Path, Path]:
        """(logs, work) folders of a flow instance's attempts, made once per instance: each
        pathlib join parses its parts again, ~5 µs apiece, four per attempt otherwise."""
        found = self._paths.get(flow_instance_id)
        if found is None:
            if len(self._paths) >= 256:
                self._paths.pop(next(iter(self._paths)))
            home = self.settings.home
            found = self._paths[flow_instance_id] = (home / "logs" / flow_instance_id, home / "work" / flow_instance_id)
        return found

    def spec(self, claim: Claim) -> AttemptSpec:
        """The attempt's spec, its log header stamped now (as it starts); made ahead when it is
        a successor (`_make_ready`)."""
        made = self._specs.pop(claim.task_instance_id, None) if self._specs else None
        if made is not None and made[0].attempt == claim.attempt:
            return replace(made[0], header=self._header(claim, made[0].command))
        return self._spec(claim, stamped=True)

    def _spec(self, claim: Claim, *, stamped: bool) -> AttemptSpec:
        command = claim.task.cmd
        if "${" in command:  # else nothing to substitute, and no trigger time to work out
            trigger = instances.local_time(claim.trigger_time_ms, self.settings.zone)
            command = substitute(command, trigger_time=trigger, parameters=claim.parameters,
                                 task_id=claim.task.task_id or "", instance_id=claim.flow_instance_id)
        return AttemptSpec(
            task_instance_id=claim.task_instance_id, attempt=claim.attempt, task_type=claim.task.kind.value,
            command=command, timeout_seconds=claim.task.timeout_seconds or None,
            workdir=self._folders(claim.flow_instance_id)[1] / f"{claim.task_instance_id}.{claim.attempt}",
            log_path=claim.log_path, header=self._header(claim, command) if stamped else "",
            env={"BATCHD_FLOW_INSTANCE_ID": claim.flow_instance_id, "BATCHD_CAL_DT": claim.cal_dt,
                 OWNER_MARKER: self.owner.owner},
        )

    def _header(self, claim: Claim, command: str) -> str:
        return attempt_header(claim.attempt, claim.attempt, claim.task_instance_id, command,
                              claim.task.submitter or claim.flow.submitter, self._clock.now())

    def _make_ready(self, claim: Claim) -> None:
        """While `claim`'s attempt runs, make its successor's spec, work directory and (empty) log
        file (`Successor`), which it will start with, if it succeeds, at once: on a chain the loop
        is idle meanwhile, and the next step then starts ~0.1 ms sooner. Undone (`_unmake`) if
        it does not."""
        started = self._ahead_of(claim) if self._ahead else None
        if started is None:
            return
        spec = self._spec(started, stamped=False)
        try:
            os.makedirs(spec.workdir)
        except OSError:
            return  # the attempt's own start makes it, or says why it cannot
        try:  # its folder exists after this instance's first attempt; else the start makes both
            os.close(os.open(spec.log_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644))
            made_log = True
        except OSError:
            made_log = False
        if len(self._specs) >= 1024:
            self._specs.pop(next(iter(self._specs)))
        self._specs[started.task_instance_id] = (spec, made_log)

    def _unmake(self, claim: Claim) -> None:
        """Drop the successor's spec `_make_ready` made, its work directory while empty, and the
        log file it made while nothing was written to it."""
        successor = claim.successor
        made = None if successor is None else self._specs.pop(successor.task_instance_id, None)
        if made is not None:
            spec, made_log = made
            with contextlib.suppress(OSError):
                os.rmdir(spec.workdir)
            with contextlib.suppress(OSError):
                if made_log and os.stat(spec.log_path).st_size == 0:
                    os.unlink(spec.log_path)

    async def _run(self, claim: Claim, cancel: asyncio.Event,
                   claimed: asyncio.Future[Claim | None] | None = None) -> None:
        """Run one attempt and record its outcome. `claimed`: the attempt was started ahead of
        its claim (`_start_ahead`); its outcome is recorded only once the claim is known to be
        made, with the claim as made (None: it never was, and there is nothing to record)."""
        needs_loop = True
        try:
            result = await self._attempt(claim, cancel)
            if claimed is not None:
                made = await asyncio.shield(claimed)
                if made is None:
                    return
                claim = made
            ahead = self._start_ahead(claim, result)
            if ahead is None:
                self._unmake(claim)
            needs_loop = await self._record(claim, result, ahead)
        finally:
            self._forget(claim.task_instance_id)
            if needs_loop:
                self.wake()

    def _remember(self, claim: Claim, cancel: CancelEvent, task: asyncio.Task[None]) -> None:
        """The attempt is this process's to run from now on (`_forget` ends that)."""
        self._running[claim.task_instance_id] = (claim.attempt, cancel, task)
        self._names[claim.task_instance_id] = (claim.flow_instance_id, claim.task.name)

    def _forget(self, task_instance_id: str) -> None:
        """The attempt is no longer this process's to run (its outcome is recorded, or it ended)."""
        self._running.pop(task_instance_id, None)
        self._names.pop(task_instance_id, None)

    def _running_here(self, flow_instance_id: str, but: str) -> set[str]:
        """Names of the instance's tasks whose attempts run here, `but` that one."""
        return {name for task_id, (instance_id, name) in self._names.items()
                if instance_id == flow_instance_id and task_id != but}

    def _start_ahead(self, claim: Claim, result: Result) -> _Ahead | None:
        """After a success, start its `Successor` in the slot it frees, before the transaction
        that records the success and claims it (`progress.Successor`): on a chain, that
        transaction (~0.3 ms) then runs beside the next task instead of before it.

        Safe because nobody else can claim the successor first (it becomes READY only in that
        transaction), the transaction's compare-and-set decides whether it is ours (if not, it
        is killed at once: a cancel or failure of the flow got in between), and a crash before
        the commit leaves its process with this batchd's owner marker, by which recovery kills
        every process of a dead batchd on this machine. Until the claim commits the attempt is
        left out of the cancel checks, which would read its task as not RUNNING."""
        if not self._ahead or self._stopping or result.verdict != Verdict.SUCCESS.value:
            return None
        started = self._ahead_of(claim)
        if started is None:
            return None
        cancel = CancelEvent()
        claimed: asyncio.Future[Claim | None] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._run(started, cancel, claimed), name=f"attempt-{started.task_instance_id}")
        self._remember(started, cancel, task)
        self._unclaimed.add(started.task_instance_id)
        return _Ahead(claim=started, cancel=cancel, claimed=claimed)

    def _ahead_of(self, claim: Claim) -> Claim | None:
        """The claim of `claim`'s successor to start ahead, if it has one that runs as a process
        of this machine: a runner plugin's attempt may run elsewhere (a job sent to a cluster),
        where recovery could not find and kill it after a crash."""
        started = claim.ahead(self._log_path)
        if started is None or started.task.kind.value not in LOCAL_KINDS:
            return None
        return started

    def _settle(self, ahead: _Ahead | None, made: Claim | None) -> None:
        """Tell an attempt started ahead whether its claim was made; kill it if not."""
        if ahead is None or ahead.claimed.done():
            return
        self._unclaimed.discard(ahead.claim.task_instance_id)
        ahead.claimed.set_result(made)
        if made is None:
            ahead.cancel.set()
        else:
            self._make_ready(made)

    async def _attempt(self, claim: Claim, cancel: asyncio.Event) -> Result:
        # No write while the process starts: its pid is stored with the outcome. Crash recovery
        # does not need it to end an orphaned attempt on this machine; it finds the process
        # group by the marker in the environment of the attempt's processes (`recovery`).
        try:
            spec = self.spec(claim)
            outcome = await self.executor.submit(spec, None, cancel)
        except Exception as exc:  # noqa: BLE001 - a broken attempt is a failed attempt, never a dead loop
            log.exception("attempt %s/%d could not run", claim.task_instance_id, claim.attempt)
            return Result(verdict="ERROR", exit_code=None, timed_out=False, error=f"batchd could not run it: {exc}",
                          ended_ms=now_ms())
        if self._stopping and outcome.cancelled:
            return Result(verdict=INTERRUPTED, exit_code=outcome.exit_code, timed_out=False,
                          error="batchd stopped during the attempt; it runs again after the restart",
                          ended_ms=outcome.ended_ms, consume_retry=False)
        task = claim.task
        verdict = classify(outcome, frozenset(task.success_codes or (0,)), frozenset(task.wait_codes or ()))
        return Result(verdict=verdict.value, exit_code=outcome.exit_code, timed_out=outcome.timed_out,
                      error=outcome.error, ended_ms=outcome.ended_ms, pid=outcome.pid)

    async def _record(self, claim: Claim, result: Result, ahead: _Ahead | None = None) -> bool:
        """Record the outcome and, in the same transaction, claim the successor started ahead
        (if any) and READY tasks for the other slots free once this attempt is gone (its own
        slot included), and start them. True when the loop should take a turn: the flow ended
        (a queued instance of the workflow may start now) or the task did not succeed (a retry
        or waitCode timer, a failed flow). READY tasks made by other processes are the loop's
        poll's to find."""
        def record_and_claim(conn: sa.Connection) -> tuple[progress.Recorded, Claim | None, list[Claim]]:
            now = now_ms()
            recorded = progress.record_outcome(conn, claim.task_instance_id, claim.attempt, result, self.cache, now,
                                               running_here=busy)
            made = None if ahead is None else progress.claim_started(conn, self.owner, ahead.claim, now, LEASE_MS,
                                                                     self.cache)
            return recorded, made, [] if stopping else self._claim(conn, free)

        try:
            if ahead is not None:
                await asyncio.sleep(0)  # the successor's task starts its process now, before the transaction
            for attempt in range(RECORD_TRIES):
                try:
                    async with self._writes:  # as in `_turn`: count, claim and start under the lock
                        free = self.slots - len(self._running) + 1
                        stopping = self._stopping
                        # Read on the loop's thread: none of these can succeed while the lock is held.
                        busy = self._running_here(claim.flow_instance_id, claim.task_instance_id)
                        recorded, made, claims = await self.database.run_write(record_and_claim, short=True)
                        self._settle(ahead, made)
                        self._forget(claim.task_instance_id)
                        self._start(claims)
                    return recorded.task is not Status.SUCCESS or recorded.flow is not None
                except Exception:  # noqa: BLE001 - retried; the lease keeps the attempt ours meanwhile
                    log.exception("recording %s/%d failed (try %d)", claim.task_instance_id, claim.attempt,
                                  attempt + 1)
                    self._settle(ahead, None)  # rolled back: the successor is not ours; a later claim runs it
                    ahead = None
                    await asyncio.sleep(0.2 * 2**attempt)
            return True
        finally:
            # Never leave a successor waiting to hear about its claim (this task cancelled at
            # shutdown): it is killed, and a stop does not wait for it for ever.
            self._settle(ahead, None)


@dataclass(frozen=True)
class _Ahead:
    """A successor's attempt started before its claim (`Engine._start_ahead`); `claimed` gets
    the claim as made, or None when it was not."""

    claim: Claim
    cancel: asyncio.Event
    claimed: asyncio.Future[Claim | None]
