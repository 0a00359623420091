"""glibc's `posix_spawnp`, with a working directory, through ctypes: how attempts' children start.

Why not `subprocess.Popen`: for a task that takes a millisecond (`true`), starting it is a
large part of batchd's own work. Popen spends ~115–160 µs of the parent's CPU per child here
(building its argument and PATH lists in Python, an error pipe, a vfork), this ~85 µs
(bench/spawn_cost.py; docs/performance.md, "Engine"). `os.posix_spawnp` would do, but it
cannot set the child's working directory, and changing the server's own directory around the
call would race with its threads; glibc has `posix_spawn_file_actions_addchdir_np` (2.29+),
which Python does not expose, and `posix_spawn_file_actions_addclosefrom_np` (2.34+), which
closes what Popen's `close_fds` closes.

What the child gets, as from Popen in `process.start_child`: its own session
(`POSIX_SPAWN_SETSID`), stdin /dev/null, stdout and stderr to the given file, the given working
directory and environment, no blocked signals, and SIGPIPE and SIGXFSZ back at their defaults
(Python ignores both, and an ignored signal stays ignored across exec; Popen's
`restore_signals`), and only descriptors 0–2: Python opens everything close-on-exec (PEP 446),
but descriptors inherited by batchd itself are not (a test run showed two).

`spawner()` is None where this is not available (not glibc, or older than 2.34); callers then
use Popen.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
from collections.abc import Mapping, Sequence

#: glibc's sizes on x86-64 are 80 and 336 bytes; the buffers are larger to be safe elsewhere.
_FILE_ACTIONS_SIZE = 1024
_ATTR_SIZE = 1024
_SIGSET_SIZE = 1024
#: glibc's <spawn.h> flag values.
_SETSIGDEF = 0x04
_SETSIGMASK = 0x08
_SETSID = 0x80


class Spawned:
    """A child started by `Spawner.spawn`: its pid, and `poll()` as Popen's (reaps it once)."""

    __slots__ = ("pid", "returncode")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """The exit code (negative: the signal) once the child has ended, else None."""
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped by someone else: the code is lost
                self.returncode = 255
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


class Spawner:
    """glibc's posix_spawnp bound once; `spawn` per child."""

    def __init__(self, libc: ctypes.CDLL) -> None:
        self._libc = libc
        self._attr = ctypes.create_string_buffer(_ATTR_SIZE)
        self._check(libc.posix_spawnattr_init(self._attr))
        nothing = ctypes.create_string_buffer(_SIGSET_SIZE)
        defaults = ctypes.create_string_buffer(_SIGSET_SIZE)
        libc.sigemptyset(nothing)
        libc.sigemptyset(defaults)
        for signum in (signal.SIGPIPE, signal.SIGXFSZ):
            libc.sigaddset(defaults, int(signum))
        self._check(libc.posix_spawnattr_setsigmask(self._attr, nothing))
        self._check(libc.posix_spawnattr_setsigdefault(self._attr, defaults))
        self._check(libc.posix_spawnattr_setflags(self._attr, ctypes.c_short(_SETSID | _SETSIGMASK | _SETSIGDEF)))

    @staticmethod
    def _check(code: int, filename: str | None = None) -> None:
        if code:
            raise OSError(code, os.strerror(code), filename)

    def spawn(self, argv: Sequence[str], *, output: int, cwd: str,
              env: Mapping[str, str] | Sequence[bytes]) -> Spawned:
        """Start `argv` (PATH searched as by execvp) with stdout and stderr on descriptor `output`;
        OSError as Popen's when it cannot (not found, not executable, bad working directory).
        `env` is the child's whole environment: a mapping, or `NAME=value` entries as
        `environment` makes them."""
        libc = self._libc
        actions = ctypes.create_string_buffer(_FILE_ACTIONS_SIZE)
        self._check(libc.posix_spawn_file_actions_init(actions))
        try:
            self._check(libc.posix_spawn_file_actions_addopen(actions, 0, b"/dev/null", os.O_RDONLY, 0))
            self._check(libc.posix_spawn_file_actions_adddup2(actions, output, 1))
            self._check(libc.posix_spawn_file_actions_adddup2(actions, output, 2))
            self._check(libc.posix_spawn_file_actions_addchdir_np(actions, os.fsencode(cwd)))
            self._check(libc.posix_spawn_file_actions_addclosefrom_np(actions, 3))
            words = [os.fsencode(word) for word in argv]
            arguments = (ctypes.c_char_p * (len(words) + 1))(*words)
            variables = (env if not isinstance(env, Mapping)
                         else [os.fsencode(f"{name}={value}") for name, value in env.items()])
            environment = (ctypes.c_char_p * (len(variables) + 1))(*variables)
            pid = ctypes.c_int()
            self._check(libc.posix_spawnp(ctypes.byref(pid), words[0], actions, self._attr, arguments, environment),
                        argv[0])
        finally:
            libc.posix_spawn_file_actions_destroy(actions)
        return Spawned(pid.value)


def environment(overrides: Mapping[str, str]) -> list[bytes]:
    """This process's environment with `overrides` set, as the `NAME=value` entries `spawn`
    passes on: what `{**os.environ, **overrides}` would give.

    Read from `os.environb`'s bytes as stored (its `_data`, where CPython has it) rather than
    through `os.environ`, which decodes every name and value only for `spawn` to encode them
    again: 8 µs per child here instead of 24 (35 variables)."""
    extra = {os.fsencode(name): os.fsencode(value) for name, value in overrides.items()}
    stored = getattr(os.environb, "_data", None)
    inherited = stored.items() if isinstance(stored, dict) else os.environb.items()
    entries = [name + b"=" + value for name, value in inherited if name not in extra]
    entries.extend(name + b"=" + value for name, value in extra.items())
    return entries


@functools.cache
def spawner() -> Spawner | None:
    """The process's `Spawner`, or None without glibc 2.34+ (module docstring)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.posix_spawn_file_actions_addchdir_np  # noqa: B018 - glibc 2.29+
        libc.posix_spawn_file_actions_addclosefrom_np  # noqa: B018 - glibc 2.34+
        return Spawner(libc)
    except (OSError, AttributeError):
        return None
