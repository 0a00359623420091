"""Every (status, event) pair of a flow instance and of a task instance, decided in one table.

Each pair is one of three decisions:

- `act(target)`: the event moves the instance to `target` (which may be its current status);
- `IGNORE`: the event is legitimate but changes nothing (a late attempt outcome after a cancel,
  a second cancel, a claim another process won);
- `REFUSE`: the event must not happen in this status. For a user's request (cancel of a finished
  instance) the operation turns it into 62104; anywhere else it is a bug and raises.

The tables are total: tests/engine/test_transitions.py checks that every status has a row and
every row names every event, so adding a status or an event fails until each pair is decided.
The engine never assigns a status without asking `decide_flow` / `decide_task` first.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from batchd.engine.status import Status

S = Status


class Verdict(Enum):
    ACT = "act"
    IGNORE = "ignore"
    REFUSE = "refuse"


@dataclass(frozen=True, kw_only=True)
class Decision:
    verdict: Verdict
    target: Status | None = None  # set for ACT only


def act(target: Status) -> Decision:
    return Decision(verdict=Verdict.ACT, target=target)


IGNORE = Decision(verdict=Verdict.IGNORE)
REFUSE = Decision(verdict=Verdict.REFUSE)


class IllegalTransition(RuntimeError):
    """An event arrived in a status where the table refuses it."""

    def __init__(self, kind: str, status: Status, event: Enum) -> None:
        super().__init__(f"{kind} in {status.name} refuses {event.name}")
        self.status = status
        self.event = event


# --- flow instances --------------------------------------------------------------------------


class FlowEvent(Enum):
    QUEUE = "queue"  # not admitted yet: trigger time ahead, or another instance holds the slot
    ADMIT = "admit"  # takes its workflow's one running slot
    TASK_FAILED = "task_failed"  # a task ended FAIL, TIMEOUT or INTERNAL_ERROR
    ALL_DONE = "all_done"  # every task is SUCCESS or SKIP
    CANCEL = "cancel"  # Cancel Flow Instance


F = FlowEvent

_FLOW_FINISHED_ROW = {F.QUEUE: IGNORE, F.ADMIT: IGNORE, F.TASK_FAILED: IGNORE, F.ALL_DONE: IGNORE,
                      F.CANCEL: REFUSE}
_NEVER_ENTERED_FLOW = {F.QUEUE: REFUSE, F.ADMIT: REFUSE, F.TASK_FAILED: REFUSE, F.ALL_DONE: REFUSE,
                       F.CANCEL: REFUSE}

FLOW_TABLE: dict[Status, dict[FlowEvent, Decision]] = {
    S.INIT: {F.QUEUE: act(S.WAIT), F.ADMIT: act(S.RUNNING), F.TASK_FAILED: REFUSE, F.ALL_DONE: REFUSE,
             F.CANCEL: act(S.CANCEL)},
    S.WAIT: {F.QUEUE: IGNORE, F.ADMIT: act(S.RUNNING), F.TASK_FAILED: REFUSE, F.ALL_DONE: REFUSE,
             F.CANCEL: act(S.CANCEL)},
    # batchd admits straight from INIT/WAIT to RUNNING; READY is kept decidable for old rows.
    S.READY: {F.QUEUE: IGNORE, F.ADMIT: act(S.RUNNING), F.TASK_FAILED: REFUSE, F.ALL_DONE: REFUSE,
              F.CANCEL: act(S.CANCEL)},
    S.RUNNING: {F.QUEUE: IGNORE, F.ADMIT: IGNORE, F.TASK_FAILED: act(S.FAIL), F.ALL_DONE: act(S.SUCCESS),
                F.CANCEL: act(S.CANCEL)},
    # FAIL is final, but branches may still run: cancel stops them (semantics §4.4).
    S.FAIL: {**_FLOW_FINISHED_ROW, F.CANCEL: act(S.CANCEL)},
    S.SUCCESS: _FLOW_FINISHED_ROW,
    S.TIMEOUT: _FLOW_FINISHED_ROW,
    S.INTERNAL_ERROR: _FLOW_FINISHED_ROW,
    S.SKIP: _FLOW_FINISHED_ROW,
    S.CANCEL: {**_FLOW_FINISHED_ROW, F.CANCEL: IGNORE},  # cancelling twice is harmless
    S.SUSPEND: _NEVER_ENTERED_FLOW,
    S.RERUN: _NEVER_ENTERED_FLOW,
}


# --- task instances --------------------------------------------------------------------------


class TaskEvent(Enum):
    BLOCKED = "blocked"  # upstreams done but a reference or a not-before time is still pending
    UNBLOCKED = "unblocked"  # upstreams done, references satisfied, not-before time passed
    CLAIM = "claim"  # a dispatcher starts an attempt (compare-and-set on READY)
    SUCCEEDED = "succeeded"  # exit code in successCode
    WAIT_CODE = "wait_code"  # exit code in waitCode: check again later, no retry consumed
    RETRY = "retry"  # failed, timed out or died with batchd, and a retry is left
    FAILED = "failed"  # failed, no retry left
    TIMED_OUT = "timed_out"  # timed out, no retry left
    DIED = "died"  # its batchd died during the attempt, no retry left
    CANCEL = "cancel"  # its flow instance is cancelled


T = TaskEvent
_OUTCOMES = (T.SUCCEEDED, T.WAIT_CODE, T.RETRY, T.FAILED, T.TIMED_OUT, T.DIED)

# A late outcome (the attempt was cancelled, or already declared dead by recovery) changes nothing.
_STALE_OUTCOMES = {event: IGNORE for event in _OUTCOMES}
_TASK_FINISHED_ROW = {T.BLOCKED: IGNORE, T.UNBLOCKED: IGNORE, T.CLAIM: IGNORE, **_STALE_OUTCOMES,
                      T.CANCEL: IGNORE}
_NEVER_ENTERED_TASK = {event: REFUSE for event in TaskEvent}

TASK_TABLE: dict[Status, dict[TaskEvent, Decision]] = {
    S.INIT: {T.BLOCKED: act(S.WAIT), T.UNBLOCKED: act(S.READY), T.CLAIM: IGNORE, **_STALE_OUTCOMES,
             T.CANCEL: act(S.CANCEL)},
    S.WAIT: {T.BLOCKED: IGNORE, T.UNBLOCKED: act(S.READY), T.CLAIM: IGNORE, **_STALE_OUTCOMES,
             T.CANCEL: act(S.CANCEL)},
    S.READY: {T.BLOCKED: IGNORE, T.UNBLOCKED: IGNORE, T.CLAIM: act(S.RUNNING), **_STALE_OUTCOMES,
              T.CANCEL: act(S.CANCEL)},
    S.RUNNING: {T.BLOCKED: IGNORE, T.UNBLOCKED: IGNORE, T.CLAIM: IGNORE, T.SUCCEEDED: act(S.SUCCESS),
                T.WAIT_CODE: act(S.WAIT), T.RETRY: act(S.WAIT), T.FAILED: act(S.FAIL),
                T.TIMED_OUT: act(S.TIMEOUT), T.DIED: act(S.INTERNAL_ERROR), T.CANCEL: act(S.CANCEL)},
    S.SUCCESS: _TASK_FINISHED_ROW,
    S.FAIL: _TASK_FINISHED_ROW,
    S.TIMEOUT: _TASK_FINISHED_ROW,
    S.INTERNAL_ERROR: _TASK_FINISHED_ROW,
    S.CANCEL: _TASK_FINISHED_ROW,
    S.SKIP: _TASK_FINISHED_ROW,
    S.SUSPEND: _NEVER_ENTERED_TASK,
    S.RERUN: _NEVER_ENTERED_TASK,
}


def decide_flow(status: int, event: FlowEvent) -> Decision:
    return FLOW_TABLE[Status(status)][event]


def decide_task(status: int, event: TaskEvent) -> Decision:
    return TASK_TABLE[Status(status)][event]


def flow_target(status: int, event: FlowEvent) -> Status | None:
    """The new status, None when the event is ignored; IllegalTransition when refused."""
    return _target("flow instance", decide_flow(status, event), Status(status), event)


def task_target(status: int, event: TaskEvent) -> Status | None:
    """The new status, None when the event is ignored; IllegalTransition when refused."""
    return _target("task instance", decide_task(status, event), Status(status), event)


def _target(kind: str, decision: Decision, status: Status, event: Enum) -> Status | None:
    if decision.verdict is Verdict.REFUSE:
        raise IllegalTransition(kind, status, event)
    return decision.target if decision.verdict is Verdict.ACT else None
