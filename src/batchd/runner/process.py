"""Process groups: telling whether one still runs, and ending it (SIGTERM, grace, SIGKILL).

Every attempt runs in its own session, so its process group id is the child's pid and one
signal reaches the child and everything it started (`sleep 100 &` included). A process that
calls setsid() itself leaves the group; that is out of reach, as it is for every tool that
works by process groups.

Liveness ignores zombies: where the init process does not reap orphans (some containers),
killed grandchildren stay in the process table as zombies of the group forever, and
`os.killpg(pgid, 0)` alone would call such a group alive. On Linux the group's members are read
from /proc; elsewhere `killpg(pgid, 0)` is the answer.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

#: How often a terminating group is checked.
POLL_SECONDS = 0.02
#: How long to wait for SIGKILL to take effect before giving up (it cannot be ignored).
AFTER_KILL_SECONDS = 2.0
#: The environment variable marking an attempt's processes (see `AttemptSpec`).
MARKER = "BATCHD_TASK_INSTANCE_ID"
#: The environment variable naming the batchd process (`Owner.owner`) that started an attempt.
OWNER_MARKER = "BATCHD_OWNER"
_DEAD = (b"Z", b"X")  # zombie, dead


def _state_and_group(pid: int | str) -> tuple[bytes, int] | None:
    """(state letter, process group) from /proc/<pid>/stat, or None if it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            data = stat.read()
    except OSError:
        return None  # gone meanwhile, or no /proc
    state, _ppid, group = data[data.rindex(b")") + 2 :].split(maxsplit=3)[:3]
    return state, int(group)


def live_members(pgid: int) -> list[int] | None:
    """Pids of the group's processes that are not zombies, or None without /proc."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return None
    members = []
    for name in names:
        found = _state_and_group(name) if name.isdigit() else None
        if found is not None and found[1] == pgid and found[0] not in _DEAD:
            members.append(int(name))
    return members


def _signal_zero(kill: Callable[[int, int], None], target: int) -> bool | None:
    """Signal 0: False if nothing is there, True if it is someone else's, None if ours to inspect."""
    try:
        kill(target, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, and not ours to judge
    return None


def process_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (exited, not yet reaped) counts as gone."""
    known = _signal_zero(os.kill, pid)
    if known is not None:
        return known
    found = _state_and_group(pid)
    return found is None or found[0] not in _DEAD


def group_alive(pgid: int) -> bool:
    """True while a process of the group is running (zombies do not count)."""
    known = _signal_zero(os.killpg, pgid)
    if known is not None:
        return known
    members = live_members(pgid)
    return True if members is None else bool(members)


def _signal(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


async def _gone_within(pgid: int, seconds: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while group_alive(pgid):
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(POLL_SECONDS)
    return True


async def terminate_group(pgid: int, grace_seconds: float) -> None:
    """SIGTERM the group, wait up to `grace_seconds` for it to end, then SIGKILL what is left."""
    _signal(pgid, signal.SIGTERM)
    if not await _gone_within(pgid, grace_seconds):
        _signal(pgid, signal.SIGKILL)
        await _gone_within(pgid, AFTER_KILL_SECONDS)


def marked_groups(task_instance_id: str, *, owner: str) -> set[int]:
    """Process groups on this machine with a live process carrying `task_instance_id`'s marker
    and `owner` (the batchd process that started it, `OWNER_MARKER`).

    Crash recovery uses it for an attempt whose batchd died while it ran: the engine stores an
    attempt's pid only with its outcome (a write per start would cost every task a transaction),
    and both variables are in the child's environment from its first instruction. The owner
    matters: task instance ids are only unique within one database, and another batchd on this
    machine (another home, a test run) may be running a task with the same id. Other users'
    processes, which we could not signal anyway, are skipped. Empty without /proc.
    """
    try:
        names = os.listdir("/proc")
    except OSError:
        return set()
    wanted = (f"{MARKER}={task_instance_id}".encode(), f"{OWNER_MARKER}={owner}".encode())
    groups = set()
    for name in names:
        if name.isdigit() and all(variable in _environment(int(name)) for variable in wanted):
            found = _state_and_group(name)
            if found is not None and found[0] not in _DEAD and found[1] > 1:
                groups.add(found[1])
    return groups


def _environment(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            return environ.read().split(b"\0")
    except OSError:
        return []


def _carries_marker(pid: int, task_instance_id: str) -> bool:
    return f"{MARKER}={task_instance_id}".encode() in _environment(pid)


async def kill_process_group(
    pgid: int, *, task_instance_id: str | None = None, grace_seconds: float = 5.0
) -> bool:
    """End a leftover attempt's process group (crash recovery); True if anything was running.

    The engine calls this on restart for attempts that were RUNNING under a dead batchd, with a
    group found by `marked_groups` (or a recorded pid). Pids are reused, so pass `task_instance_id`: the group is then
    only killed if one of its live processes carries `BATCHD_TASK_INSTANCE_ID=<that id>` in its
    environment (checked on Linux; elsewhere the group is trusted), and False is returned for a
    stranger's group. Refuses (ValueError) pgid <= 1 and batchd's own group.
    """
    if pgid <= 1 or pgid == os.getpgrp():
        raise ValueError(f"refusing to kill process group {pgid}")
    if not group_alive(pgid):
        return False
    if task_instance_id is not None:
        members = live_members(pgid)
        if members is not None and not any(_carries_marker(p, task_instance_id) for p in members):
            return False
    await terminate_group(pgid, grace_seconds)
    return True
