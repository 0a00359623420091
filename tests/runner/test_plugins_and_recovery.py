"""Runner plugins (registered in-test) and killing a leftover group after a crash."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Collection
from importlib.metadata import EntryPoint

import pytest
from runnerkit import MakeSpec, assert_group_gone, output_of, run

from batchd.clock import now_ms
from batchd.runner import AttemptOutcome, AttemptSpec, RunnerPlugin, kill_process_group, run_attempt
from batchd.runner import plugins
from batchd.runner.process import group_alive


class EchoHive:
    """A toy plugin: writes the command to the log; `sleep` makes it wait for cancel."""

    kinds: Collection[str] = ("HIVE",)

    def __init__(self) -> None:
        self.saw_cancel = False

    async def run(self, spec: AttemptSpec, on_started, cancel: asyncio.Event) -> AttemptOutcome:
        started = now_ms()
        with open(spec.log_path, "ab") as log:
            log.write(f"hive> {spec.command}\n".encode())
        if spec.command == "sleep":
            await cancel.wait()
            self.saw_cancel = True
            return AttemptOutcome(exit_code=-15, started_ms=started, ended_ms=now_ms())
        if spec.command == "crash":
            raise ConnectionError("metastore unreachable")
        return AttemptOutcome(exit_code=0, started_ms=started, ended_ms=now_ms())


@pytest.fixture
def hive(monkeypatch: pytest.MonkeyPatch) -> EchoHive:
    plugin = EchoHive()
    assert isinstance(plugin, RunnerPlugin)
    monkeypatch.setattr(plugins, "discover_plugins", lambda: {"HIVE": plugin})
    return plugin


def test_a_plugin_runs_its_kind_after_the_header(make_spec: MakeSpec, hive: EchoHive) -> None:
    spec = make_spec("select 1", task_type="hive")
    outcome = run(run_attempt(spec))
    assert outcome.exit_code == 0 and outcome.error is None
    assert output_of(spec) == b"hive> select 1\n"
    assert spec.workdir.is_dir()


def test_the_runner_times_out_a_plugin_through_cancel(make_spec: MakeSpec, hive: EchoHive) -> None:
    outcome = run(run_attempt(make_spec("sleep", task_type="HIVE", timeout_seconds=0.3)))
    assert outcome.timed_out and hive.saw_cancel


def test_cancel_reaches_a_plugin(make_spec: MakeSpec, hive: EchoHive) -> None:
    async def scenario() -> AttemptOutcome:
        cancel = asyncio.Event()
        asyncio.get_running_loop().call_later(0.1, cancel.set)
        return await run_attempt(make_spec("sleep", task_type="HIVE"), cancel=cancel)

    outcome = run(scenario())
    assert outcome.cancelled and not outcome.timed_out and hive.saw_cancel


def test_a_crashing_plugin_is_an_error_outcome(make_spec: MakeSpec, hive: EchoHive) -> None:
    spec = make_spec("crash", task_type="HIVE")
    outcome = run(run_attempt(spec))
    assert outcome.exit_code is None
    assert outcome.error == "runner for HIVE failed: ConnectionError('metastore unreachable')"
    assert output_of(spec).endswith(f"[batchd] {outcome.error}\n".encode())


def test_no_plugin_is_an_immediate_error_naming_the_kind(
    make_spec: MakeSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plugins, "discover_plugins", lambda: {})
    spec = make_spec("select 1", task_type="HIVE")
    outcome = run(run_attempt(spec))
    expected = (
        "no runner for task type HIVE: install a package that provides a 'batchd.runners' "
        "entry point for it (see docs/runners.md)"
    )
    assert outcome.exit_code is None and outcome.pid is None and outcome.error == expected
    assert output_of(spec) == f"[batchd] {expected}\n".encode()


def test_discovery_loads_entry_points_and_skips_broken_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    points = [
        EntryPoint("hive", "test_plugins_and_recovery:EchoHive", plugins.ENTRY_POINT_GROUP),
        EntryPoint("broken", "no_such_module_batchd:Runner", plugins.ENTRY_POINT_GROUP),
        EntryPoint("again", "test_plugins_and_recovery:EchoHive", plugins.ENTRY_POINT_GROUP),
    ]
    asked: list[str] = []

    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        asked.append(group)
        return points

    monkeypatch.setattr(plugins, "entry_points", fake_entry_points)
    plugins.discover_plugins.cache_clear()
    try:
        found = plugins.discover_plugins()
    finally:
        plugins.discover_plugins.cache_clear()
    assert asked == ["batchd.runners"]
    assert list(found) == ["HIVE"] and type(found["HIVE"]).__name__ == "EchoHive"


def _orphan_group(marker: str) -> int:
    """A group as a dead batchd would leave it: a shell and a grandchild, not our asyncio child."""
    proc = subprocess.Popen(
        ["bash", "-c", "sleep 100 & sleep 100"],
        env={**os.environ, "BATCHD_TASK_INSTANCE_ID": marker},
        start_new_session=True,
    )
    return proc.pid


def test_kill_process_group_ends_a_leftover_attempt() -> None:
    pgid = _orphan_group("7-2019")
    try:
        assert run(kill_process_group(pgid, task_instance_id="8-other")) is False
        assert group_alive(pgid)
        assert run(kill_process_group(pgid, task_instance_id="7-2019", grace_seconds=1)) is True
        assert_group_gone(pgid)
        assert run(kill_process_group(pgid, task_instance_id="7-2019")) is False
    finally:
        if group_alive(pgid):
            os.killpg(pgid, 9)
        os.waitpid(pgid, 0)


def test_kill_process_group_refuses_init_and_our_own_group() -> None:
    for pgid in (0, 1, os.getpgrp()):
        with pytest.raises(ValueError, match="refusing"):
            run(kill_process_group(pgid))


class Stubborn:
    kinds: Collection[str] = ("MR",)

    async def run(self, spec: AttemptSpec, on_started, cancel: asyncio.Event) -> AttemptOutcome:
        await asyncio.sleep(100)
        raise AssertionError("not reached")


def test_a_plugin_ignoring_cancel_is_cut_off_after_the_grace(
    make_spec: MakeSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plugins, "discover_plugins", lambda: {"MR": Stubborn()})
    spec = make_spec("job", task_type="MR", timeout_seconds=0.2, kill_grace_seconds=0.2)
    outcome = run(run_attempt(spec))
    assert outcome.timed_out and outcome.exit_code is None
    assert outcome.error == "runner for MR ignored cancel for 0.2 s"


def test_process_alive_counts_a_zombie_as_gone() -> None:
    from batchd.runner.process import process_alive

    proc = subprocess.Popen(["sleep", "100"])
    try:
        assert process_alive(proc.pid)
        proc.kill()
        deadline = time.monotonic() + 5
        while process_alive(proc.pid):  # a zombie until waited for, but not alive
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert proc.poll() is not None
    finally:
        proc.kill()
        proc.wait()
    assert not process_alive(proc.pid)
