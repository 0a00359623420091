"""The scheduler's pure planning: candidate fires, startTime, missed-fire policies, the heap.

Fixed instants in Europe/Berlin; DST days are 2026-03-29 (02:00 → 03:00) and 2026-10-25
(03:00 → 02:00). Fire times themselves come from batchd.cron (golden-tested against Quartz);
these tests pin what the scheduler does with them.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from batchd.scheduler.plan import (
    Due,
    FireQueue,
    MissedFirePolicy,
    ScheduledFlow,
    due_fires,
    latest_fire,
    next_fire,
    scheduled_flow,
    start_of_day,
)

BERLIN = ZoneInfo("Europe/Berlin")
LATEST = MissedFirePolicy()
NONE = MissedFirePolicy(mode="none")


def at(*fields: int, fold: int = 0) -> int:
    return int(dt.datetime(*fields, tzinfo=BERLIN, fold=fold).timestamp())


def local(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, BERLIN).isoformat()


def flow(cron: str, *, start: str = "2026-01-01", anchor: int = 0) -> ScheduledFlow:
    return scheduled_flow(flow_id=7, cron=cron, zone=BERLIN, start_date=start, anchor=anchor, update_time_ms=0)


def fires_on(f: ScheduledFlow, day: dt.date) -> list[str]:
    moment, found = at(day.year, day.month, day.day) - 1, []
    while True:
        moment = next_fire(f, moment)
        if moment is None or dt.datetime.fromtimestamp(moment, BERLIN).date() != day:
            return found
        found.append(local(moment))


# --- startTime and anchors ---------------------------------------------------------------------


def test_start_of_day_is_local_midnight_in_the_server_zone() -> None:
    assert local(start_of_day("2026-03-29", BERLIN)) == "2026-03-29T00:00:00+01:00"
    assert local(start_of_day("2026-03-30", BERLIN)) == "2026-03-30T00:00:00+02:00"
    assert start_of_day("2026-03-29", dt.timezone.utc) == at(2026, 3, 29, 1)


def test_a_future_start_time_holds_back_every_fire_until_its_midnight() -> None:
    f = flow("0 0 * * * ?", start="2026-06-10")
    assert local(next_fire(f, at(2026, 6, 1, 12))) == "2026-06-10T00:00:00+02:00"  # 00:00 itself fires
    assert due_fires(f, at(2026, 6, 1), at(2026, 6, 9, 23, 59), LATEST) == Due((), at(2026, 6, 10))


def test_fires_are_strictly_after_the_anchor() -> None:
    f = flow("0 0 * * * ?", anchor=at(2026, 6, 1, 10))
    assert next_fire(f, 0) == at(2026, 6, 1, 11)


# --- daylight saving: the scheduler follows Quartz, fire by fire ------------------------------


def test_spring_forward_skips_the_wall_time_that_does_not_exist() -> None:
    assert fires_on(flow("0 30 2 * * ?"), dt.date(2026, 3, 29)) == []
    hourly = fires_on(flow("0 0 * * * ?"), dt.date(2026, 3, 29))
    assert len(hourly) == 23 and "2026-03-29T03:00:00+02:00" in hourly


def test_fall_back_fires_a_repeated_wall_time_once() -> None:
    assert fires_on(flow("0 30 2 * * ?"), dt.date(2026, 10, 25)) == ["2026-10-25T02:30:00+01:00"]
    hourly = fires_on(flow("0 0 * * * ?"), dt.date(2026, 10, 25))
    # Quartz (through its Java calendar) skips the first, summer-time 02:xx hour.
    assert hourly[1:3] == ["2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+01:00"] and len(hourly) == 24
    # Even a per-second cron: no two fires share a wall time, so wall-time instance ids are unique.
    f = flow("*/1 * * * * ?")
    assert local(next_fire(f, at(2026, 10, 25, 1, 59, 59))) == "2026-10-25T02:00:00+01:00"


def test_latest_fire_across_the_fall_back_hour() -> None:
    f = flow("0 */15 * * * ?")
    summer_0245 = at(2026, 10, 25, 2, 45)  # fold 0: the CEST 02:45, not a Quartz fire (see above)
    assert local(latest_fire(f, at(2026, 10, 24), summer_0245 + 60)) == "2026-10-25T01:45:00+02:00"
    assert local(latest_fire(f, at(2026, 10, 24), at(2026, 10, 25, 3, 5))) == "2026-10-25T03:00:00+01:00"


# --- missed fires --------------------------------------------------------------------------------


def test_on_time_and_late_within_grace_fire_every_pending_time() -> None:
    f = flow("*/1 * * * * ?")
    start = at(2026, 5, 5, 12)
    assert due_fires(f, start, start + 1, LATEST) == Due((start + 1,), start + 2)
    late = due_fires(f, start, start + 30, LATEST)  # a 30 s hiccup: late, not missed
    assert late.fires == tuple(range(start + 1, start + 31)) and late.next_fire == start + 31


def test_latest_policy_after_downtime_creates_only_the_most_recent_missed_fire() -> None:
    f = flow("0 0 * * * ?")
    last, now = at(2026, 5, 1, 9), at(2026, 5, 3, 14, 20)
    assert due_fires(f, last, now, LATEST) == Due((at(2026, 5, 3, 14),), at(2026, 5, 3, 15))


def test_none_policy_skips_missed_fires_and_continues_from_now() -> None:
    f = flow("0 0 * * * ?")
    assert due_fires(f, at(2026, 5, 1, 9), at(2026, 5, 3, 14, 20), NONE) == Due((), at(2026, 5, 3, 15))


def test_all_policy_creates_every_missed_fire_up_to_its_cap() -> None:
    f = flow("0 0 * * * ?")
    last, now = at(2026, 5, 3, 9), at(2026, 5, 3, 14, 20)
    assert due_fires(f, last, now, MissedFirePolicy(mode="all")).fires == tuple(at(2026, 5, 3, h) for h in range(10, 15))
    capped = due_fires(f, at(2026, 4, 1), now, MissedFirePolicy(mode="all", cap=3))
    assert capped.fires == (at(2026, 5, 3, 12), at(2026, 5, 3, 13), at(2026, 5, 3, 14))


def test_grace_period_decides_late_versus_missed() -> None:
    f = flow("0 0 * * * ?")
    due = at(2026, 5, 3, 14)
    assert due_fires(f, due - 1, due + 60, LATEST).fires == (due,)  # 60 s late: still fires
    assert due_fires(f, due - 1, due + 61, NONE).fires == ()  # 61 s: missed, and `none` skips it
    assert due_fires(f, due - 1, due + 61, MissedFirePolicy(mode="none", grace_seconds=120)).fires == (due,)


def test_latest_over_a_year_long_gap_of_a_second_cron_is_cheap() -> None:
    f = flow("*/1 * * * * ?")
    now = at(2026, 12, 31, 23, 59, 59)
    assert due_fires(f, at(2026, 1, 1), now, LATEST) == Due((now,), now + 1)


def test_a_cron_that_never_fires_again_is_done() -> None:
    f = flow("0 0 0 1 1 ? 2026")
    assert due_fires(f, at(2026, 1, 1), at(2026, 6, 1), LATEST) == Due((), None)


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="latest, none, all"):
        MissedFirePolicy(mode="some")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cap"):
        MissedFirePolicy(mode="all", cap=0)


# --- the heap ------------------------------------------------------------------------------------


def test_fire_queue_pops_due_entries_in_order_and_honours_replacement() -> None:
    queue = FireQueue()
    queue.schedule(1, 30)
    queue.schedule(2, 10)
    queue.schedule(3, 20)
    queue.schedule(1, 5)  # replaced: the entry at 30 is stale
    queue.schedule(3, None)  # removed
    assert queue.peek() == 5 and len(queue) == 2
    assert queue.pop_due(10) == [(5, 1), (10, 2)]
    assert queue.peek() is None and queue.pop_due(100) == []


def test_fire_queue_stays_small_under_many_replacements() -> None:
    queue = FireQueue()
    for i in range(10_000):
        queue.schedule(i % 10, i)
    assert len(queue) == 10 and len(queue._heap) < 100
    assert [flow_id for _, flow_id in queue.pop_due(10_000)] == list(range(10))
