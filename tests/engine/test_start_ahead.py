"""A chain's next task starts as soon as its upstream task succeeded, before the transaction that
records that success and claims it (`Engine._start_ahead`) — with real processes, on both
databases: the tasks still run one after the other, each once, each with one attempt and one log
header; and when that transaction finds the task no longer claimable (here: the flow was
cancelled in between), the started process is killed and nothing of it is recorded."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from servicekit import Backend, bootstrap_root

from batchd.api.context import Caller
from batchd.catalog import flows
from batchd.config import Settings
from batchd.engine import dispatcher, progress
from batchd.engine.instances import create_flow_instance
from batchd.engine.status import Status
from batchd.executors.local import LocalExecutor
from batchd.store.database import open_database
from batchd.store.tables import flow_instances, task_attempts, task_instances


async def run_chain(settings: Settings, commands: dict[str, str], *, until: set[int],
                    kinds: dict[str, str] | None = None) -> dict[str, Any]:
    """Import a chain of `commands` (in order; SHELL tasks unless `kinds` says otherwise),
    trigger it, run a real engine until the flow's status is in `until`; the rows and logs it
    left."""
    database = open_database(settings)
    await database.migrate()
    caller = Caller(org_id="o-ahead", user_id="u-ahead", user_name="tester")
    names = list(commands)
    async with database.transaction() as conn:
        root = await bootstrap_root(conn, caller)
        flow_id = (await flows.import_flow(conn, caller, {"flowName": "chain", "dirId": root, "flowJson": {
            "type": 0, "cycle": "D", "cron": "",
            "tasks": [{"name": name, "type": (kinds or {}).get(name, "SHELL"), "cmd": cmd, "timeout": 60}
                      for name, cmd in commands.items()],
            "relations": [{"sourceTaskName": a, "targetTaskName": b, "rerun": True}
                          for a, b in zip(names, names[1:])]}}))["flowId"]
        instance_id = await create_flow_instance(conn, flow_id=flow_id, trigger_time_ms=0, origin="manual")
    executor = LocalExecutor(2)
    await executor.start()
    engine = dispatcher.Engine(database, settings, executor, slots=2)
    await engine.start()
    try:
        for _ in range(600):
            async with database.read_transaction() as conn:
                status = (await conn.execute(sa.select(flow_instances.c.status).where(
                    flow_instances.c.instance_id == instance_id))).scalar_one()
            if status in until:
                break
            engine.wake()
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # let a killed attempt's task finish its bookkeeping
        async with database.read_transaction() as conn:
            tasks = {row.task_name: row for row in (await conn.execute(sa.select(task_instances).where(
                task_instances.c.flow_instance_id == instance_id))).all()}
            attempts = (await conn.execute(sa.select(task_attempts).where(
                task_attempts.c.task_instance_id.in_([row.instance_id for row in tasks.values()])))).all()
    finally:
        await engine.stop()
        await executor.stop()
        await database.dispose()
    logs = {name: engine._log_path(instance_id, row.instance_id) for name, row in tasks.items()}
    return {"status": status, "tasks": tasks, "attempts": attempts,
            "logs": {name: path.read_text() if path.exists() else None for name, path in logs.items()}}


def names_started_ahead(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the tasks engines start ahead of their claim from now on, in order."""
    started_ahead: list[str] = []
    original = dispatcher.Engine._start_ahead

    def counting(self: dispatcher.Engine, claim: progress.Claim, result: progress.Result) -> Any:
        ahead = original(self, claim, result)
        if ahead is not None:
            started_ahead.append(ahead.claim.task.name)
        return ahead

    monkeypatch.setattr(dispatcher.Engine, "_start_ahead", counting)
    return started_ahead


def test_a_chain_runs_in_order_each_task_once_with_its_successor_started_ahead(
        backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started_ahead = names_started_ahead(monkeypatch)
    times = tmp_path / "times"
    step = f"echo \"$BATCHD_TASK_INSTANCE_ID start $(date +%s%N)\" >> {times}; sleep 0.05; " \
           f"echo \"$BATCHD_TASK_INSTANCE_ID end $(date +%s%N)\" >> {times}"
    commands = {f"s{i}": step for i in range(6)}
    settings = Settings.load(home=tmp_path / "home", database_url=backend.database_url, environ={}, timezone="UTC")
    found = asyncio.run(run_chain(settings, commands, until={Status.SUCCESS, Status.FAIL}))

    assert found["status"] == Status.SUCCESS
    assert started_ahead == [f"s{i}" for i in range(1, 6)]  # every task after the first
    assert sorted((a.task_instance_id, a.attempt, a.outcome) for a in found["attempts"]) == sorted(
        (row.instance_id, 1, "SUCCESS") for row in found["tasks"].values())
    assert all(row.status == Status.SUCCESS and row.run_num == 1 for row in found["tasks"].values())
    assert all(text is not None and text.count("run  num:\t1") == 1 for text in found["logs"].values())
    lines = [line.split() for line in times.read_text().splitlines()]
    order = {row.instance_id: name for name, row in found["tasks"].items()}
    # one after the other, in chain order: each starts after the one before it ended
    assert [(order[task], what) for task, what, _ in lines] == [
        (f"s{i}", what) for i in range(6) for what in ("start", "end")]
    stamps = [int(stamp) for _, _, stamp in lines]
    assert stamps == sorted(stamps)


def test_a_successor_whose_claim_is_refused_is_killed_and_leaves_no_attempt(
        backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = progress.claim_started

    def cancelled_first(conn: sa.Connection, owner: Any, started: progress.Claim, now: int, *args: Any) -> Any:
        # A Cancel Flow Instance lands between the first task's exit and its transaction.
        status = conn.execute(sa.select(flow_instances.c.status).where(
            flow_instances.c.instance_id == started.flow_instance_id)).scalar_one()
        progress.cancel_flow_instance(conn, started.flow_instance_id, status, now)
        return original(conn, owner, started, now, *args)

    monkeypatch.setattr(progress, "claim_started", cancelled_first)
    settings = Settings.load(home=tmp_path / "home", database_url=backend.database_url, environ={}, timezone="UTC")
    found = asyncio.run(run_chain(settings, {"first": "true", "second": "sleep 30", "third": "true"},
                                  until={Status.CANCEL}))

    assert found["status"] == Status.CANCEL
    tasks = found["tasks"]
    assert [a.task_instance_id for a in found["attempts"]] == [tasks["first"].instance_id]
    assert (tasks["second"].status, tasks["second"].run_num) == (Status.CANCEL, 0)
    assert tasks["third"].status == Status.CANCEL and found["logs"]["third"] is None
    # the second task's process was started, then killed at once (not after its 30 s)
    assert "cancelled; ending process group" in found["logs"]["second"]


def test_a_failed_transaction_kills_the_successor_started_ahead_and_a_later_claim_runs_it(
        backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The transaction recording the first task's success fails once (a database error): it is
    rolled back, so the second task, already started, was never claimed — it is killed, the
    outcome is recorded again, and the second task then runs through an ordinary claim."""
    original = progress.claim_started
    failures: list[str] = []

    def fails_once(*args: Any) -> Any:
        if not failures:
            failures.append("failed")
            raise sa.exc.OperationalError("UPDATE", {}, Exception("disk I/O error"))
        return original(*args)

    monkeypatch.setattr(progress, "claim_started", fails_once)
    second = "echo started; sleep 1; echo done"
    settings = Settings.load(home=tmp_path / "home", database_url=backend.database_url, environ={}, timezone="UTC")
    found = asyncio.run(run_chain(settings, {"first": "true", "second": second},
                                  until={Status.SUCCESS, Status.FAIL}))

    assert failures == ["failed"] and found["status"] == Status.SUCCESS
    tasks = found["tasks"]
    assert sorted((a.task_instance_id, a.attempt, a.outcome) for a in found["attempts"]) == sorted(
        [(tasks["first"].instance_id, 1, "SUCCESS"), (tasks["second"].instance_id, 1, "SUCCESS")])
    log = found["logs"]["second"]
    killed, _, then = log.partition("[batchd] cancelled; ending process group")
    assert killed and "done" not in killed.splitlines(), log  # killed within its first second
    assert then.count("run  num:\t1") == 1 and then.rstrip().endswith("started\ndone"), log


def test_a_failed_task_leaves_no_work_folder_or_log_for_the_successor_that_never_ran(
        backend: Backend, tmp_path: Path) -> None:
    """The successor's work folder (and, once the instance's logs folder exists, its empty log
    file) is made while its upstream task runs, so that it starts sooner; when the upstream
    task fails instead, both go again."""
    settings = Settings.load(home=tmp_path / "home", database_url=backend.database_url, environ={}, timezone="UTC")
    found = asyncio.run(run_chain(settings, {"first": "true", "second": "sleep 0.2; false", "third": "true"},
                                  until={Status.SUCCESS, Status.FAIL}))

    assert found["status"] == Status.FAIL
    tasks = found["tasks"]
    assert [tasks[name].status for name in ("first", "second", "third")] == [Status.SUCCESS, Status.FAIL, Status.INIT]
    ran = sorted(tasks[name].instance_id for name in ("first", "second"))
    instance = tasks["first"].flow_instance_id
    assert sorted(path.name for path in (settings.home / "work" / instance).iterdir()) == [f"{i}.1" for i in ran]
    assert sorted(path.name for path in (settings.home / "logs" / instance).iterdir()) == [f"{i}.log" for i in ran]
    assert found["logs"]["second"].startswith("=" * 73) and found["logs"]["third"] is None


def test_a_successor_run_by_a_runner_plugin_is_not_started_ahead(
        backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin's attempt may run elsewhere (a job sent to a cluster), where recovery could not
    kill it after a crash: such a successor starts only once claimed. (No HIVE plugin is
    installed here, so its attempt fails at once, saying how to provide one.)"""
    started_ahead = names_started_ahead(monkeypatch)
    settings = Settings.load(home=tmp_path / "home", database_url=backend.database_url, environ={}, timezone="UTC")
    found = asyncio.run(run_chain(settings, {"first": "true", "query": "select 1", "after": "true"},
                                  kinds={"query": "HIVE"}, until={Status.SUCCESS, Status.FAIL}))

    assert found["status"] == Status.FAIL and started_ahead == []
    assert found["tasks"]["first"].status == Status.SUCCESS and found["tasks"]["query"].status == Status.FAIL
    assert "HIVE" in found["logs"]["query"] and found["logs"]["after"] is None
