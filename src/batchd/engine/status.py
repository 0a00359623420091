"""The status codes of flow instances and task instances (spec §1.4, semantics §4.1).

EnOS uses one table for both. The wire carries the integer (`status`) and the name
(`statusDesc` / `stsDesc`, and the per-node `status` inside an instance graph).
"""

from __future__ import annotations

from enum import IntEnum


class Status(IntEnum):
    """One status code. Comments say what the engine means by it."""

    FAIL = -1  # a task failed for good (retries used up); a flow with such a task
    INIT = 0  # created, nothing decided yet; downstream tasks of a failure stay here
    SUCCESS = 1  # finished well: exit code in successCode; a flow whose tasks all succeeded or skipped
    RUNNING = 2  # a task with a live attempt; a flow admitted to run (the one per workflow)
    SUSPEND = 3  # never entered by batchd (EnOS documents no way in or out)
    INTERNAL_ERROR = 4  # the platform failed the task (batchd died with it) and no retry is left
    WAIT = 5  # waiting: trigger time, the previous instance, a reference, a retry or waitCode delay
    READY = 6  # every precondition met; the dispatcher may claim it
    TIMEOUT = 7  # the last attempt ran past `timeout` (retries used up)
    CANCEL = 8  # stopped by a user (Cancel Flow Instance)
    RERUN = 9  # never entered by batchd (reruns create a new instance: Trigger Flow From Task)
    SKIP = 10  # not selected by Trigger Flow From Task; counts as done for downstream tasks


#: Finished for good: nothing happens to these any more (except cancel of a FAIL flow, below).
FINISHED = frozenset({Status.FAIL, Status.SUCCESS, Status.INTERNAL_ERROR, Status.TIMEOUT, Status.CANCEL,
                      Status.SKIP})

#: A task in one of these failed its flow instance.
FAILED = frozenset({Status.FAIL, Status.INTERNAL_ERROR, Status.TIMEOUT})

#: An upstream task in one of these lets its downstream tasks run.
DONE_FOR_DOWNSTREAM = frozenset({Status.SUCCESS, Status.SKIP})
#: Everything else: a task in one of these keeps its flow instance from finishing well.
NOT_DONE_FOR_DOWNSTREAM = frozenset(Status) - DONE_FOR_DOWNSTREAM

#: Not started yet, or between attempts: what cancel marks CANCEL without killing anything.
PENDING = frozenset({Status.INIT, Status.WAIT, Status.READY})

#: Flow instances that still hold or wait for their workflow's one running slot.
QUEUED = frozenset({Status.INIT, Status.WAIT})

#: A flow instance the user may cancel: not started, running, or failed with branches still
#: running (semantics §4.4: the docs tell users to stop such an instance).
CANCELLABLE = frozenset({Status.INIT, Status.WAIT, Status.READY, Status.RUNNING, Status.FAIL})


_NAMES = {int(status): status.name for status in Status}


def status_name(code: int) -> str:
    """`SUCCESS` for 1; the wire's `statusDesc`. ValueError for a code that is no status.

    A dict, not `Status(code).name`: an instance graph names a status per task (1,000 of them
    for a large workflow), and the enum lookup was a third of Get Flow Instance's time."""
    try:
        return _NAMES[code]
    except KeyError:
        raise ValueError(f"{code!r} is not a valid Status") from None
