"""Exit codes to a verdict: pure helpers for the engine (spec §4.3 `successCode`, `waitCode`)."""

from __future__ import annotations

from collections.abc import Set
from enum import StrEnum

from batchd.errors import InvalidParameter
from batchd.runner.records import AttemptOutcome


class Verdict(StrEnum):
    """How the engine should read an attempt's outcome."""

    SUCCESS = "SUCCESS"  # exit code in successCode
    FAILED = "FAILED"  # any other exit code
    TIMEOUT = "TIMEOUT"  # killed after timeout_seconds
    WAIT = "WAIT"  # exit code in waitCode (and not in successCode): poll again later
    CANCELLED = "CANCELLED"  # killed, or never started, because cancel was set
    ERROR = "ERROR"  # could not run at all (outcome.error): a platform problem, not the user's code


def parse_codes(text: str | None, *, field: str = "successCode") -> frozenset[int]:
    """`"0,5"` -> `frozenset({0, 5})`; empty or None -> empty set. Codes are 0-255.

    Raises `InvalidParameter` naming the field and the text: `successCode: 'x' in "0,x" is not
    an exit code (comma-separated integers 0-255, e.g. "0,5")`. The engine applies the default
    itself: `parse_codes(task.success_code) or frozenset({0})`.
    """
    if text is None or not text.strip():
        return frozenset()
    codes = set()
    for part in text.split(","):
        item = part.strip()
        if not item.isascii() or not item.isdigit() or int(item) > 255:
            raise InvalidParameter(
                f"{field}: {item!r} in {text!r} is not an exit code "
                '(comma-separated integers 0-255, e.g. "0,5")'
            )
        codes.add(int(item))
    return frozenset(codes)


def classify(
    outcome: AttemptOutcome, success_codes: Set[int], wait_codes: Set[int] = frozenset()
) -> Verdict:
    """Verdict of one attempt. Order: cancelled, timed out, error, success code, wait code, failed.

    A code in both sets is SUCCESS. A negative exit code (killed by a signal) is never a success.
    """
    if outcome.cancelled:
        return Verdict.CANCELLED
    if outcome.timed_out:
        return Verdict.TIMEOUT
    if outcome.error is not None or outcome.exit_code is None:
        return Verdict.ERROR
    if outcome.exit_code in success_codes:
        return Verdict.SUCCESS
    if outcome.exit_code in wait_codes:
        return Verdict.WAIT
    return Verdict.FAILED
