"""English descriptions of cron expressions, for the console and `batchd cron explain`.

Written from the parsed fields rather than the text, so that `0 0/15 * * * ?` and
`0 0,15,30,45 * * * ?` read the same, and so that the description can never disagree with what
the schedule does. Common shapes get a natural sentence ("every 15 minutes", "at 02:30, on
Monday"); anything else falls back to listing each field's values, which is always correct.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from batchd.cron.syntax import ALL_SPEC, NO_SPEC, max_year

if TYPE_CHECKING:
    from batchd.cron.expression import CronExpression

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}


def _values(values: tuple[int, ...]) -> list[int]:
    return [v for v in values if v not in (ALL_SPEC, NO_SPEC)]


def _is_every(values: tuple[int, ...], low: int, high: int) -> bool:
    return _values(values) == list(range(low, high + 1))


def _step(values: list[int], high: int) -> int | None:
    """The step of an arithmetic run that starts at the lowest value and runs to the end."""
    if len(values) < 2:
        return None
    step = values[1] - values[0]
    if any(b - a != step for a, b in zip(values, values[1:])) or values[-1] + step <= high:
        return None
    return step


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _day_ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _time_part(seconds: list[int], minutes: list[int], hours: list[int]) -> str:
    every_second = seconds == list(range(60))
    every_minute = minutes == list(range(60))
    every_hour = hours == list(range(24))
    if every_second and every_minute and every_hour:
        return "every second"
    if len(seconds) == 1 and every_minute and every_hour:
        return "every minute" + (f" at second {seconds[0]}" if seconds[0] else "")
    if len(seconds) == 1 and len(minutes) == 1 and len(hours) == 1:
        return f"at {hours[0]:02d}:{minutes[0]:02d}:{seconds[0]:02d}"
    if len(seconds) == 1 and len(minutes) == 1 and every_hour:
        return f"every hour at minute {minutes[0]}" + (f", second {seconds[0]}" if seconds[0] else "")
    if len(seconds) == 1 and len(hours) == 1 and len(minutes) <= 6:
        times = [f"{hours[0]:02d}:{m:02d}:{seconds[0]:02d}" for m in minutes]
        return "at " + _join(times)
    if len(seconds) == 1 and len(minutes) == 1 and len(hours) <= 6:
        times = [f"{h:02d}:{minutes[0]:02d}:{seconds[0]:02d}" for h in hours]
        return "at " + _join(times)
    parts = []
    for name, values, high in (("second", seconds, 59), ("minute", minutes, 59), ("hour", hours, 23)):
        if values == list(range(high + 1)):
            if name != "hour":  # "every hour" adds nothing once a finer field repeats
                parts.append(f"every {name}")
            continue
        if name == "second" and values == [0]:
            continue  # on the minute: the usual case, not worth saying
        step = _step(values, high)
        if step is not None:
            every = f"every {name}" if step == 1 else f"every {step} {name}s"
            parts.append(every + (f" starting at {name} {values[0]}" if values[0] else ""))
        elif len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
            parts.append(f"{name}s {values[0]}-{values[-1]}")
        else:
            parts.append(f"at {name}{'s' if len(values) > 1 else ''} {_join([str(v) for v in values])}")
    return ", ".join(parts)


def _day_part(expression: "CronExpression") -> str:
    f = expression.fields
    if NO_SPEC in f.days_of_week:  # day-of-month rules
        if f.last_day_of_month:
            base = "the last day" if not f.last_day_offset else f"{f.last_day_offset} days before the last day"
            return f"on the weekday nearest {base} of the month" if f.nearest_weekday else f"on {base} of the month"
        days = _values(f.days_of_month)
        if f.nearest_weekday:
            return f"on the weekday nearest the {_day_ordinal(days[0])} of the month"
        if days == list(range(1, 32)):
            return "every day"
        step = _step(days, 31)
        if step is not None:
            return f"every {step} days of the month starting on the {_day_ordinal(days[0])}"
        return "on the " + _join([_day_ordinal(d) for d in days]) + " of the month"
    days = _values(f.days_of_week)
    if f.last_day_of_week:
        return f"on the last {_DAYS[days[0] - 1]} of the month"
    if f.nth_day_of_week:
        return f"on the {_ORDINALS[f.nth_day_of_week]} {_DAYS[days[0] - 1]} of the month"
    if days == list(range(1, 8)):
        return "every day"
    if days == [2, 3, 4, 5, 6]:
        return "on weekdays"
    if days == [1, 7]:
        return "on weekends"
    return "on " + _join([_DAYS[d - 1] for d in days])


def describe(expression: "CronExpression") -> str:
    """One line of English saying when `expression` fires."""
    f = expression.fields
    text = f"{_time_part(_values(f.seconds), _values(f.minutes), _values(f.hours))}, {_day_part(expression)}"
    months = _values(f.months)
    if months != list(range(1, 13)):
        text += ", in " + _join([_MONTHS[m - 1] for m in months])
    years = _values(f.years)
    if not years:
        text += ", never (no year selected)"
    elif years != list(range(1970, max_year() + 1)):
        if years == list(range(years[0], years[-1] + 1)) and len(years) > 2:
            text += f", in {years[0]}-{years[-1]}"
        else:
            text += ", in " + _join([str(y) for y in years])
    return text
