"""`CronExpression`: a parsed Quartz expression and the instants at which it fires.

`next_fire` is a line-by-line port of Quartz 2.3.2's `CronExpression.getTimeAfter` over
`JavaCalendar`, not a fresh algorithm: what Quartz does at DST changes (a daily 02:30 moves to
03:30 on a spring-forward day, an hourly schedule fires once in a repeated hour, some schedules
skip or double around transitions) is a consequence of how that method moves calendar fields, and
reproducing the method is the only way to reproduce every such answer. The golden files under
`tests/cron/golden/` hold the real Quartz's output for thousands of cases and keep this honest.
"""

from __future__ import annotations

import calendar as _gregorian
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from functools import lru_cache
import math
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from batchd.cron.calendar import JavaCalendar
from batchd.cron.syntax import NO_SPEC, CronFields, max_year, parse_fields
from batchd.errors import InvalidParameter

_SATURDAY, _SUNDAY = 7, 1
_GIVE_UP_YEAR = 2999  # Quartz stops looking past this year
# A safety net, never reached by expressions we accept: the longest honest search (a rare
# weekday-of-month in a far year) takes a few steps per month until MAX_YEAR, far below this.
_MAX_STEPS = 200_000

_CUSTOM_ZONE = re.compile(r"(?:GMT|UTC)([+-])(\d{1,2})(?::?(\d{2}))?")


class UnknownTimeZone(InvalidParameter):
    """A time zone name that is neither an IANA zone nor a `GMT+H[:MM]` offset."""


@lru_cache(maxsize=256)
def resolve_zone(name: str) -> tzinfo:
    """An IANA zone (`Europe/Berlin`), `UTC`/`GMT`, or a Java-style custom id (`GMT+8`, `GMT-05:30`)."""
    match = _CUSTOM_ZONE.fullmatch(name)
    if match:
        sign, hours, minutes = match.groups()
        offset = timedelta(hours=int(hours), minutes=int(minutes or 0))
        if offset > timedelta(hours=23, minutes=59):
            raise UnknownTimeZone(f"zone: '{name}' is not a valid offset")
        return timezone(-offset if sign == "-" else offset, name)
    if name in ("UTC", "GMT", "Z"):
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UnknownTimeZone(f"zone: unknown time zone '{name}'") from exc


def _ceiling(values: tuple[int, ...], x: int) -> int | None:
    """Smallest value >= x (Java's `set.tailSet(x).first()`), or None."""
    i = bisect_left(values, x)
    return values[i] if i < len(values) else None


def _next_value(values: tuple[int, ...], current: int) -> tuple[int, bool]:
    """The field value to move to from `current`, and whether the next larger field must carry.

    Quartz's `set.tailSet(current).first()`, falling back to the first value of the set (and a
    carry into the next field) when nothing is left.
    """
    found = _ceiling(values, current)
    return (values[0], True) if found is None else (found, False)


def _days_until(current_dow: int, wanted_dow: int) -> int:
    """Days from weekday `current_dow` forward to weekday `wanted_dow` (Java numbering, 1 = Sunday).

    Written as Quartz writes it rather than as `% 7`: Quartz accepts weekday numbers past 7 in
    `n#k` (`9#2`), and for those the two forms differ.
    """
    if current_dow < wanted_dow:
        return wanted_dow - current_dow
    if current_dow > wanted_dow:
        return wanted_dow + (7 - current_dow)
    return 0


def _last_day_of_month(month: int, year: int) -> int:
    return _gregorian.monthrange(year, month)[1]


@dataclass(frozen=True, slots=True)
class CronExpression:
    """A Quartz cron expression. Build with `CronExpression.parse`."""

    text: str
    fields: CronFields

    @classmethod
    def parse(cls, text: str) -> "CronExpression":
        """Parse as Quartz would; raises `CronSyntaxError` naming the field when Quartz would not."""
        return _parse_cached(text)

    # -- fire times -----------------------------------------------------------------------------

    def next_fire(self, after: datetime, zone: str | tzinfo) -> datetime | None:
        """The first fire time strictly after `after` (an aware datetime), in `zone`; None if none."""
        tz = resolve_zone(zone) if isinstance(zone, str) else zone
        epoch = self.next_epoch(_epoch_of(after), tz)
        return None if epoch is None else _in_zone(epoch, tz)

    def fire_times(self, after: datetime, zone: str | tzinfo) -> Iterator[datetime]:
        """Fire times strictly after `after`, in order, each an aware datetime in `zone`."""
        tz = resolve_zone(zone) if isinstance(zone, str) else zone
        epoch: float | None = _epoch_of(after)
        while True:
            epoch = self.next_epoch(epoch, tz)  # type: ignore[arg-type]
            if epoch is None:
                return
            yield _in_zone(epoch, tz)

    def next_epoch(self, after: float, zone: tzinfo) -> int | None:
        """Quartz's getTimeAfter on epoch seconds: the next fire time strictly after `after`."""
        f = self.fields
        after_time = math.floor(after) + 1  # Quartz moves one second on, then drops the millis
        cl = JavaCalendar(zone, after_time)
        limit_year = max_year()
        dom_given = NO_SPEC not in f.days_of_month
        dow_given = NO_SPEC not in f.days_of_week

        for _ in range(_MAX_STEPS):
            cl.settle()
            if cl.year > _GIVE_UP_YEAR:
                return None

            # second ---------------------------------------------------------------------------
            sec, carried = _next_value(f.seconds, cl.second)
            if carried:
                cl.set(minute=cl.minute + 1)
            cl.set(second=sec)

            # minute ---------------------------------------------------------------------------
            cl.settle()
            minute, carried = _next_value(f.minutes, cl.minute)
            if carried or minute != cl.minute:
                hour = cl.hour + carried
                cl.set(second=0, minute=minute)
                _set_hour(cl, hour)
                continue

            # hour -----------------------------------------------------------------------------
            hour, carried = _next_value(f.hours, cl.hour)
            if carried or hour != cl.hour:
                cl.set(second=0, minute=0, day=cl.day + carried)
                _set_hour(cl, hour)
                continue

            # day ------------------------------------------------------------------------------
            cl.settle()
            day, mon = cl.day, cl.month0 + 1
            t = -1
            tmon = mon
            if dom_given and not dow_given:
                if f.last_day_of_month:
                    if not f.nearest_weekday:
                        t = day
                        day = _last_day_of_month(mon, cl.year) - f.last_day_offset
                        if t > day:
                            mon += 1
                            if mon > 12:
                                mon = 1
                                tmon = 3333  # make the month test below fail, as Quartz does
                                cl.set(year=cl.year + 1)
                            day = 1
                    else:
                        t = day
                        day = _last_day_of_month(mon, cl.year) - f.last_day_offset
                        if day < 1:
                            # `L-29W` in February: Quartz searches forever here; batchd decides
                            # the month has no such day and moves on (docs/decisions.md).
                            day = 1
                            mon += 1
                        elif _weekday_fire_epoch(
                            zone, cl.year, mon, (day := _nearest_weekday(zone, cl.year, mon, day)), hour, minute, sec
                        ) < after_time:
                            day = 1
                            mon += 1
                elif f.nearest_weekday:
                    t = day
                    day = f.days_of_month[0]
                    day = _nearest_weekday(zone, cl.year, mon, day)
                    if _weekday_fire_epoch(zone, cl.year, mon, day, hour, minute, sec) < after_time:
                        day = f.days_of_month[0]
                        mon += 1
                else:
                    found = _ceiling(f.days_of_month, day)
                    if found is not None:
                        t = day
                        day = found
                        if day > _last_day_of_month(mon, cl.year):
                            day = f.days_of_month[0]
                            mon += 1
                    else:
                        day = f.days_of_month[0]
                        mon += 1
                if day != t or mon != tmon:
                    cl.set(second=0, minute=0, hour=0, day=day, month0=mon - 1)
                    continue
            elif dow_given and not dom_given:
                if f.last_day_of_week:
                    dow = f.days_of_week[0]
                    c_dow = cl.day_of_week()
                    days_to_add = _days_until(c_dow, dow)
                    l_day = _last_day_of_month(mon, cl.year)
                    if day + days_to_add > l_day:
                        cl.set(second=0, minute=0, hour=0, day=1, month0=mon)
                        continue
                    while day + days_to_add + 7 <= l_day:
                        days_to_add += 7
                    day += days_to_add
                    if days_to_add > 0:
                        cl.set(second=0, minute=0, hour=0, day=day, month0=mon - 1)
                        continue
                elif f.nth_day_of_week != 0:
                    dow = f.days_of_week[0]
                    c_dow = cl.day_of_week()
                    days_to_add = _days_until(c_dow, dow)
                    day_shifted = days_to_add > 0
                    day += days_to_add
                    week_of_month = day // 7
                    if day % 7 > 0:
                        week_of_month += 1
                    days_to_add = (f.nth_day_of_week - week_of_month) * 7
                    day += days_to_add
                    if days_to_add < 0 or day > _last_day_of_month(mon, cl.year):
                        cl.set(second=0, minute=0, hour=0, day=1, month0=mon)
                        continue
                    elif days_to_add > 0 or day_shifted:
                        cl.set(second=0, minute=0, hour=0, day=day, month0=mon - 1)
                        continue
                else:
                    c_dow = cl.day_of_week()
                    dow = f.days_of_week[0]
                    found = _ceiling(f.days_of_week, c_dow)
                    if found is not None:
                        dow = found
                    days_to_add = _days_until(c_dow, dow)
                    l_day = _last_day_of_month(mon, cl.year)
                    if day + days_to_add > l_day:
                        cl.set(second=0, minute=0, hour=0, day=1, month0=mon)
                        continue
                    elif days_to_add > 0:
                        cl.set(second=0, minute=0, hour=0, day=day + days_to_add, month0=mon - 1)
                        continue
            else:  # pragma: no cover - parse() refuses both and neither
                raise AssertionError("day-of-month and day-of-week both given or both '?'")
            cl.set(day=day)

            # month ----------------------------------------------------------------------------
            cl.settle()
            if cl.year > limit_year:
                return None
            mon, carried = _next_value(f.months, cl.month0 + 1)
            if carried or mon != cl.month0 + 1:
                cl.set(second=0, minute=0, hour=0, day=1, month0=mon - 1, year=cl.year + carried)
                continue

            # year -----------------------------------------------------------------------------
            year = _ceiling(f.years, cl.year)
            if year is None:
                return None
            if year != cl.year:
                cl.set(second=0, minute=0, hour=0, day=1, month0=0, year=year)
                continue
            return cl.epoch()
        return None  # no fire time found within _MAX_STEPS; Quartz would still be searching

    # -- for people -----------------------------------------------------------------------------

    def describe(self) -> str:
        """A one-line English description, for the console and the CLI."""
        from batchd.cron.description import describe

        return describe(self)

    def __str__(self) -> str:
        return self.text


@lru_cache(maxsize=4096)
def _parse_cached(text: str) -> CronExpression:
    return CronExpression(text=text, fields=parse_fields(text))


def _set_hour(cl: JavaCalendar, hour: int) -> None:
    """Quartz's setCalendarHour: if DST swallowed the hour, ask for the one after it."""
    cl.set(hour=hour)
    if cl.settle().hour != hour and hour != 24:
        cl.set(hour=hour + 1)


def _nearest_weekday(zone: tzinfo, year: int, mon: int, day: int) -> int:
    """Quartz's `W` rule: move a Saturday to Friday and a Sunday to Monday, within the month.

    Quartz asks a fresh calendar for the weekday of `day` in month `mon`, letting a day past the
    month's end roll into the next month (`31W` in April asks about May 1st), so we do the same.
    """
    probe = JavaCalendar(zone, 0)
    probe.set(second=0, minute=0, hour=0, day=day, month0=mon - 1, year=year)
    dow = probe.day_of_week()
    last = _last_day_of_month(mon, year)
    if dow == _SATURDAY and day == 1:
        return day + 2
    if dow == _SATURDAY:
        return day - 1
    if dow == _SUNDAY and day == last:
        return day - 2
    if dow == _SUNDAY:
        return day + 1
    return day


def _weekday_fire_epoch(zone: tzinfo, year: int, mon: int, day: int, hour: int, minute: int, sec: int) -> int:
    probe = JavaCalendar(zone, 0)
    probe.set(second=sec, minute=minute, hour=hour, day=day, month0=mon - 1, year=year)
    return probe.epoch()


def _epoch_of(moment: datetime) -> float:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("an aware datetime is required (naive times are ambiguous around DST)")
    return moment.timestamp()


def _in_zone(epoch: int, zone: tzinfo) -> datetime:
    return datetime.fromtimestamp(epoch, zone)
