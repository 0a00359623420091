"""Wall-clock arithmetic as `java.util.GregorianCalendar` does it, which is where Quartz's DST
behaviour comes from.

Quartz computes fire times by setting calendar fields (second, minute, hour, day, month, year) one
at a time and reading them back. Java resolves the fields lazily: values out of range carry over
("day 32 of January" is February 1st), and a local time is turned into an instant by the rule of
`sun.util.calendar.ZoneInfo.getOffsetsByWall`: a wall time inside a spring-forward gap is read with
the offset in force *before* the gap (so 02:30 becomes 03:30), and a wall time inside a fall-back
overlap is read with the offset in force *after* it (the second, standard-time occurrence). In both
cases that is the smaller of the two candidate offsets, which is what `java_offset` computes.

Only the operations Quartz uses are here; the class is deliberately not a general calendar.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone, tzinfo

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_UTC = timezone.utc


def java_offset(naive: datetime, zone: tzinfo) -> int:
    """UTC offset in seconds that Java applies to the wall time `naive` in `zone`."""
    first = naive.replace(tzinfo=zone, fold=0).utcoffset()
    second = naive.replace(tzinfo=zone, fold=1).utcoffset()
    return int(min(first, second).total_seconds())  # type: ignore[type-var]


def wall_to_epoch(naive: datetime, zone: tzinfo) -> int:
    """The epoch second Java gives the local wall time `naive` (whole seconds) in `zone`."""
    local = (naive.toordinal() - _EPOCH_ORDINAL) * 86400 + naive.hour * 3600 + naive.minute * 60 + naive.second
    return local - java_offset(naive, zone)


class _DayOffsets:
    """Memo of a zone's UTC offset per day, so that most conversions are integer arithmetic.

    A day whose offset is the same at its first and last second (both readings, for local days)
    has no transition in it and is stored as that offset; a day with a transition is stored as
    None and converted the slow, exact way. Days are kept for the process's lifetime, up to a cap.
    """

    _CAP = 200_000

    __slots__ = ("zone", "wall", "utc")

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self.wall: dict[int, int | None] = {}
        self.utc: dict[int, int | None] = {}

    def for_wall_day(self, ordinal: int) -> int | None:
        try:
            return self.wall[ordinal]
        except KeyError:
            pass
        day = datetime.fromordinal(ordinal)
        zone = self.zone
        readings = {
            int(moment.replace(tzinfo=zone, fold=fold).utcoffset().total_seconds())  # type: ignore[union-attr]
            for moment in (day, day.replace(hour=23, minute=59, second=59))
            for fold in (0, 1)
        }
        offset = readings.pop() if len(readings) == 1 else None
        if len(self.wall) > self._CAP:
            self.wall.clear()
        self.wall[ordinal] = offset
        return offset

    def for_utc_day(self, day: int) -> int | None:
        try:
            return self.utc[day]
        except KeyError:
            pass
        first = datetime.fromtimestamp(day * 86400, self.zone).utcoffset()
        last = datetime.fromtimestamp(day * 86400 + 86399, self.zone).utcoffset()
        offset = int(first.total_seconds()) if first == last else None  # type: ignore[union-attr]
        if len(self.utc) > self._CAP:
            self.utc.clear()
        self.utc[day] = offset
        return offset


_memos: dict[tzinfo, _DayOffsets] = {}


def _memo(zone: tzinfo) -> _DayOffsets:
    memo = _memos.get(zone)
    if memo is None:
        memo = _memos[zone] = _DayOffsets(zone)
    return memo


class JavaCalendar:
    """A lenient Gregorian calendar in one zone, holding whole seconds.

    Fields are set without validation and settled (carried over, then resolved to an instant and
    read back) on the next read, exactly when Java's `Calendar.get` would recompute them.
    Months are 0-based, as in Java, so that code ported from Quartz reads the same.
    """

    __slots__ = ("zone", "year", "month0", "day", "hour", "minute", "second", "_dirty", "_fixed", "_memo")

    def __init__(self, zone: tzinfo, epoch_second: int) -> None:
        self.zone = zone
        offset = zone.utcoffset(None) if isinstance(zone, timezone) else None
        self._fixed = int(offset.total_seconds()) if offset is not None else None
        self._memo = None if self._fixed is not None else _memo(zone)
        self.set_epoch(epoch_second)

    def set_epoch(self, epoch_second: int) -> None:
        offset = self._fixed
        if offset is None:
            offset = self._memo.for_utc_day(epoch_second // 86400)  # type: ignore[union-attr]
        if offset is None:  # a day with a transition: ask the zone about this very second
            local_dt = datetime.fromtimestamp(epoch_second, self.zone)
            offset = int(local_dt.utcoffset().total_seconds())  # type: ignore[union-attr]
        local = epoch_second + offset
        days, seconds = divmod(local, 86400)
        civil = date.fromordinal(days + _EPOCH_ORDINAL)
        self.year, self.month0, self.day = civil.year, civil.month - 1, civil.day
        self.hour, rest = divmod(seconds, 3600)
        self.minute, self.second = divmod(rest, 60)
        self._dirty = False

    # Setters: Java's Calendar.set, lazy.
    def set(self, *, year: int | None = None, month0: int | None = None, day: int | None = None,
            hour: int | None = None, minute: int | None = None, second: int | None = None) -> None:
        if year is not None:
            self.year = year
        if month0 is not None:
            self.month0 = month0
        if day is not None:
            self.day = day
        if hour is not None:
            self.hour = hour
        if minute is not None:
            self.minute = minute
        if second is not None:
            self.second = second
        self._dirty = True

    def settle(self) -> "JavaCalendar":
        """Carry out-of-range fields over and re-read them through the zone, as Java does on get."""
        if self._dirty:
            self.set_epoch(self.epoch())
        return self

    def epoch(self) -> int:
        """The instant the current fields denote (Java's Calendar.getTime, in seconds)."""
        year = self.year + self.month0 // 12
        month = self.month0 % 12 + 1
        seconds = self.hour * 3600 + self.minute * 60 + self.second
        extra_days, seconds = divmod(seconds, 86400)
        ordinal = date(year, month, 1).toordinal() + self.day - 1 + extra_days
        local = (ordinal - _EPOCH_ORDINAL) * 86400 + seconds
        if self._fixed is not None:
            return local - self._fixed
        offset = self._memo.for_wall_day(ordinal)  # type: ignore[union-attr]
        if offset is None:  # a day with a transition: resolve this wall time the way Java does
            offset = java_offset(datetime.fromordinal(ordinal) + timedelta(seconds=seconds), self.zone)
        return local - offset

    def day_of_week(self) -> int:
        """Java's DAY_OF_WEEK: 1 = Sunday ... 7 = Saturday."""
        self.settle()
        return date(self.year, self.month0 + 1, self.day).isoweekday() % 7 + 1
