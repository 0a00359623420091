"""When each scheduled workflow is due: pure functions of (flow, instant, policy), no I/O.

Times here are integer epoch **seconds** (Quartz fires on whole seconds); the service converts
to the stored epoch milliseconds at the edge.

A flow's candidate fires are the Quartz fire times of its cron in the server zone that are

- at or after 00:00 of its `startTime` in the server zone (spec §2.2, `not_before`), and
- strictly after its `anchor`: the newest fire the scheduler already created (read back from the
  database after a restart), or, for a flow that never fired, the moment it was enabled, or the
  moment its schedule (cron, startTime) was last changed, so a new schedule does not back-fill.

Missed fires (`MissedFirePolicy`): when the oldest pending fire is more than `grace_seconds` old,
the scheduler was down, blocked, or the flow was paused since its last fire, and the policy
decides what to create for the pending fires — as Quartz's misfire threshold and instructions do:

- `latest` (default): only the most recent pending fire, then continue normally ("not a flood");
- `none`: nothing; continue with the first fire after now (spec §8's "no catch-up");
- `all`: every pending fire, but at most the newest `cap` of them.

When the oldest pending fire is within the grace period, the fires are late, not missed, and all
of them are created (at most grace_seconds + 1, as a cron fires at most once a second).
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from batchd.cron import CronExpression

PolicyMode = Literal["latest", "none", "all"]
POLICY_MODES: tuple[PolicyMode, ...] = ("latest", "none", "all")
DEFAULT_GRACE_SECONDS = 60  # Quartz's default misfireThreshold
DEFAULT_CATCH_UP_CAP = 100


@dataclass(frozen=True, kw_only=True)
class MissedFirePolicy:
    """What to create for fires missed by more than `grace_seconds` (module docstring)."""

    mode: PolicyMode = "latest"
    grace_seconds: int = DEFAULT_GRACE_SECONDS
    cap: int = DEFAULT_CATCH_UP_CAP  # only for mode "all": the newest `cap` missed fires

    def __post_init__(self) -> None:
        if self.mode not in POLICY_MODES:
            raise ValueError(f"missed fire policy must be one of {', '.join(POLICY_MODES)}, not {self.mode!r}")
        if self.grace_seconds < 0:
            raise ValueError(f"grace_seconds: {self.grace_seconds} must not be negative")
        if self.cap < 1:
            raise ValueError(f"cap: {self.cap} must be at least 1")


@dataclass(frozen=True, kw_only=True)
class ScheduledFlow:
    """One enabled periodic workflow as the scheduler plans it."""

    flow_id: int
    cron: CronExpression
    zone: dt.tzinfo
    start_date: str  # yyyy-MM-dd, spec `startTime`
    not_before: int  # epoch s of 00:00 of start_date in `zone`: no fire before it
    anchor: int  # epoch s: candidate fires are strictly after it (module docstring)
    update_time_ms: int  # the row's update_time this plan was made from

    @property
    def schedule_key(self) -> tuple[str, str]:
        """What decides fire times; a change of it re-anchors the flow at the change."""
        return (self.cron.text, self.start_date)


@dataclass(frozen=True)
class Due:
    """The fires to create now (ascending) and the first fire after now (None: never again)."""

    fires: tuple[int, ...]
    next_fire: int | None


def start_of_day(date_text: str, zone: dt.tzinfo) -> int:
    """Epoch seconds of 00:00 of `yyyy-MM-dd` in `zone` (the first instant of that day, even on a
    day whose midnight falls into a daylight-saving gap)."""
    day = dt.date.fromisoformat(date_text.strip()[:10])
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=zone)
    epoch = int(midnight.timestamp())
    # A midnight inside a DST gap does not exist; zoneinfo resolves it forwards or backwards.
    # Take the first instant whose local date is `day`.
    while dt.datetime.fromtimestamp(epoch - 1, zone).date() == day:
        epoch -= 1800
    while dt.datetime.fromtimestamp(epoch, zone).date() < day:
        epoch += 60
    return epoch


def scheduled_flow(
    *, flow_id: int, cron: str, zone: dt.tzinfo, start_date: str, anchor: int, update_time_ms: int
) -> ScheduledFlow:
    """Build a ScheduledFlow from stored columns (raises CronSyntaxError / ValueError when bad)."""
    return ScheduledFlow(
        flow_id=flow_id, cron=CronExpression.parse(cron), zone=zone, start_date=start_date,
        not_before=start_of_day(start_date, zone) if start_date.strip() else 0, anchor=anchor,
        update_time_ms=update_time_ms,
    )


def next_fire(flow: ScheduledFlow, after: int) -> int | None:
    """The first fire strictly after `after`, never before `not_before`."""
    return flow.cron.next_epoch(max(after, flow.not_before - 1, flow.anchor), flow.zone)


def latest_fire(flow: ScheduledFlow, after: int, until: int) -> int | None:
    """The newest fire in (after, until], or None. O(log(until - after)) cron evaluations.

    Quartz has no "previous fire" search, so this bisects on `t` for the largest `t` whose next
    fire is still <= `until`; next-fire is monotone in its argument, so that fire is the newest.
    """
    first = next_fire(flow, after)
    if first is None or first > until:
        return None
    low, high = max(after, flow.not_before - 1, flow.anchor), until  # next(low) <= until < next(high)
    while high - low > 1:
        middle = (low + high) // 2
        found = next_fire(flow, middle)
        if found is not None and found <= until:
            low = middle
        else:
            high = middle
    return next_fire(flow, low)


def due_fires(flow: ScheduledFlow, after: int, now: int, policy: MissedFirePolicy) -> Due:
    """What to create at `now` for a flow whose fires up to `after` are already handled."""
    first = next_fire(flow, after)
    if first is None or first > now:
        return Due((), first)
    if now - first <= policy.grace_seconds:
        fires = list(_fires_between(flow, after, now))  # late, not missed: at most grace+1 of them
    elif policy.mode == "none":
        fires = []
    else:
        # The whole gap counts as missed, including its last grace_seconds: `latest` makes one
        # instance for a gap however long, and `none` <= `latest` <= `all` in what they create.
        fires = _newest_fires(flow, after, now, 1 if policy.mode == "latest" else policy.cap)
    return Due(tuple(fires), next_fire(flow, now))


def _fires_between(flow: ScheduledFlow, after: int, until: int) -> Iterator[int]:
    moment = next_fire(flow, after)
    while moment is not None and moment <= until:
        yield moment
        moment = next_fire(flow, moment)


def _newest_fires(flow: ScheduledFlow, after: int, until: int, count: int) -> list[int]:
    newest: list[int] = []
    bound = until
    while len(newest) < count:
        found = latest_fire(flow, after, bound)
        if found is None:
            break
        newest.append(found)
        bound = found - 1
    return newest[::-1]


@dataclass(order=True)
class _Entry:
    due: int
    flow_id: int
    generation: int = field(compare=False)


class FireQueue:
    """A min-heap of (due epoch s, flow id): the loop sleeps until `peek()` instead of scanning
    every workflow. Replacing or removing a flow is O(log n): stale entries stay in the heap and
    are skipped when they surface (their generation no longer matches)."""

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._generation: dict[int, int] = {}
        self._counter = 0

    def __len__(self) -> int:
        return len(self._generation)

    def __contains__(self, flow_id: int) -> bool:
        return flow_id in self._generation

    def schedule(self, flow_id: int, due: int | None) -> None:
        """Set `flow_id`'s next due time (None: remove it)."""
        if due is None:
            self.remove(flow_id)
            return
        self._counter += 1
        self._generation[flow_id] = self._counter
        heapq.heappush(self._heap, _Entry(due, flow_id, self._counter))
        if len(self._heap) > 2 * len(self._generation) + 64:
            self._compact()

    def remove(self, flow_id: int) -> None:
        self._generation.pop(flow_id, None)

    def peek(self) -> int | None:
        """The earliest due time, or None when nothing is scheduled."""
        self._drop_stale()
        return self._heap[0].due if self._heap else None

    def pop_due(self, now: int) -> list[tuple[int, int]]:
        """Remove and return every (due, flow_id) with due <= now, earliest first."""
        result = []
        while True:
            self._drop_stale()
            if not self._heap or self._heap[0].due > now:
                return result
            entry = heapq.heappop(self._heap)
            del self._generation[entry.flow_id]
            result.append((entry.due, entry.flow_id))

    def _drop_stale(self) -> None:
        while self._heap and self._generation.get(self._heap[0].flow_id) != self._heap[0].generation:
            heapq.heappop(self._heap)

    def _compact(self) -> None:
        self._heap = [e for e in self._heap if self._generation.get(e.flow_id) == e.generation]
        heapq.heapify(self._heap)
