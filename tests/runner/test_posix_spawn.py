"""The posix_spawn binding starts the same child Popen would, and fails the way Popen does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from runnerkit import MakeSpec, output_of, run

from batchd.runner import posix_spawn, run_attempt
from batchd.runner.posix_spawn import Spawner, spawner

# What a task sees of how it was started.
PROBE = r"""
import json, os, signal, sys
print(json.dumps({
    "own_session": os.getsid(0) == os.getpid() == os.getpgrp(),
    "cwd": os.getcwd(),
    "stdin": os.readlink("/proc/self/fd/0"),
    "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
    "env": dict(os.environ),
}), flush=True)
print("to stderr", file=sys.stderr)
"""


def _fast() -> Spawner:
    found = spawner()
    assert found is not None, "glibc 2.29+ is expected on the machines batchd supports"
    return found


def _probe_with(start, tmp_path: Path, name: str) -> tuple[dict, str]:  # type: ignore[no-untyped-def]
    workdir = tmp_path / name
    workdir.mkdir()
    log_path = tmp_path / f"{name}.log"
    env = {"PATH": os.environ["PATH"], "ONLY_THIS": "1"}
    with open(log_path, "ab") as log:
        code = start([sys.executable, "-S", "-c", PROBE], log, workdir, env)
    assert code == 0
    first, second = log_path.read_text().splitlines()
    probe = json.loads(first)
    # Signals as inherited, seen by a program that changes none before it reads them (Python
    # itself ignores SIGPIPE at startup).
    with open(tmp_path / f"{name}.status", "w+b") as status:
        assert start(["cat", "/proc/self/status"], status, workdir, env) == 0
        status.seek(0)
        masks = dict(line.split(":\t") for line in status.read().decode().splitlines() if line.startswith("Sig"))
    probe["blocked"] = int(masks["SigBlk"], 16)
    probe["sigpipe_ignored"] = bool(int(masks["SigIgn"], 16) & (1 << (signal.SIGPIPE - 1)))
    return probe, second


def _ours(argv: list[str], log, workdir: Path, env: dict[str, str]) -> int:  # type: ignore[no-untyped-def]
    child = _fast().spawn(argv, output=log.fileno(), cwd=str(workdir), env=env)
    _, status = os.waitpid(child.pid, 0)
    return os.waitstatus_to_exitcode(status)


def _popen(argv: list[str], log, workdir: Path, env: dict[str, str]) -> int:  # type: ignore[no-untyped-def]
    return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=workdir, env=env,
                          start_new_session=True, check=False).returncode


def test_the_child_is_started_as_popen_would_start_it(tmp_path: Path) -> None:
    # Something this process has open (and inheritable) must not reach the child either way.
    read_end, write_end = os.pipe()
    os.set_inheritable(read_end, True)
    os.set_inheritable(write_end, True)
    try:
        ours, ours_stderr = _probe_with(_ours, tmp_path, "ours")
        theirs, _ = _probe_with(_popen, tmp_path, "popen")
    finally:
        os.close(read_end)
        os.close(write_end)
    assert ours["own_session"] is True
    assert ours["cwd"] == str(tmp_path / "ours")
    assert ours["stdin"] == "/dev/null"
    assert ours["blocked"] == 0
    assert ours["sigpipe_ignored"] is False
    assert {k: v for k, v in ours["env"].items() if k not in ("LC_CTYPE",)} == {
        "PATH": os.environ["PATH"], "ONLY_THIS": "1"}
    assert ours_stderr == "to stderr"
    # Popen's child, for comparison: the same in everything but where it ran.
    assert {**ours, "cwd": None} == {**theirs, "cwd": None}
    assert ours["fds"] == theirs["fds"] == [0, 1, 2, 3]  # 3: the probe's listing of /proc/self/fd


def test_the_path_is_searched_and_errors_read_as_popens(tmp_path: Path) -> None:
    fast = _fast()
    with open(tmp_path / "log", "ab") as log:
        child = fast.spawn(["true"], output=log.fileno(), cwd=str(tmp_path), env={"PATH": "/nowhere:/usr/bin:/bin"})
        assert os.waitstatus_to_exitcode(os.waitpid(child.pid, 0)[1]) == 0
        with pytest.raises(FileNotFoundError) as ours:
            fast.spawn(["no-such-program-x"], output=log.fileno(), cwd=str(tmp_path), env={"PATH": "/usr/bin"})
        with pytest.raises(FileNotFoundError) as theirs:
            subprocess.Popen(["no-such-program-x"], env={"PATH": "/usr/bin"})
        assert str(ours.value) == str(theirs.value)
        script = tmp_path / "not-executable"
        script.write_text("echo hi\n")
        with pytest.raises(PermissionError):
            fast.spawn([str(script)], output=log.fileno(), cwd=str(tmp_path), env={})
        with pytest.raises(FileNotFoundError):
            fast.spawn(["true"], output=log.fileno(), cwd=str(tmp_path / "missing"), env={"PATH": "/usr/bin"})


def test_poll_reports_the_exit_code_or_the_signal(tmp_path: Path) -> None:
    fast = _fast()
    with open(tmp_path / "log", "ab") as log:
        exits = fast.spawn(["sh", "-c", "exit 7"], output=log.fileno(), cwd=str(tmp_path), env=dict(os.environ))
        killed = fast.spawn(["sleep", "30"], output=log.fileno(), cwd=str(tmp_path), env=dict(os.environ))
    os.kill(killed.pid, signal.SIGTERM)
    for child, code in ((exits, 7), (killed, -signal.SIGTERM)):
        while child.poll() is None:
            pass
        assert child.returncode == code
        assert child.poll() == code  # reaped once; asking again keeps the answer


@pytest.mark.parametrize("fast", [True, False], ids=["posix_spawn", "popen"])
def test_attempts_run_the_same_with_either_way_of_starting(
    make_spec: MakeSpec, monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    if not fast:
        monkeypatch.setattr(posix_spawn, "spawner", lambda: None)
    spec = make_spec('echo "$PWD"; echo oops >&2; exit 4')
    outcome = run(run_attempt(spec))
    assert outcome.exit_code == 4
    assert output_of(spec) == f"{spec.workdir.absolute()}\noops\n".encode()
    missing = run(run_attempt(make_spec("no-such-program-x")))
    assert missing.exit_code == 127  # bash ran it after the exec failed, and said so


def test_environment_is_this_process_environment_with_the_overrides_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHD_TEST_KEPT", "kept")
    monkeypatch.setenv("BATCHD_TEST_REPLACED", "old")
    monkeypatch.delenv("BATCHD_TEST_ADDED", raising=False)
    entries = posix_spawn.environment({"BATCHD_TEST_REPLACED": "new", "BATCHD_TEST_ADDED": "ü"})
    names = [entry.split(b"=", 1)[0] for entry in entries]
    assert len(names) == len(set(names)), "each variable once"
    as_dict = dict(entry.decode("utf-8", "surrogateescape").split("=", 1) for entry in entries)
    assert as_dict == {**os.environ, "BATCHD_TEST_REPLACED": "new", "BATCHD_TEST_ADDED": "ü"}
