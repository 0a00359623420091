"""`${name}` substitution on the spec's fixed clock: T = 2017-05-27 13:50 GMT+8 (§3.3 examples)."""

from __future__ import annotations

import datetime as dt

import pytest

from batchd.runner.variables import business_date, expand, merge_parameters, substitute

GMT8 = dt.timezone(dt.timedelta(hours=8))
T = dt.datetime(2017, 5, 27, 13, 50, 41, tzinfo=GMT8)


def sub(text: str, parameters: dict[str, str] | None = None, when: dt.datetime = T) -> str:
    return substitute(
        text, trigger_time=when, parameters=parameters or {}, task_id=104452, instance_id="2438-1"
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("cal_dt", "2017-05-26"),
        ("cal_dt8", "20170526"),
        ("cal_dt-1", "2017-05-25"),
        ("cal_dt8-1", "20170525"),
        ("cal_dt-30", "2017-04-26"),
        ("ncal_dt", "2017-05-27"),
        ("ncal_dt8", "20170527"),
        ("last_week8", "20170520"),
        ("last_week10", "2017-05-20"),
        ("first_day_this_month8", "20170501"),
        ("first_day_this_month10", "2017-05-01"),
        ("end_day_this_month8", "20170531"),
        ("end_day_this_month10", "2017-05-31"),
        ("first_day_last_month8", "20170401"),
        ("first_day_last_month10", "2017-04-01"),
        ("last_day_last_month8", "20170430"),
        ("last_day_last_month10", "2017-04-30"),
        ("monday_next_week8", "20170529"),
        ("monday_next_week10", "2017-05-29"),
        ("30days_cal_dt", "2017-04-26"),
        ("this_hour", "2017-05-27 13:00:00"),
        ("unix_timestamp", "1495864241"),
        ("task_id", "104452"),
        ("instance_id", "2438-1"),
        # BT = T - 1 day: 2017-05-26 13:50, one hour back -> 12:50 that day.
        ("hcal_dt8", "20170526"),
        ("cal_hr", "12"),
    ],
)
def test_system_variables_match_the_spec_examples(name: str, value: str) -> None:
    assert sub("${" + name + "}") == value


def test_hourly_variables_at_half_past_midnight_step_back_a_day() -> None:
    # The spec's own example: BT 2017-05-26 00:30 -> hcal_dt8 20170525, cal_hr 23.
    t = dt.datetime(2017, 5, 27, 0, 30, tzinfo=GMT8)
    assert sub("${hcal_dt8} ${cal_hr}", when=t) == "20170525 23"


def test_month_ends_and_year_boundary() -> None:
    t = dt.datetime(2020, 3, 1, 8, 0, tzinfo=GMT8)  # B = 2020-02-29 (leap year)
    assert sub("${cal_dt} ${end_day_this_month8} ${last_day_last_month10}", when=t) == (
        "2020-02-29 20200229 2020-01-31"
    )
    t = dt.datetime(2021, 1, 1, 0, 0, tzinfo=GMT8)  # B = 2020-12-31
    assert sub("${first_day_last_month8} ${monday_next_week10}", when=t) == "20201101 2021-01-04"


def test_monday_next_week_of_a_monday_is_a_week_later() -> None:
    t = dt.datetime(2017, 5, 23, 9, 0, tzinfo=GMT8)  # B = Monday 2017-05-22
    assert sub("${monday_next_week8}", when=t) == "20170529"


def test_zone_of_the_trigger_time_decides_the_date() -> None:
    utc = T.astimezone(dt.timezone.utc).replace(hour=20)  # 2017-05-27 20:50 UTC = 28th in GMT+8
    assert sub("${cal_dt}", when=utc) == "2017-05-26"
    assert sub("${cal_dt}", when=utc.astimezone(GMT8)) == "2017-05-27"
    assert business_date(utc.astimezone(GMT8)) == dt.date(2017, 5, 27)


def test_parameters_resolve_recursively_and_override_system_variables() -> None:
    params = {"inputPath": "/data/${day}/in", "day": "${cal_dt8}", "cal_dt": "override"}
    assert sub("-i ${inputPath} -d ${cal_dt} -u ${unix_timestamp}", params) == (
        "-i /data/20170526/in -d override -u 1495864241"
    )


def test_unknown_and_looping_names_stay_and_are_reported() -> None:
    result = expand(
        "${a} ${missing} ${missing} ${x} $plain ${ok}",
        trigger_time=T,
        parameters={"a": "${b}", "b": "[${a}]", "x": "${x}", "ok": "1"},
        task_id=1,
        instance_id="i",
    )
    assert result.text == "[${a}] ${missing} ${missing} ${x} $plain 1"
    assert result.unknown == ("missing",)
    assert set(result.looped) == {"a", "x"}


def test_substituted_values_are_not_scanned_again() -> None:
    assert sub("${a}", {"a": "$${b}", "b": "no"}) == "$no"  # the value's own ${b} resolves once
    assert sub("${a}b}", {"a": "${", "b": "x"}) == "${b}"


def test_deep_diamond_references_are_resolved_once() -> None:
    params = {f"p{i}": "${p%d}${p%d}" % (i + 1, i + 1) for i in range(40)} | {"p40": "x"}
    assert len(sub("${p30}", params)) == 2**10


def test_merge_parameters_later_layers_win() -> None:
    merged = merge_parameters({"a": "wf", "b": "wf"}, None, {"b": "task"}, {"b": "trigger", "c": "t"})
    assert merged == {"a": "wf", "b": "trigger", "c": "t"}


def test_naive_trigger_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sub("${cal_dt}", when=T.replace(tzinfo=None))
