"""The two records of one task attempt: what to run (`AttemptSpec`) and what happened (`AttemptOutcome`)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: Task kinds the runner executes itself; every other kind needs a runner plugin.
SHELL_KINDS = frozenset({"SHELL", "COMMAND"})
PYTHON_KIND = "PYTHON"


@dataclass(frozen=True, kw_only=True)
class AttemptSpec:
    """One attempt of one task instance, fully resolved by the engine.

    - `task_instance_id`, `attempt` (1 for the first try of a run): identify the attempt; the
      child sees them as `BATCHD_TASK_INSTANCE_ID` and `BATCHD_ATTEMPT` in its environment (which
      is also how `kill_process_group` recognises a leftover group after a crash).
    - `task_type`: canonical kind (`SHELL` (or `COMMAND`), `PYTHON`, or a plugin's kind).
    - `command`: already substituted; a shell script for SHELL, Python source for PYTHON.
    - `timeout_seconds`: None or <= 0 means no limit.
    - `workdir`: created if missing; the child's working directory (one per attempt).
    - `log_path`: created if missing, appended to: `header` first, then the child's output.
    - `env`: added to (and overriding) the server's environment for the child.
    - `python`: the interpreter for PYTHON tasks; None means `$BATCHD_PYTHON`, else
      `sys.executable`.
    - `kill_grace_seconds`: how long a SIGTERM'd group gets before SIGKILL.
    """

    task_instance_id: str
    attempt: int
    task_type: str
    command: str
    timeout_seconds: float | None
    workdir: Path
    log_path: Path
    header: str
    env: Mapping[str, str] = field(default_factory=dict)
    python: str | None = None
    kill_grace_seconds: float = 5.0


@dataclass(frozen=True, kw_only=True)
class AttemptOutcome:
    """What one attempt did; success is decided by the engine (`classify`), not here.

    - `exit_code`: the child's exit status; negative -N when signal N ended it (so -15 or -9
      after a timeout or cancel); None when no process ran (see `error`).
    - `timed_out`: the runner killed the group because `timeout_seconds` passed.
    - `cancelled`: the runner killed the group (or never started it) because `cancel` was set.
    - `error`: why the attempt could not run at all (no plugin for the kind, workdir or log not
      writable, interpreter missing, plugin crashed); None when it ran.
    - `started_ms`, `ended_ms`: epoch milliseconds around the attempt.
    - `pid`: the child's pid, which is also its process group id; None when nothing started.
    """

    exit_code: int | None
    timed_out: bool = False
    cancelled: bool = False
    error: str | None = None
    started_ms: int
    ended_ms: int
    pid: int | None = None


class CancelEvent(asyncio.Event):
    """The `cancel` of one attempt: an `asyncio.Event` that can also be waited for as a plain
    future (`when_set`).

    An attempt waits for its process's end, its timeout and its cancel at once. With a bare
    Event that takes a task running `cancel.wait()` per attempt, created and then cancelled
    again for every attempt that simply ended: ~20 µs of the event loop per task, which for a
    task that takes a millisecond is worth saving. `run_attempt` accepts either kind.
    """

    def __init__(self) -> None:
        super().__init__()
        self._when_set: asyncio.Future[None] | None = None

    def set(self) -> None:
        super().set()
        if self._when_set is not None and not self._when_set.done():
            self._when_set.set_result(None)

    def clear(self) -> None:
        super().clear()
        if self._when_set is not None and self._when_set.done():
            self._when_set = None  # the next `when_set` waits for the next `set`

    def when_set(self) -> asyncio.Future[None]:
        """A future done once the event is set (at once if it is); the same one every call, so
        it must not be cancelled by whoever waits for it."""
        if self._when_set is None:
            self._when_set = asyncio.get_running_loop().create_future()
            if self.is_set():
                self._when_set.set_result(None)
        return self._when_set
