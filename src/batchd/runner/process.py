"""Process groups: starting an attempt's child in one (`start_child`), telling whether one still
runs, and ending it (SIGTERM, grace, SIGKILL).

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
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

from batchd.runner import posix_spawn

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


def marked_groups(task_instance_id: str | None, *, owner: str) -> set[int]:
    """Process groups on this machine with a live process carrying `task_instance_id`'s marker
    and `owner` (the batchd process that started it, `OWNER_MARKER`); with `task_instance_id`
    None, every group carrying `owner`'s marker (a dead batchd's processes, attempts it started
    ahead of their claim included).

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
    wanted = (f"{OWNER_MARKER}={owner}".encode(),) + (
        () if task_instance_id is None else (f"{MARKER}={task_instance_id}".encode(),))
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


class Child:
    """A started attempt process: its pid (= its process group) and `wait()` for its exit code.

    On Linux the exit is watched through a pidfd on the event loop's selector. asyncio's own
    subprocess support starts a thread per child to wait for it and builds a transport with
    pipes batchd never uses; for tasks that take a millisecond (`true`), that bookkeeping cost
    more than the process itself (the engine bench). Elsewhere asyncio's machinery is used.
    """

    def __init__(self, pid: int, exited: asyncio.Future[int]) -> None:
        """`exited`: done with the exit code once the process has ended (never cancelled here;
        `wait()` shields it from a cancelled waiter)."""
        self.pid = pid
        self.exited = exited

    async def wait(self) -> int:
        """The exit code, negative for a signal (-15: SIGTERM), as `Popen.returncode`."""
        return await asyncio.shield(self.exited)


async def start_child(argv: list[str], *, output: BinaryIO, cwd: Path, env: Mapping[str, str]) -> Child:
    """Start `argv` in a new session (its own process group), stdin /dev/null, stdout and stderr
    to `output`, with batchd's environment plus `env`; OSError when it cannot start (not found,
    not executable)."""
    if not hasattr(os, "pidfd_open"):
        return await _start_with_asyncio(argv, output=output, cwd=cwd, env={**os.environ, **env})
    fast = posix_spawn.spawner()
    popen: posix_spawn.Spawned | subprocess.Popen[bytes]
    if fast is not None:  # the same child for ~50 µs less CPU (`batchd.runner.posix_spawn`)
        popen = fast.spawn(argv, output=output.fileno(), cwd=str(cwd), env=posix_spawn.environment(env))
    else:
        popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=output, cwd=cwd,
                                 env={**os.environ, **env}, start_new_session=True)
    try:
        pidfd = os.pidfd_open(popen.pid)
    except OSError:  # a kernel without pidfds (before 5.3): poll for the exit instead
        return Child(popen.pid, asyncio.ensure_future(_poll_exit(popen)))
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[int] = loop.create_future()

    def reap() -> None:
        if popen.poll() is None:
            return  # not yet (a pidfd is readable only once the process has exited)
        loop.remove_reader(pidfd)
        os.close(pidfd)
        if not exited.done():
            exited.set_result(popen.returncode)

    loop.add_reader(pidfd, reap)
    return Child(popen.pid, exited)


async def _poll_exit(popen: posix_spawn.Spawned | subprocess.Popen[bytes]) -> int:
    while (code := popen.poll()) is None:
        await asyncio.sleep(POLL_SECONDS)
    return code


async def _start_with_asyncio(argv: list[str], *, output: BinaryIO, cwd: Path, env: dict[str, str]) -> Child:
    proc = await asyncio.create_subprocess_exec(*argv, stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                                                cwd=cwd, env=env, start_new_session=True)
    return Child(proc.pid, asyncio.ensure_future(proc.wait()))
