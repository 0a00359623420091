"""The transition tables decide every (status, event) pair, and the decisions are coherent."""

from __future__ import annotations

import pytest

from batchd.engine.status import FAILED, FINISHED, Status
from batchd.engine.transitions import (
    FLOW_TABLE,
    TASK_TABLE,
    FlowEvent,
    IllegalTransition,
    TaskEvent,
    Verdict,
    flow_target,
    task_target,
)


def test_status_codes_are_the_spec_table() -> None:
    assert {s.name: s.value for s in Status} == {
        "FAIL": -1, "INIT": 0, "SUCCESS": 1, "RUNNING": 2, "SUSPEND": 3, "INTERNAL_ERROR": 4, "WAIT": 5,
        "READY": 6, "TIMEOUT": 7, "CANCEL": 8, "RERUN": 9, "SKIP": 10,
    }


@pytest.mark.parametrize(("table", "events"), [(FLOW_TABLE, FlowEvent), (TASK_TABLE, TaskEvent)])
def test_tables_are_total(table: dict, events: type) -> None:
    assert set(table) == set(Status)
    for status, row in table.items():
        assert set(row) == set(events), status
        for decision in row.values():
            assert (decision.target is not None) == (decision.verdict is Verdict.ACT)


def test_finished_tasks_ignore_every_event() -> None:
    for status in FINISHED:
        for event in TaskEvent:
            assert task_target(status, event) is None


def test_task_outcomes_from_running() -> None:
    assert task_target(Status.RUNNING, TaskEvent.SUCCEEDED) is Status.SUCCESS
    assert task_target(Status.RUNNING, TaskEvent.RETRY) is Status.WAIT
    assert {task_target(Status.RUNNING, e) for e in (TaskEvent.FAILED, TaskEvent.TIMED_OUT, TaskEvent.DIED)} == FAILED


def test_claim_is_only_from_ready() -> None:
    assert [s for s in Status if TASK_TABLE[s][TaskEvent.CLAIM].target is Status.RUNNING] == [Status.READY]


def test_cancel_of_a_finished_flow_is_refused_but_a_second_cancel_is_ignored() -> None:
    with pytest.raises(IllegalTransition):
        flow_target(Status.SUCCESS, FlowEvent.CANCEL)
    assert flow_target(Status.CANCEL, FlowEvent.CANCEL) is None
    assert flow_target(Status.FAIL, FlowEvent.CANCEL) is Status.CANCEL


def test_never_entered_statuses_refuse_everything() -> None:
    for status in (Status.SUSPEND, Status.RERUN):
        for event in TaskEvent:
            with pytest.raises(IllegalTransition):
                task_target(status, event)
