"""Get Current Time and Get Timezone (spec §3.7, §3.13)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from servicekit import Backend, EnosClient, start_service

from batchd.api.routes.time import gmt_offset_label


def test_current_time_is_epoch_ms_now(client: EnosClient) -> None:
    before = time.time_ns() // 1_000_000
    answer = client.call("GET", "time", "getCurrentTime", query={"userId": None, "orgId": None})
    after = time.time_ns() // 1_000_000

    assert answer["code"] == 0
    assert isinstance(answer["data"], int)
    assert before <= answer["data"] <= after


def test_time_zone_of_a_configured_zone(backend: Backend, tmp_path: Path) -> None:
    with start_service(backend, tmp_path / "home", timezone="Asia/Shanghai") as shanghai:
        answer = shanghai.client().call("GET", "time", "getTimeZone")

    assert answer["code"] == 0
    assert answer["data"] == {"timezone": "GMT+8"}


@pytest.mark.parametrize(
    ("zone", "moment", "label"),
    [
        ("UTC", "2026-01-15T12:00", "GMT+0"),
        ("Asia/Kolkata", "2026-01-15T12:00", "GMT+5:30"),
        ("Asia/Kathmandu", "2026-01-15T12:00", "GMT+5:45"),
        ("America/St_Johns", "2026-01-15T12:00", "GMT-3:30"),
        ("America/New_York", "2026-01-15T12:00", "GMT-5"),
        ("America/New_York", "2026-07-15T12:00", "GMT-4"),
        ("Europe/Berlin", "2026-07-15T12:00", "GMT+2"),
    ],
    ids=["utc", "half-hour", "quarter-hour", "negative-half-hour", "winter", "summer-dst", "summer-cest"],
)
def test_gmt_offset_label(zone: str, moment: str, label: str) -> None:
    assert gmt_offset_label(datetime.fromisoformat(moment).replace(tzinfo=ZoneInfo(zone))) == label
