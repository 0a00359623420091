"""`${name}` substitution with EnOS system variables (spec enos-semantics §3.2-§3.3).

Pure functions of (text, trigger time, parameters, ids): no clock, no I/O, so the same instance
always gets the same command, whether it runs now, on retry, or on rerun.

Definitions (T = trigger time in the server zone, B = business date = date(T) - 1 day):

- dates are `yyyy-MM-dd`, or `yyyyMMdd` for names ending in `8`; `…10` names are `yyyy-MM-dd`;
- `cal_dt-n` / `cal_dt8-n` take any n >= 0 (`${cal_dt-7}`);
- the hourly variables use BT = T - 1 day, keeping the time of day (spec §3.3, the INFERRED
  reading): `hcal_dt8` = date(BT - 1 h), `cal_hr` = hour(BT - 1 h) as `HH`;
- `monday_next_week` is the first Monday strictly after B (B a Monday gives B + 7);
- date arithmetic is on the wall clock of T's zone (so a DST change never shifts a date);
- `unix_timestamp` is T in whole epoch seconds; `task_id` and `instance_id` are what the caller
  passes (the engine passes the numeric task id and the flow instance id, spec's recommendation).

Parameters may contain variables themselves (`x=${cal_dt}`); they are resolved recursively. A
parameter with the same name as a system variable wins (precedence system < workflow < task <
trigger; build the merged mapping with `merge_parameters`). An unknown `${x}` is left as it is,
and so is a reference that loops (`a=${b}`, `b=${a}`); `expand` reports both so the caller can
log a warning. `${env.APP_CUSTOMER}` / `${env.APP_ID}` are ordinary names: pass them as
parameters if the deployment has them.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

#: `${name}`: a name is anything up to the closing brace, without `$`, `{` or `}`.
_REFERENCE = re.compile(r"\$\{([^${}]+)\}")
_CAL_DT_MINUS = re.compile(r"cal_dt(8?)-(\d{1,5})")


@dataclass(frozen=True, kw_only=True)
class Substitution:
    """Result of `expand`: the text, and the names it could not resolve (each listed once).

    `unknown`: names with no parameter or system variable, left as `${name}` in `text`.
    `looped`: names whose resolution refers back to itself, also left as `${name}`.
    """

    text: str
    unknown: tuple[str, ...] = ()
    looped: tuple[str, ...] = ()


def merge_parameters(*layers: Mapping[str, str] | None) -> dict[str, str]:
    """Merge parameter layers, later layers winning: `merge_parameters(workflow, task, trigger)`.

    `None` layers are skipped. System variables are not a layer here: `expand` puts them below
    every parameter itself.
    """
    merged: dict[str, str] = {}
    for layer in layers:
        if layer:
            merged.update(layer)
    return merged


def business_date(trigger_time: dt.datetime) -> dt.date:
    """B = calendar date of the trigger time (in its own zone) minus one day (spec §2.3, `calDt`)."""
    return trigger_time.date() - dt.timedelta(days=1)


def _d10(day: dt.date) -> str:
    return day.strftime("%Y-%m-%d")


def _d8(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


def _both(values: dict[str, str], stem: str, day: dt.date) -> None:
    values[f"{stem}8"] = _d8(day)
    values[f"{stem}10"] = _d10(day)


def system_variables(
    trigger_time: dt.datetime, *, task_id: int | str, instance_id: str
) -> dict[str, str]:
    """Every fixed-name system variable of spec §3.3 for this trigger time (not `cal_dt-n`)."""
    if trigger_time.tzinfo is None or trigger_time.utcoffset() is None:
        raise ValueError(f"trigger_time must be timezone-aware (server zone), got {trigger_time}")
    b = business_date(trigger_time)
    month_first = b.replace(day=1)
    month_end = b.replace(day=calendar.monthrange(b.year, b.month)[1])
    last_month_end = month_first - dt.timedelta(days=1)
    # Wall-clock arithmetic: BT = T - 1 day, then one hour back, on the naive local time.
    hour_before = trigger_time.replace(tzinfo=None) - dt.timedelta(days=1, hours=1)
    values = {
        "cal_dt": _d10(b),
        "cal_dt8": _d8(b),
        "ncal_dt": _d10(trigger_time.date()),
        "ncal_dt8": _d8(trigger_time.date()),
        "30days_cal_dt": _d10(b - dt.timedelta(days=30)),
        "hcal_dt8": _d8(hour_before.date()),
        "cal_hr": f"{hour_before.hour:02d}",
        "this_hour": trigger_time.strftime("%Y-%m-%d %H:00:00"),
        "unix_timestamp": str(int(trigger_time.timestamp())),
        "task_id": str(task_id),
        "instance_id": str(instance_id),
    }
    _both(values, "last_week", b - dt.timedelta(days=6))
    _both(values, "first_day_this_month", month_first)
    _both(values, "end_day_this_month", month_end)
    _both(values, "first_day_last_month", last_month_end.replace(day=1))
    _both(values, "last_day_last_month", last_month_end)
    _both(values, "monday_next_week", b + dt.timedelta(days=7 - b.weekday()))
    return values


def expand(
    text: str,
    *,
    trigger_time: dt.datetime,
    parameters: Mapping[str, str],
    task_id: int | str,
    instance_id: str,
) -> Substitution:
    """Substitute every `${name}` in `text`; report unknown and looping names (module docstring)."""
    if "${" not in text:
        return Substitution(text=text, unknown=(), looped=())  # most commands: no time arithmetic
    system = system_variables(trigger_time, task_id=task_id, instance_id=instance_id)
    b = business_date(trigger_time)
    unknown: dict[str, None] = {}
    looped: dict[str, None] = {}
    resolved: dict[str, str] = {}

    def lookup(name: str, stack: tuple[str, ...]) -> str | None:
        if name in resolved:
            return resolved[name]
        if name in parameters:
            if name in stack:
                looped[name] = None
                return None
            loops_before = len(looped)
            value = _REFERENCE.sub(lambda m: replace(m, (*stack, name)), parameters[name])
            if len(looped) == loops_before:  # a value built around a loop is not reused
                resolved[name] = value
            return value
        if name in system:
            return system[name]
        minus = _CAL_DT_MINUS.fullmatch(name)
        if minus:
            day = b - dt.timedelta(days=int(minus.group(2)))
            return _d8(day) if minus.group(1) else _d10(day)
        unknown[name] = None
        return None

    def replace(match: re.Match[str], stack: tuple[str, ...]) -> str:
        value = lookup(match.group(1), stack)
        return match.group(0) if value is None else value

    result = _REFERENCE.sub(lambda m: replace(m, ()), text)
    return Substitution(text=result, unknown=tuple(unknown), looped=tuple(looped))


def substitute(
    text: str,
    *,
    trigger_time: dt.datetime,
    parameters: Mapping[str, str],
    task_id: int | str,
    instance_id: str,
) -> str:
    """`expand(...).text`: the substituted text; unknown and looping `${name}` stay unchanged."""
    return expand(
        text,
        trigger_time=trigger_time,
        parameters=parameters,
        task_id=task_id,
        instance_id=instance_id,
    ).text
