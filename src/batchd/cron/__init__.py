"""Quartz cron evaluation, pure logic with no I/O.

    expr = CronExpression.parse("0 0 0 * * ? *")        # CronSyntaxError names the field
    expr.next_fire(after, "Europe/Berlin")              # strictly after `after`, as Quartz 2.3.2
    expr.describe()                                     # "at 00:00:00, every day"

`syntax` parses (Quartz's acceptance rules, our messages), `calendar` emulates the Java calendar
whose arithmetic gives Quartz its DST behaviour, `expression` ports Quartz's next-fire search,
`description` explains an expression to people, and `cases` speaks the oracle's line format.
"""

from batchd.cron.cases import answer_case, answer_cases
from batchd.cron.expression import CronExpression, UnknownTimeZone, resolve_zone
from batchd.cron.syntax import CronSyntaxError

__all__ = [
    "CronExpression",
    "CronSyntaxError",
    "UnknownTimeZone",
    "answer_case",
    "answer_cases",
    "resolve_zone",
]
