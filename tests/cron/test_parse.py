"""Parsing: what Quartz accepts we accept, and every refusal names the field and the text."""

from datetime import datetime, timezone

import pytest

from batchd.cron import CronExpression, CronSyntaxError, UnknownTimeZone, resolve_zone
from batchd.errors import InvalidParameter


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 0 25 * * ?", "hour: 25 is out of range 0-23"),
        ("60 0 0 * * ?", "second: 60 is out of range 0-59"),
        ("0 61 0 * * ?", "minute: 61 is out of range 0-59"),
        ("0 0 0 32 * ?", "day-of-month: 32 is out of range 1-31"),
        ("0 0 0 ? 13 *", "month: 13 is out of range 1-12"),
        ("0 0 0 ? * 8", "day-of-week: 8 is out of range 1-7"),
        ("0 0 0 ? FOO *", "month: 'FOO': 'FOO' is not a month name"),
        ("0 0 0 ? * FUN", "day-of-week: 'FUN': 'FUN' is not a day name"),
        ("0 0 0 * * *", "day-of-month and day-of-week: exactly one of them must be '?'"),
        ("0 0 0 ? * ?", "day-of-month and day-of-week: exactly one of them must be '?'"),
        ("0 0 0 * *", "has 5 fields; expected 6 or 7"),
        ("", "cron expression is empty"),
        ("0 0 0 L-40 * ?", "day-of-month: 'L-40': offset from the last day must be at most 30"),
        ("0 0 0 ? * 6#6", "day-of-week: '6#6': '#' must be followed by a number from 1 to 5"),
        ("0 0 0 0W * ?", "day-of-month: '0W': 0 is out of range 1-31"),
        ("*/61 * * * * ?", "second: '*/61': step 61 is larger than 59"),
        ("0 0 0 ? * MON/X", None),
        ("0 0 0 5L * ?", "day-of-month: '5L': 'L' after a number is only allowed in day-of-week"),
        ("0 0 0 ? * 3W", "day-of-week: '3W': 'W' is only allowed in day-of-month"),
        ("0 0 L * * ?", "hour: 'L' selects no value"),
        ("0 0 0 L,5 * ?", "L and LW cannot be combined with other days of the month"),
        ("0 0 0 ? * 1#1,2#2", "only one n#k"),
        ("0 0 0 * * ? 2010-2000", "year: '2010-2000': a year range must not run backwards"),
        ("0 0 ? * * *", "hour: '?': '?' is only allowed in day-of-month or day-of-week"),
        ("0 0 5/1X * * ?", "hour: '5/1X': unexpected 'X' after the step"),
    ],
)
def test_invalid_expressions_name_the_field(text: str, message: str | None) -> None:
    if message is None:  # Quartz reads a name and ignores what follows: not an error
        CronExpression.parse(text)
        return
    with pytest.raises(CronSyntaxError) as caught:
        CronExpression.parse(text)
    assert message in str(caught.value)
    assert caught.value.code == 62102  # shown to API users as "invalid parameter"
    assert isinstance(caught.value, InvalidParameter)


@pytest.mark.parametrize(
    ("quirky", "plain"),
    [
        ("0 0 5X * * ?", "0 0 5 * * ?"),  # Quartz ignores text after a value
        ("0 0 0 ? JAN/2 *", "0 0 0 ? JAN *"),
        ("0 1-5X * * * ?", "0 1-5 * * * ?"),
        ("*/0 * * * * ?", "* * * * * ?"),  # a zero step means every value
        ("0 0 0 * * ? * trailing words", "0 0 0 * * ? *"),  # fields past the seventh are ignored
        ("0 0 0 ? * monday", "0 0 0 ? * MON"),  # case-insensitive, and only 3 letters count
        ("0\t0  0 * * ?", "0 0 0 * * ?"),
    ],
)
def test_quartz_leniency_is_kept(quirky: str, plain: str) -> None:
    after = datetime(2024, 1, 1, tzinfo=timezone.utc)
    a = CronExpression.parse(quirky)
    b = CronExpression.parse(plain)
    assert a.fields == b.fields
    assert a.next_fire(after, "UTC") == b.next_fire(after, "UTC")


def test_wraparound_ranges_cover_the_ends() -> None:
    hours = CronExpression.parse("0 0 22-2 * * ?").fields.hours
    assert list(hours) == [0, 1, 2, 22, 23]
    days = CronExpression.parse("0 0 0 ? * FRI-MON").fields.days_of_week
    assert list(days) == [1, 2, 6, 7]


def test_next_fire_is_strictly_after_and_in_the_zone() -> None:
    expr = CronExpression.parse("0 0 0 * * ? *")
    midnight = datetime(2024, 3, 31, 0, 0, tzinfo=resolve_zone("Europe/Berlin"))
    fire = expr.next_fire(midnight, "Europe/Berlin")
    assert fire is not None
    assert fire.isoformat() == "2024-04-01T00:00:00+02:00"


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        CronExpression.parse("0 0 0 * * ?").next_fire(datetime(2024, 1, 1), "UTC")


def test_year_without_values_never_fires() -> None:
    expr = CronExpression.parse("0 0 0 * * ? 2020")
    assert expr.next_fire(datetime(2024, 1, 1, tzinfo=timezone.utc), "UTC") is None
    assert list(expr.fire_times(datetime(2024, 1, 1, tzinfo=timezone.utc), "UTC")) == []


def test_zones_accept_iana_and_gmt_offsets() -> None:
    assert resolve_zone("GMT+8").utcoffset(None).total_seconds() == 8 * 3600
    assert resolve_zone("GMT-05:30").utcoffset(None).total_seconds() == -(5 * 3600 + 1800)
    with pytest.raises(UnknownTimeZone, match="zone: unknown time zone 'Mars/Olympus'"):
        resolve_zone("Mars/Olympus")


@pytest.mark.parametrize(
    ("text", "first_fires"),
    [
        # Quartz 2.3.2 never returns for these once a month is too short; batchd skips that month.
        ("0 0 0 L-29W * ?", ["2024-01-02", "2024-03-01", "2024-04-01"]),
        ("0 0 0 L-30W * ?", ["2024-03-01", "2024-05-01", "2024-07-01"]),
        ("0 0 0 L-28W * ?", ["2024-12-03", "2025-01-03", "2025-03-03"]),  # no 2025-02: 28 - 28 = 0
    ],
)
def test_last_day_offsets_past_the_month_skip_it(text: str, first_fires: list[str]) -> None:
    start = datetime(2024, 1, 1, tzinfo=timezone.utc) if "28" not in text else datetime(2024, 12, 1, tzinfo=timezone.utc)
    fires = CronExpression.parse(text).fire_times(start, "UTC")
    assert [next(fires).strftime("%Y-%m-%d") for _ in first_fires] == first_fires
