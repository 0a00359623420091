"""The log block that starts every attempt, in the layout of EnOS's task-instance log (spec §4.6)."""

from __future__ import annotations

import datetime as dt
import time

_OPEN = "=" * 73
_CLOSE = "=" * 39
# Fixed English names, as Java's Date.toString prints them, whatever the server's locale.
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def java_date(moment: dt.datetime) -> str:
    """`Thu Aug 08 03:22:38 UTC 2019`: Java's `Date.toString()` in `moment`'s own zone.

    The zone is the tz abbreviation (`UTC`, `CST`); a fixed offset without one prints as
    `GMT+08:00`, as Java does.
    """
    if moment.tzinfo is None:
        raise ValueError(f"moment must be timezone-aware, got {moment}")
    zone = moment.tzname() or ""
    if not zone or zone.startswith(("UTC+", "UTC-", "+", "-")):
        offset = moment.utcoffset() or dt.timedelta()
        sign = "-" if offset < dt.timedelta() else "+"
        minutes = abs(int(offset.total_seconds())) // 60
        zone = f"GMT{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    return (
        f"{_DAYS[moment.weekday()]} {_MONTHS[moment.month - 1]} {moment.day:02d} "
        f"{moment:%H:%M:%S} {zone} {moment.year}"
    )


class Clock:
    """`java_date` of the current second in one zone, formatted once per second: every
    attempt's header shows the time it starts, and a busy engine starts hundreds a second
    (formatting one, with the zone's name and offset, costs ~20 µs)."""

    def __init__(self, zone: dt.tzinfo) -> None:
        self.zone = zone
        self._second = -1
        self._text = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            moment = dt.datetime.fromtimestamp(second, tz=dt.timezone.utc).astimezone(self.zone)
            self._second, self._text = second, java_date(moment)
        return self._text


def attempt_header(
    run_num: int,
    attempt: int,
    instance_id: str,
    cmdline: str,
    submitter: str,
    now: dt.datetime | str,
) -> str:
    """The header block the engine passes as `AttemptSpec.header` (ends with a newline); `now`
    is the current time, or its `java_date` already (`Clock`).

    Byte-for-byte the EnOS sample for a first attempt (`run  num:` has two spaces there);
    a retry (attempt >= 2) adds an `attempt:` line after the run number, since EnOS shows one
    block per attempt without saying which.
    """
    lines = [_OPEN, f"run  num:\t{run_num}"]
    if attempt > 1:
        lines.append(f"attempt:\t{attempt}")
    lines += [
        f"instance:\t{instance_id}",
        f"cmdline:\t{cmdline}",
        f"submitter:\t{submitter}",
        f"current time:\t{now if isinstance(now, str) else java_date(now)}",
        _CLOSE,
    ]
    return "\n".join(lines) + "\n"
