"""Parsing Quartz cron expressions into field value sets, exactly as Quartz 2.3.2 accepts them.

EnOS runs Quartz, and users paste expressions that Quartz accepted, so "valid" here means "valid
for `org.quartz.CronExpression`", quirks included: Quartz ignores text after a value it has read
(`5X`, `JAN/2`, `1-5X` parse as `5`, `JAN`, `1-5`), treats `*/0` as `*`, ignores fields past the
seventh, and never range-checks years. We keep those answers (tested against the real Quartz in
`tests/cron/golden/`) and only differ in one place: a field that would end up with no values at all
(`L` in the minute field) makes Quartz fail on first use instead of at parse time; we reject it at
parse time, which is the same verdict a user sees from the oracle.

What we do *not* keep is Quartz's wording: every error names the field and the offending text
(`hour: 25 is out of range 0-23`), because that message is what the API shows users.

The scanner below follows Quartz's own character-by-character walk (`storeExpressionVals`,
`checkNext`, `addToSet`) so that the quirks fall out of the same structure rather than being
special-cased one by one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from batchd.errors import InvalidParameter

SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK, YEAR = range(7)

FIELD_NAMES = ("second", "minute", "hour", "day-of-month", "month", "day-of-week", "year")

# Quartz keeps these two markers *inside* the value sets; `?` in particular is how it tells which
# of day-of-month and day-of-week is unspecified. We keep them the same way so that lookups such
# as "smallest value >= x" behave exactly as Quartz's TreeSet.tailSet(x).first() does.
ALL_SPEC = 99  # '*'
NO_SPEC = 98  # '?'

MONTH_NUMBERS = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1
    )
}
DAY_NUMBERS = {
    name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)
}

_RANGES = {
    SECOND: (0, 59),
    MINUTE: (0, 59),
    HOUR: (0, 23),
    DAY_OF_MONTH: (1, 31),
    MONTH: (1, 12),
    DAY_OF_WEEK: (1, 7),
}
# Largest step Quartz accepts after `*/` or `n/` (it has no check after `a-b/`).
_MAX_INCREMENT = {SECOND: 59, MINUTE: 59, HOUR: 23, DAY_OF_MONTH: 31, MONTH: 12, DAY_OF_WEEK: 7}
# Modulus for wrap-around ranges such as `FRI-MON` or hours `22-2`.
_WRAP = {SECOND: 60, MINUTE: 60, HOUR: 24, DAY_OF_MONTH: 31, MONTH: 12, DAY_OF_WEEK: 7}
_LAST_DAY_OFFSET = re.compile(r"L-[0-9]*W?")
_JAVA_TRIMMED = "".join(map(chr, range(33)))  # what Java's String.trim() removes


_MAX_YEAR = date.today().year + 100


def max_year() -> int:
    """Quartz's MAX_YEAR: the current year plus 100, fixed when its class loads (here: import)."""
    return _MAX_YEAR


class CronSyntaxError(InvalidParameter):
    """A cron expression Quartz would reject. The message names the field and the offending text."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CronFields:
    """The parsed content of an expression: one sorted value tuple per field, plus Quartz's flags.

    Value tuples may contain the markers ALL_SPEC and NO_SPEC, as Quartz's sets do.
    """

    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: tuple[int, ...]
    months: tuple[int, ...]
    days_of_week: tuple[int, ...]
    years: tuple[int, ...]
    last_day_of_month: bool  # `L` in day-of-month
    last_day_offset: int  # the n of `L-n`
    nearest_weekday: bool  # `W` in day-of-month (`15W`, `LW`)
    last_day_of_week: bool  # `nL` in day-of-week: the last weekday n of the month
    nth_day_of_week: int  # the k of `n#k`, 0 when absent


class _Parser:
    """One use: parse one expression. Mirrors Quartz's mutable parse state."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.sets: list[set[int]] = [set() for _ in range(7)]
        self.last_day_of_month = False
        self.last_day_offset = 0
        self.nearest_weekday = False
        self.last_day_of_week = False
        self.nth_day_of_week = 0
        self.field = SECOND
        self.token = ""

    # -- errors ---------------------------------------------------------------------------------

    def fail(self, detail: str) -> CronSyntaxError:
        return CronSyntaxError(f"{FIELD_NAMES[self.field]}: {detail}")

    # -- whole expression -----------------------------------------------------------------------

    def parse(self) -> CronFields:
        expression = self.text.upper()
        # Quartz splits on spaces and tabs only, then trims each token like Java's String.trim().
        tokens = [t.strip(_JAVA_TRIMMED) for t in re.split(r"[ \t]+", expression) if t]
        if not tokens:
            raise CronSyntaxError("cron expression is empty; expected 6 or 7 fields: second minute hour "
                                  "day-of-month month day-of-week [year]")
        # Quartz reads at most seven fields and silently ignores any after them.
        for field, token in enumerate(tokens[:7]):
            self.field = field
            self.token = token
            if field == DAY_OF_MONTH and "L" in token and len(token) > 1 and "," in token:
                raise self.fail(f"'{token}': L and LW cannot be combined with other days of the month")
            if field == DAY_OF_WEEK and "L" in token and len(token) > 1 and "," in token:
                raise self.fail(f"'{token}': L cannot be combined with other days of the week")
            if field == DAY_OF_WEEK and token.count("#") > 1:
                raise self.fail(f"'{token}': only one n#k (nth weekday of the month) is supported")
            for value in (v for v in token.split(",") if v):
                self.store(value)
        if len(tokens) < 6:
            raise CronSyntaxError(
                f"cron expression '{self.text}' has {len(tokens)} field{'s' if len(tokens) != 1 else ''}; "
                "expected 6 or 7: second minute hour day-of-month month day-of-week [year]"
            )
        if len(tokens) == 6:
            self.field = YEAR
            self.add(ALL_SPEC, -1, 0)

        dom_given = NO_SPEC not in self.sets[DAY_OF_MONTH]
        dow_given = NO_SPEC not in self.sets[DAY_OF_WEEK]
        if dom_given == dow_given:
            self.field = DAY_OF_WEEK
            raise CronSyntaxError(
                "day-of-month and day-of-week: exactly one of them must be '?' "
                f"(got '{tokens[DAY_OF_MONTH]}' and '{tokens[DAY_OF_WEEK]}')"
            )
        # An empty year field only means "never fires" to Quartz; any other empty field makes
        # Quartz throw on first use, so we reject it now.
        for field in range(6):
            if not self.sets[field] and not (field == DAY_OF_MONTH and self.last_day_of_month):
                raise CronSyntaxError(f"{FIELD_NAMES[field]}: '{tokens[field] if field < len(tokens) else '*'}' "
                                      "selects no value")
        return CronFields(
            seconds=tuple(sorted(self.sets[SECOND])),
            minutes=tuple(sorted(self.sets[MINUTE])),
            hours=tuple(sorted(self.sets[HOUR])),
            days_of_month=tuple(sorted(self.sets[DAY_OF_MONTH])),
            months=tuple(sorted(self.sets[MONTH])),
            days_of_week=tuple(sorted(self.sets[DAY_OF_WEEK])),
            years=tuple(sorted(self.sets[YEAR])),
            last_day_of_month=self.last_day_of_month,
            last_day_offset=self.last_day_offset,
            nearest_weekday=self.nearest_weekday,
            last_day_of_week=self.last_day_of_week,
            nth_day_of_week=self.nth_day_of_week,
        )

    # -- one comma-separated value (Quartz's storeExpressionVals) -----------------------------

    def store(self, s: str) -> None:
        field = self.field
        c = s[0]
        if "A" <= c <= "Z" and s not in ("L", "LW") and not _LAST_DAY_OFFSET.fullmatch(s):
            self.store_name(s)
            return
        if c == "?":
            # Quartz tolerates exactly one character after '?', and nothing more.
            if len(s) > 2:
                raise self.fail(f"'{s}': unexpected '{s[1]}' after '?'")
            if field not in (DAY_OF_MONTH, DAY_OF_WEEK):
                raise self.fail(f"'{s}': '?' is only allowed in day-of-month or day-of-week")
            if field == DAY_OF_WEEK and not self.last_day_of_month and (
                not self.sets[DAY_OF_MONTH] or max(self.sets[DAY_OF_MONTH]) == NO_SPEC
            ):
                raise CronSyntaxError(
                    "day-of-month and day-of-week: exactly one of them must be '?' (both are)"
                )
            self.add(NO_SPEC, -1, 0)
            return
        if c in "*/":
            if c == "*" and len(s) == 1:
                self.add(ALL_SPEC, -1, 0)
                return
            if c == "/" and len(s) == 1:
                raise self.fail(f"'{s}': '/' must be followed by a step")
            i = 1 if c == "*" else 0
            if i < len(s) and s[i] == "/":
                step_text = s[i + 1:]
                if not step_text:
                    raise self.fail(f"'{s}': '/' must be followed by a step")
                step = self.integer(step_text, s, "step")
                self.check_step(step, s)
            else:
                step = 1  # Quartz reads `*5` as `*`
            self.add(ALL_SPEC, -1, step)
            return
        if c == "L":
            self.store_last(s)
            return
        if c.isdigit():
            j = 1
            while j < len(s) and s[j].isdigit():
                j += 1
            value = int(s[:j])
            if j >= len(s):
                self.add(value, -1, -1)
            else:
                self.check_next(s, j, value)
            return
        raise self.fail(f"'{s}': unexpected character '{c}'")

    def store_name(self, s: str) -> None:
        field = self.field
        if field not in (MONTH, DAY_OF_WEEK):
            raise self.fail(f"'{s}': names are only allowed in month and day-of-week")
        names = MONTH_NUMBERS if field == MONTH else DAY_NUMBERS
        kind = "month" if field == MONTH else "day"
        start = names.get(s[:3]) if len(s) >= 3 else None
        if start is None:
            raise self.fail(f"'{s}': '{s[:3]}' is not a {kind} name ({'-'.join((next(iter(names)), list(names)[-1]))})")
        end = -1
        if len(s) > 3:
            c = s[3]
            if c == "-":
                end_name = s[4:7]
                end_number = names.get(end_name) if len(end_name) == 3 else None
                if end_number is None:
                    raise self.fail(f"'{s}': '{end_name}' is not a {kind} name")
                end = end_number
            elif field == DAY_OF_WEEK and c == "#":
                self.nth_day_of_week = self.nth(s[4:], s)
            elif field == DAY_OF_WEEK and c == "L":
                self.last_day_of_week = True
        self.add(start, end, 1 if end != -1 else 0)

    def store_last(self, s: str) -> None:
        field = self.field
        if field == DAY_OF_MONTH:
            self.last_day_of_month = True
            i = 1
            if i < len(s) and s[i] == "-":
                j = i + 1
                while j < len(s) and s[j].isdigit():
                    j += 1
                if j == i + 1 and j >= len(s):
                    raise self.fail(f"'{s}': 'L-' must be followed by a number of days")
                self.last_day_offset = int(s[i + 1:j] or "0")
                if self.last_day_offset > 30:
                    raise self.fail(f"'{s}': offset from the last day must be at most 30")
                i = j
            if i < len(s) and s[i] == "W":
                self.nearest_weekday = True
        elif field == DAY_OF_WEEK:
            self.add(7, 7, 0)  # a bare `L` in day-of-week means Saturday, the last day of the week
        # Elsewhere Quartz accepts `L` but selects nothing; parse() reports the empty field.

    # -- what follows a number (Quartz's checkNext) --------------------------------------------

    def check_next(self, s: str, i: int, value: int) -> None:
        field = self.field
        c = s[i]
        if c == "L":
            if field != DAY_OF_WEEK:
                raise self.fail(f"'{s}': 'L' after a number is only allowed in day-of-week (nL)")
            if not 1 <= value <= 7:
                raise self.fail(f"'{s}': {value} is out of range 1-7")
            self.last_day_of_week = True
            self.sets[field].add(value)
            return
        if c == "W":
            if field != DAY_OF_MONTH:
                raise self.fail(f"'{s}': 'W' is only allowed in day-of-month (nW, LW)")
            # Quartz checks only the upper bound and then searches forever for `0W`; we refuse it.
            if not 1 <= value <= 31:
                raise self.fail(f"'{s}': {value} is out of range 1-31")
            self.nearest_weekday = True
            self.sets[field].add(value)
            return
        if c == "#":
            if field != DAY_OF_WEEK:
                raise self.fail(f"'{s}': '#' is only allowed in day-of-week (n#k)")
            # Quartz does not range-check the weekday of `n#k`: `9#2` is valid and never fires.
            self.nth_day_of_week = self.nth(s[i + 1:], s)
            self.sets[field].add(value)
            return
        if c == "-":
            i += 1
            if i >= len(s) or not s[i].isdigit():
                raise self.fail(f"'{s}': '-' must be followed by the end of the range")
            j = i
            while j < len(s) and s[j].isdigit():
                j += 1
            end = int(s[i:j])
            if j < len(s) and s[j] == "/":
                k = j + 1
                if k >= len(s) or not s[k].isdigit():
                    raise self.fail(f"'{s}': '/' must be followed by a step")
                m = k
                while m < len(s) and s[m].isdigit():
                    m += 1
                # Quartz applies no step limit after a range (`0-59/90` is fine for it).
                self.add(value, end, int(s[k:m]))
            else:
                self.add(value, end, 1)
            return
        if c == "/":
            if i + 1 >= len(s):
                raise self.fail(f"'{s}': '/' must be followed by a step")
            if not s[i + 1].isdigit():
                raise self.fail(f"'{s}': '/' must be followed by a step")
            j = i + 2
            # Quartz refuses a character right after a one-digit step (`5/1X`) but ignores
            # whatever follows a longer one (`5/12X` reads as `5/12`).
            if j < len(s) and not s[j].isdigit():
                raise self.fail(f"'{s}': unexpected '{s[j]}' after the step")
            while j < len(s) and s[j].isdigit():
                j += 1
            step = int(s[i + 1:j])
            self.check_step(step, s)
            self.add(value, -1, step)
            return
        # Anything else after a number is ignored by Quartz (`5X` reads as `5`).
        self.add(value, -1, 0)

    # -- helpers --------------------------------------------------------------------------------

    def integer(self, text: str, s: str, what: str) -> int:
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise self.fail(f"'{s}': {what} '{text}' is not a whole number")
        return int(text)

    def nth(self, text: str, s: str) -> int:
        if not re.fullmatch(r"[+-]?[0-9]+", text) or not 1 <= int(text) <= 5:
            raise self.fail(f"'{s}': '#' must be followed by a number from 1 to 5")
        return int(text)

    def check_step(self, step: int, s: str) -> None:
        limit = _MAX_INCREMENT.get(self.field)
        if limit is not None and step > limit:
            raise self.fail(f"'{s}': step {step} is larger than {limit}")

    def add(self, value: int, end: int, step: int) -> None:
        """Quartz's addToSet: range-check, then add a value, a range or a stepped range."""
        field = self.field
        values = self.sets[field]
        if field in _RANGES and value not in (ALL_SPEC, NO_SPEC):
            low, high = _RANGES[field]
            if field == DAY_OF_WEEK:
                bad = value == 0 or value > high or end > high
            else:
                bad = value < low or value > high or end > high
            if bad:
                shown = value if (value < low or value > high) else end
                raise self.fail(f"{shown} is out of range {low}-{high}")

        if step in (0, -1) and value != ALL_SPEC:
            values.add(value if value != -1 else NO_SPEC)
            return
        start, stop = value, end
        if value == ALL_SPEC and step <= 0:
            step = 1
            values.add(ALL_SPEC)  # Quartz keeps the marker and also fills in every value
        if field == YEAR:
            low, high = 1970, max_year()
        else:
            low, high = _RANGES[field]
        if stop == -1:
            stop = high
        if start in (-1, ALL_SPEC):
            start = low
        modulus = None
        if stop < start:
            if field == YEAR:
                raise self.fail(f"'{self.token}': a year range must not run backwards")
            modulus = _WRAP[field]
            stop += modulus
        for v in range(start, stop + 1, step):
            if modulus is None:
                values.add(v)
            else:
                v %= modulus
                if v == 0 and field in (MONTH, DAY_OF_WEEK, DAY_OF_MONTH):
                    v = modulus
                values.add(v)


def parse_fields(text: str) -> CronFields:
    """Parse `text` as Quartz would; raise CronSyntaxError naming the field when it would not."""
    if not isinstance(text, str):
        raise CronSyntaxError("cron expression must be a string")
    return _Parser(text).parse()
