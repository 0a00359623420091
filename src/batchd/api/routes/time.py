"""Get Current Time and Get Timezone (spec §3.7, §3.13): no userId/orgId, still authenticated."""

from __future__ import annotations

from datetime import datetime

from batchd.api.context import RequestContext, operation
from batchd.clock import now_ms


@operation(resource="time", method="GET", action="getCurrentTime", needs_caller=False, writes=False)
async def get_current_time(ctx: RequestContext) -> int:
    """Server time in epoch milliseconds (UTC)."""
    return now_ms()


@operation(resource="time", method="GET", action="getTimeZone", needs_caller=False, writes=False)
async def get_time_zone(ctx: RequestContext) -> dict[str, str]:
    """The configured time zone's current offset, as `{"timezone": "GMT+8"}`."""
    return {"timezone": gmt_offset_label(datetime.now(ctx.settings.zone))}


def gmt_offset_label(moment: datetime) -> str:
    """`GMT+8`, `GMT-3`, `GMT+5:30`, `GMT+0`: EnOS's `GMT+N` with minutes only when not whole.

    The offset is the one in force at `moment` (an aware datetime in the configured zone), so a zone with daylight saving answers
    differently in summer and winter — what a client converting "now" needs.
    """
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds()) // 60 if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"GMT{sign}{hours}" + (f":{rest:02d}" if rest else "")
