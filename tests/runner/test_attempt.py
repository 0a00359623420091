"""run_attempt with real processes: exit codes, the log, timeouts, cancel, PYTHON, workdirs."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest
from runnerkit import MakeSpec, assert_group_gone, output_of, run

from batchd.runner import AttemptOutcome, AttemptSpec, run_attempt
from batchd.runner.attempt import direct_argv
from batchd.runner.records import CancelEvent


async def attempt(spec: AttemptSpec, **kwargs: object) -> AttemptOutcome:
    return await run_attempt(spec, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("command", "code"),
    [("true", 0), ("false", 1), ("exit 3", 3), ("sh -c 'exit 7'", 7), ("/bin/false", 1)],
)
def test_exit_code_is_the_childs(make_spec: MakeSpec, command: str, code: int) -> None:
    outcome = run(attempt(make_spec(command)))
    assert outcome.exit_code == code
    assert not outcome.timed_out and not outcome.cancelled and outcome.error is None
    assert outcome.started_ms <= outcome.ended_ms
    assert outcome.pid is not None


def test_both_streams_in_order_after_the_header(make_spec: MakeSpec) -> None:
    spec = make_spec("echo one; echo two >&2; echo three; printf 'four' >&2")
    assert run(attempt(spec)).exit_code == 0
    assert output_of(spec) == b"one\ntwo\nthree\nfour"


def test_attempts_append_to_the_same_log(make_spec: MakeSpec) -> None:
    first, second = make_spec("echo first"), make_spec("echo second", attempt=2)
    run(attempt(first))
    run(attempt(second))
    text = first.log_path.read_text()
    assert text == first.header + "first\n" + second.header + "second\n"
    assert "attempt:\t2" in second.header


def test_undecodable_output_is_kept_byte_for_byte(make_spec: MakeSpec) -> None:
    spec = make_spec(r"printf 'bad \377\376 bytes\n'; printf '\000nul\n' >&2")
    assert run(attempt(spec)).exit_code == 0
    assert output_of(spec) == b"bad \xff\xfe bytes\n\x00nul\n"


def test_output_is_readable_while_the_attempt_runs(make_spec: MakeSpec) -> None:
    spec = make_spec("echo started; sleep 30")

    async def scenario() -> AttemptOutcome:
        cancel = asyncio.Event()
        job = asyncio.create_task(run_attempt(spec, cancel=cancel))
        deadline = time.monotonic() + 10
        while b"started" not in spec.log_path.read_bytes() if spec.log_path.exists() else True:
            assert time.monotonic() < deadline and not job.done()
            await asyncio.sleep(0.02)
        assert not job.done()
        cancel.set()
        return await job

    outcome = run(scenario())
    assert outcome.cancelled and output_of(spec).startswith(b"started\n")


def test_timeout_kills_the_whole_group(make_spec: MakeSpec) -> None:
    spec = make_spec("sleep 100 & sleep 100 & wait", timeout_seconds=0.5)
    begin = time.monotonic()
    outcome = run(attempt(spec))
    assert outcome.timed_out and not outcome.cancelled
    assert outcome.exit_code == -15
    assert time.monotonic() - begin < 5
    assert_group_gone(outcome.pid)
    assert output_of(spec).endswith(b"[batchd] timed out after 0.5 s; ending process group %d\n" % outcome.pid)


def test_a_group_ignoring_sigterm_gets_sigkill_after_the_grace(make_spec: MakeSpec) -> None:
    spec = make_spec(
        "trap '' TERM; sleep 100 & echo ready; wait", timeout_seconds=0.5, kill_grace_seconds=0.3
    )
    outcome = run(attempt(spec))
    assert outcome.timed_out and outcome.exit_code == -9
    assert_group_gone(outcome.pid)


def test_processes_left_behind_by_a_finished_task_are_ended(make_spec: MakeSpec) -> None:
    outcome = run(attempt(make_spec("sleep 100 & echo done")))
    assert outcome.exit_code == 0
    assert_group_gone(outcome.pid)


# The engine passes a CancelEvent (waited for without a task of its own); any asyncio.Event works.
CANCEL_KINDS = pytest.mark.parametrize("event", [asyncio.Event, CancelEvent], ids=["Event", "CancelEvent"])


@CANCEL_KINDS
def test_cancel_kills_the_group_and_says_so(make_spec: MakeSpec, event: type[asyncio.Event]) -> None:
    spec = make_spec("sleep 100 & sleep 100")
    pids: list[int] = []

    async def scenario() -> AttemptOutcome:
        cancel = event()

        async def started(pid: int) -> None:
            pids.append(pid)
            assert os.getpgid(pid) == pid  # its own process group
            assert os.getsid(pid) == pid  # and its own session
            asyncio.get_running_loop().call_later(0.2, cancel.set)

        return await run_attempt(spec, on_started=started, cancel=cancel)

    outcome = run(scenario())
    assert outcome.cancelled and not outcome.timed_out and outcome.exit_code == -15
    assert pids == [outcome.pid]
    assert_group_gone(outcome.pid)
    assert output_of(spec).endswith(b"[batchd] cancelled; ending process group %d\n" % outcome.pid)


@CANCEL_KINDS
def test_cancel_set_before_start_starts_nothing(make_spec: MakeSpec, event: type[asyncio.Event]) -> None:
    spec = make_spec("echo never")

    async def scenario() -> AttemptOutcome:
        cancel = event()
        cancel.set()
        return await run_attempt(spec, cancel=cancel)

    outcome = run(scenario())
    assert outcome.cancelled and outcome.exit_code is None and outcome.pid is None
    assert not spec.log_path.exists()


def test_cancelling_the_caller_kills_the_group(make_spec: MakeSpec) -> None:
    pids: list[int] = []

    async def scenario() -> None:
        async def started(pid: int) -> None:
            pids.append(pid)

        job = asyncio.create_task(run_attempt(make_spec("sleep 100 & sleep 100"), on_started=started))
        while not pids:
            await asyncio.sleep(0.01)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job

    run(scenario())
    assert_group_gone(pids[0])


def test_a_failing_on_started_kills_the_group_and_propagates(make_spec: MakeSpec) -> None:
    pids: list[int] = []

    async def started(pid: int) -> None:
        pids.append(pid)
        raise RuntimeError("database is gone")

    with pytest.raises(RuntimeError, match="database is gone"):
        run(run_attempt(make_spec("sleep 100"), on_started=started))
    assert_group_gone(pids[0])


def test_each_attempt_runs_in_its_own_workdir_with_its_environment(
    make_spec: MakeSpec, tmp_path: Path
) -> None:
    command = 'pwd; echo "$BATCHD_TASK_INSTANCE_ID $BATCHD_ATTEMPT $GREETING $PWD"; touch made-here'
    for n in (1, 2):
        spec = make_spec(command, attempt=n, env={"GREETING": "hello"})
        assert run(attempt(spec)).exit_code == 0
        workdir = tmp_path / f"w{n}"
        assert (workdir / "made-here").exists()
        assert output_of(spec).decode().splitlines() == [
            str(workdir),
            f"104452-201908080322 {n} hello {workdir}",
        ]


def test_a_missing_command_reads_as_bash_says_it(make_spec: MakeSpec) -> None:
    spec = make_spec("no-such-command-batchd --flag")
    outcome = run(attempt(spec))
    assert outcome.exit_code == 127 and outcome.error is None
    assert b"no-such-command-batchd: command not found" in output_of(spec)


def test_a_long_script_runs_from_a_file(make_spec: MakeSpec) -> None:
    command = "x=1\n" + "# padding\n" * 30000 + "echo $x done"  # 300 kB: over one argv limit
    spec = make_spec(command)
    assert run(attempt(spec)).exit_code == 0
    assert output_of(spec) == b"1 done\n"


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("true", ["true"]),
        ("  /bin/echo  a=b  -x ", ["/bin/echo", "a=b", "-x"]),
        ("python3 job.py --day 2017-05-26", ["python3", "job.py", "--day", "2017-05-26"]),
        ("true --help", None),  # /bin/true --help differs from bash's builtin
        ("echo hi", None),  # a builtin
        ("cd /tmp", None),
        ("FOO=1 env", None),
        ("echo $HOME", None),
        ("ls *.py", None),
        ("a; b", None),
        ("a > f", None),
        ("a 'quoted'", None),
        ("a\nb", None),
        ("", None),
    ],
)
def test_direct_exec_only_for_plain_commands(command: str, argv: list[str] | None) -> None:
    assert direct_argv(command) == argv


PY_MAIN = """
import sys
def main():
    print("in main", sys.argv[0].endswith("_batchd_task.py"), __name__)
    return {ret}
"""


@pytest.mark.parametrize(("ret", "code"), [("0", 0), ("None", 0), ("4", 4), ("'x'", 1), ("300", 1)])
def test_python_main_return_value_is_the_exit_code(make_spec: MakeSpec, ret: str, code: int) -> None:
    spec = make_spec(PY_MAIN.format(ret=ret), task_type="PYTHON")
    assert run(attempt(spec)).exit_code == code
    assert output_of(spec).startswith(b"in main True __main__\n")


def test_python_script_calling_main_itself_runs_it_once(make_spec: MakeSpec) -> None:
    script = PY_MAIN.format(ret="3") + 'if __name__ == "__main__":\n    sys.exit(main())\n'
    spec = make_spec(script, task_type="PYTHON")
    assert run(attempt(spec)).exit_code == 3
    assert output_of(spec).count(b"in main") == 1


def test_python_plain_script_and_exception(make_spec: MakeSpec, tmp_path: Path) -> None:
    plain = make_spec("import os\nprint(os.getcwd())", task_type="PYTHON")
    assert run(attempt(plain)).exit_code == 0
    assert output_of(plain) == f"{tmp_path / 'w1'}\n".encode()
    assert (tmp_path / "w1" / "_batchd_task.py").exists()
    boom = make_spec("def main():\n    raise ValueError('boom')\n", task_type="PYTHON", attempt=2)
    assert run(attempt(boom)).exit_code == 1
    out = output_of(boom)
    assert b"ValueError: boom" in out and b"_batchd_task.py" in out


def test_python_output_streams_unbuffered(make_spec: MakeSpec) -> None:
    spec = make_spec("import time\nprint('early')\ntime.sleep(30)", task_type="PYTHON",
                     timeout_seconds=1.0)
    outcome = run(attempt(spec))
    assert outcome.timed_out and output_of(spec).startswith(b"early\n")


def test_python_interpreter_is_configurable(
    make_spec: MakeSpec, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    spec = make_spec("import sys\nprint(sys.executable)", task_type="PYTHON", python=sys.executable)
    assert run(attempt(spec)).exit_code == 0
    monkeypatch.setenv("BATCHD_PYTHON", str(tmp_path / "no-python"))
    missing = run(attempt(make_spec("print(1)", task_type="PYTHON", attempt=2)))
    assert missing.exit_code is None
    assert missing.error is not None and "cannot start the PYTHON task" in missing.error


def test_an_unwritable_workdir_is_an_error_not_an_exception(make_spec: MakeSpec, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    outcome = run(attempt(make_spec("true", workdir=blocker / "w")))
    assert outcome.exit_code is None and outcome.error is not None
    assert outcome.error.startswith("cannot prepare the attempt:")


def test_a_workdir_that_is_a_file_is_an_error_and_an_existing_one_is_reused(make_spec: MakeSpec,
                                                                              tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    outcome = run(attempt(make_spec("true", workdir=taken)))
    assert outcome.exit_code is None and outcome.error is not None
    assert outcome.error.startswith("cannot prepare the attempt:") and "taken" in outcome.error
    again = tmp_path / "again"
    again.mkdir()
    (again / "left-before").write_text("kept")
    assert run(attempt(make_spec("cat left-before", workdir=again))).exit_code == 0


def _without_pidfds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "pidfd_open")


def _pidfds_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(pid: int) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", refuse)


@pytest.mark.parametrize("without", [_without_pidfds, _pidfds_refused], ids=["no pidfd_open", "kernel refuses"])
def test_exit_codes_and_timeouts_without_pidfds(
    make_spec: MakeSpec, monkeypatch: pytest.MonkeyPatch, without: object
) -> None:
    """Where the kernel or platform has no pidfds, the exit is waited for another way, with the
    same results (on this Linux machine the pidfd path is the one the other tests take)."""
    without(monkeypatch)  # type: ignore[operator]
    assert run(attempt(make_spec("exit 3"))).exit_code == 3
    spec = make_spec("sleep 100 & sleep 100 & wait", timeout_seconds=0.3, attempt=2)
    outcome = run(attempt(spec))
    assert outcome.timed_out and outcome.exit_code == -15
    assert_group_gone(outcome.pid)


def test_a_cancel_event_serves_attempts_that_end_by_themselves_and_one_cancelled_after(make_spec: MakeSpec) -> None:
    """One CancelEvent waited for by several attempts in turn (its future is shared, so an
    attempt that ends normally must leave it usable), then set: the next attempt is killed."""
    async def scenario() -> list[AttemptOutcome]:
        cancel = CancelEvent()
        outcomes = [await run_attempt(make_spec("true", attempt=n), cancel=cancel) for n in (1, 2)]
        asyncio.get_running_loop().call_later(0.2, cancel.set)
        outcomes.append(await run_attempt(make_spec("sleep 100", attempt=3), cancel=cancel))
        return outcomes

    first, second, third = run(scenario())
    assert (first.exit_code, first.cancelled, second.exit_code, second.cancelled) == (0, False, 0, False)
    assert third.cancelled and third.exit_code == -15


def test_a_cleared_cancel_event_waits_for_its_next_set() -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        cancel = CancelEvent()
        cancel.set()
        first = cancel.when_set().done()
        cancel.clear()
        again = cancel.when_set()
        waiting = not again.done()
        cancel.set()
        return first, waiting, again.done()

    assert run(scenario()) == (True, True, True)
