"""Pure helpers of instance creation: ids, business dates, rerun selection, parameter overrides."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from batchd.catalog.model import FlowDefinition, NamedRelation, Parameter, TaskDefinition
from batchd.engine.instances import (
    business_date,
    effective_parameters,
    instance_suffix,
    parse_parameter_overrides,
    selected_tasks,
)
from batchd.errors import InvalidParameter

SHANGHAI = ZoneInfo("Asia/Shanghai")


def ms(*fields: int, zone: dt.tzinfo = dt.timezone.utc) -> int:
    return int(dt.datetime(*fields, tzinfo=zone).timestamp() * 1000)


def test_manual_suffix_is_the_minute_with_00_seconds_in_the_server_zone() -> None:
    assert instance_suffix(ms(2019, 8, 8, 1, 32, 12), "manual", SHANGHAI) == "20190808093200"
    assert instance_suffix(ms(2019, 8, 8, 1, 32, 12), "schedule", SHANGHAI) == "20190808093212"
    assert instance_suffix(0, "manual", dt.timezone.utc) == "19700101000000"


def test_business_date_is_the_day_before_the_trigger_in_the_server_zone() -> None:
    assert business_date(ms(2019, 8, 8, 9, 32), dt.timezone.utc) == "2019-08-07"
    assert business_date(ms(2019, 8, 7, 20, 0), SHANGHAI) == "2019-08-07"  # already the 8th in Shanghai
    assert business_date(ms(2024, 3, 1, 0, 0), dt.timezone.utc) == "2024-02-29"


def test_trigger_from_task_follows_rerun_true_edges() -> None:
    flow = FlowDefinition(
        name="f", tasks=tuple(TaskDefinition(name=n) for n in "abcde"),
        relations=(NamedRelation(source="a", target="b", rerun=True), NamedRelation(source="b", target="c", rerun=True),
                   NamedRelation(source="b", target="d", rerun=False), NamedRelation(source="d", target="e", rerun=True)),
    )
    assert selected_tasks(flow, "b") == {"b", "c"}
    assert selected_tasks(flow, "a") == {"a", "b", "c"}
    assert selected_tasks(flow, "d") == {"d", "e"}


def test_overrides_accept_the_array_the_json_string_and_key_value_strings() -> None:
    assert parse_parameter_overrides([{"key": "x", "value": "1"}]) == {"x": "1"}
    assert parse_parameter_overrides('[{"key":"x","value":"2"}]') == {"x": "2"}
    assert parse_parameter_overrides(["x=3", "y=a=b"]) == {"x": "3", "y": "a=b"}
    assert parse_parameter_overrides("") == {}
    with pytest.raises(InvalidParameter, match=r"parameters\[0\]"):
        parse_parameter_overrides([42])
    with pytest.raises(InvalidParameter, match="not a JSON array"):
        parse_parameter_overrides("[oops")


def test_effective_parameters_keep_the_flow_order_and_add_new_keys() -> None:
    flow = (Parameter(key="a", value="1"), Parameter(key="b", value="2"))
    assert effective_parameters(flow, {"b": "x", "c": "3"}) == (
        '[{"key":"a","value":"1"},{"key":"b","value":"x"},{"key":"c","value":"3"}]'
    )
