"""Next-fire computations per second: batchd's Quartz engine beside croniter.

Each case is one schedule written for both engines (croniter takes 5 fields plus an optional
seconds field at the end, numbers weekdays from Sunday=0, and has no `?`, `W`, `#` with years),
walked 2,000 fire times forward from the same instant in the same zone. The report line for a
case is its docstring-free label. Run:

    .venv/bin/python bench/cron_next_fire.py [--rounds 7] [--json docs/bench/cron.json]

Medians of the rounds are reported, and the ratio is taken inside one run, on one machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import croniter

from batchd.cron import CronExpression

STEPS = 2000
START = datetime(2024, 1, 1, 0, 0, 0, tzinfo=ZoneInfo("Europe/Berlin"))

# (label, Quartz expression, croniter expression or None where croniter cannot say it)
CASES = [
    ("daily at midnight", "0 0 0 * * ? *", "0 0 * * *"),
    ("every minute", "0 * * * * ? *", "* * * * *"),
    ("every 15 min, office hours, weekdays", "0 0/15 9-17 ? * MON-FRI", "*/15 9-17 * * 1-5"),
    ("hourly at minute 1", "0 1 * * * ? *", "1 * * * *"),
    ("every 10 seconds", "*/10 * * * * ?", "* * * * * */10"),
    ("1st and 15th at 02:30", "0 30 2 1,15 * ?", "30 2 1,15 * *"),
    ("last day of month (L)", "0 0 12 L * ?", "0 12 L * *"),
    ("third Friday (6#3)", "0 0 12 ? * 6#3", "0 12 * * 5#3"),
    ("Feb 29 only (leap years)", "0 0 0 29 2 ?", "0 0 29 2 *"),  # 2,000 fires reach past 9999: 20
    ("weekday nearest 15th (15W)", "0 0 9 15W * ?", None),
    ("last Friday (6L)", "0 0 18 ? * 6L", None),
    ("02:30 daily across DST", "0 30 2 * * ?", "30 2 * * *"),
]


def steps_for(expr: str) -> int:
    return 20 if " 29 2 " in expr else STEPS


def time_batchd(expr: str, zone: ZoneInfo) -> float:
    parsed = CronExpression.parse(expr)
    epoch = START.timestamp()
    began = time.perf_counter()
    for _ in range(steps_for(expr)):
        epoch = parsed.next_epoch(epoch, zone)
        if epoch is None:
            break
    return time.perf_counter() - began


def time_croniter(expr: str) -> float:
    it = croniter(expr, START)
    began = time.perf_counter()
    for _ in range(steps_for(" " + expr.replace("0 0 29 2", "0 0 0 29 2"))):
        it.get_next(float)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", help="also write the figures as JSON here")
    args = parser.parse_args()
    zone = START.tzinfo
    rows = []
    print(f"{'case':40} {'batchd /s':>12} {'croniter /s':>12} {'ratio':>7}")
    for label, quartz, cron in CASES:
        ours = statistics.median(time_batchd(quartz, zone) for _ in range(args.rounds))
        theirs = statistics.median(time_croniter(cron) for _ in range(args.rounds)) if cron else None
        steps = steps_for(quartz)
        ours_rate = steps / ours
        theirs_rate = steps / theirs if theirs else None
        ratio = ours_rate / theirs_rate if theirs_rate else None
        rows.append({"case": label, "quartz": quartz, "croniter": cron, "batchd_per_s": round(ours_rate),
                     "croniter_per_s": round(theirs_rate) if theirs_rate else None,
                     "ratio": round(ratio, 2) if ratio else None})
        print(f"{label:40} {ours_rate:12,.0f} {theirs_rate or float('nan'):12,.0f} "
              f"{ratio if ratio else float('nan'):7.2f}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"steps": STEPS, "rounds": args.rounds, "zone": str(zone), "rows": rows}, out, indent=1)


if __name__ == "__main__":
    main()
