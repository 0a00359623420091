"""Pure helpers: exit codes, verdicts, the log header."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from batchd.errors import InvalidParameter
from batchd.runner import AttemptOutcome, Verdict, attempt_header, classify, parse_codes
from batchd.runner import header as header_module
from batchd.runner.header import Clock


def test_parse_codes() -> None:
    assert parse_codes("0") == frozenset({0})
    assert parse_codes(" 0, 5 ,255") == frozenset({0, 5, 255})
    assert parse_codes("") == frozenset()
    assert parse_codes(None) == frozenset()


@pytest.mark.parametrize("text", ["x", "0,x", "256", "-1", "1.5", "0,,1", "٣"])
def test_parse_codes_names_the_text(text: str) -> None:
    with pytest.raises(InvalidParameter, match=r"waitCode: .* in .* is not an exit code") as info:
        parse_codes(text, field="waitCode")
    assert repr(text) in info.value.message
    assert info.value.code == 62102


def outcome(**fields: object) -> AttemptOutcome:
    return AttemptOutcome(**{"exit_code": 0, "started_ms": 1, "ended_ms": 2, **fields})


@pytest.mark.parametrize(
    ("fields", "verdict"),
    [
        ({"exit_code": 0}, Verdict.SUCCESS),
        ({"exit_code": 5}, Verdict.SUCCESS),
        ({"exit_code": 1}, Verdict.FAILED),
        ({"exit_code": 3}, Verdict.WAIT),
        ({"exit_code": -9}, Verdict.FAILED),
        ({"exit_code": -15, "timed_out": True}, Verdict.TIMEOUT),
        ({"exit_code": -15, "cancelled": True}, Verdict.CANCELLED),
        ({"exit_code": None, "error": "no runner"}, Verdict.ERROR),
    ],
)
def test_classify(fields: dict[str, object], verdict: Verdict) -> None:
    assert classify(outcome(**fields), frozenset({0, 5}), frozenset({3, 5})) == verdict


def test_header_matches_the_enos_sample() -> None:
    now = dt.datetime(2019, 8, 8, 3, 22, 38, tzinfo=dt.timezone.utc)
    header = attempt_header(1, 1, "104452-201908080322", 'echo "uuu"', "db_envision", now)
    assert header == (
        "=" * 73 + "\n"
        "run  num:\t1\n"
        "instance:\t104452-201908080322\n"
        'cmdline:\techo "uuu"\n'
        "submitter:\tdb_envision\n"
        "current time:\tThu Aug 08 03:22:38 UTC 2019\n" + "=" * 39 + "\n"
    )


def test_header_of_a_retry_names_the_attempt_and_prints_the_server_zone() -> None:
    now = dt.datetime(2019, 8, 8, 11, 22, 38, tzinfo=ZoneInfo("Asia/Shanghai"))
    header = attempt_header(2, 3, "1-2", "x", "", now)
    assert "run  num:\t2\nattempt:\t3\ninstance:\t1-2\n" in header
    assert "current time:\tThu Aug 08 11:22:38 CST 2019\n" in header
    fixed = now.replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert "Thu Aug 08 11:22:38 GMT+08:00 2019" in attempt_header(1, 1, "i", "x", "", fixed)


def test_the_header_clock_shows_the_current_second_in_its_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """`Clock` formats once per second; each second, and each zone, reads as `java_date` says."""
    clock = Clock(ZoneInfo("Asia/Shanghai"))
    now = [1565234558.2]  # 2019-08-08 03:22:38.2 UTC
    monkeypatch.setattr(header_module.time, "time", lambda: now[0])
    assert clock.now() == "Thu Aug 08 11:22:38 CST 2019"
    now[0] += 0.7
    assert clock.now() == "Thu Aug 08 11:22:38 CST 2019"
    now[0] += 0.2  # into the next second
    assert clock.now() == "Thu Aug 08 11:22:39 CST 2019"
    assert Clock(ZoneInfo("America/New_York")).now() == "Wed Aug 07 23:22:39 EDT 2019"
