"""The line format shared with the Quartz oracle (`shared/tools/quartz-oracle`).

One case per line, tab-separated: `EXPRESSION ZONE START N` in, `EXPRESSION ZONE START
fire1,fire2,...` out, times as local ISO `yyyy-MM-ddTHH:mm:ss` in ZONE, or `INVALID: message`.
Other tools feed `batchd cron next` and the oracle the same file and diff the answers, so this
module reproduces the oracle's reading of its input too: START is a local time read the way
Java's `SimpleDateFormat` reads it (a time inside a DST gap or overlap gets Java's offset, see
`batchd.cron.calendar`), and a zone id Java does not know falls back to GMT, as
`TimeZone.getTimeZone` does. Only the text after `INVALID: ` is batchd's own.
"""

from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from collections.abc import Iterable, Iterator

from batchd.cron.calendar import wall_to_epoch
from batchd.cron.expression import CronExpression, UnknownTimeZone, resolve_zone
from batchd.cron.syntax import CronSyntaxError

_LOCAL_FORMAT = "%Y-%m-%dT%H:%M:%S"


def _oracle_zone(name: str) -> tzinfo:
    try:
        return resolve_zone(name)
    except UnknownTimeZone:
        return timezone.utc


def answer_case(line: str) -> str:
    """Answer one oracle-format case line; raises ValueError when the line itself is malformed."""
    parts = line.rstrip("\r\n").split("\t")
    if len(parts) < 4:
        raise ValueError(f"expected 4 tab-separated columns (EXPRESSION ZONE START N), got {len(parts)}")
    text, zone_name, start, count_text = parts[:4]
    head = f"{text}\t{zone_name}\t{start}\t"
    try:
        expression = CronExpression.parse(text)
    except CronSyntaxError as exc:
        return head + "INVALID: " + exc.message.replace("\t", " ").replace("\n", " ")
    zone = _oracle_zone(zone_name)
    after = wall_to_epoch(datetime.strptime(start, _LOCAL_FORMAT), zone)
    fires = []
    epoch: float | None = after
    for _ in range(int(count_text)):
        epoch = expression.next_epoch(epoch, zone)  # type: ignore[arg-type]
        if epoch is None:
            break
        fires.append(datetime.fromtimestamp(epoch, zone).strftime(_LOCAL_FORMAT))
    return head + ",".join(fires)


def answer_cases(lines: Iterable[str]) -> Iterator[str]:
    """Answer every non-blank, non-comment line, as the oracle does."""
    return (answer_case(line) for line in lines if line.strip() and not line.startswith("#"))
