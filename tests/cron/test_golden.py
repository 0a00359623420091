"""batchd.cron against golden answers from the real Quartz 2.3.2 (tests/cron/golden/*.tsv).

One test per golden file (not per line: ~11,000 test ids would be slow to collect); each test
answers every line with `answer_case` and reports every mismatch with its file and line number.

  * valid / invalid must agree with Quartz on every case;
  * for valid cases the fire times must be identical, character for character;
  * for invalid cases only the verdict must match (batchd writes its own message), but the message
    must be non-empty and name the offending field or say that the expression's shape is wrong.

The files are written by tests/cron/make_golden.py (which needs the Quartz oracle, the tests
do not).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
FILES = sorted(GOLDEN.glob("*.tsv"))
REPO = Path(__file__).resolve().parents[2]

FIELD_WORDS = re.compile(
    r"\b(second|minute|hour|day-of-month|month|day-of-week|year)s?\b"  # names a field
    r"|\b(6 or 7|fields?|empty)\b",  # or says the expression's shape is wrong
    re.IGNORECASE,
)
MAX_REPORTED = 60


class GoldenCase:
    __slots__ = ("file", "lineno", "expr", "zone", "start", "n", "result")

    def __init__(self, file: Path, lineno: int, line: str) -> None:
        cols = line.split("\t")
        if len(cols) != 5:
            raise ValueError(f"{file.name}:{lineno}: expected 5 tab-separated columns, got {len(cols)}")
        self.file, self.lineno = file, lineno
        self.expr, self.zone, self.start, self.n, self.result = cols

    @property
    def input_line(self) -> str:
        return f"{self.expr}\t{self.zone}\t{self.start}\t{self.n}"

    @property
    def output_line(self) -> str:
        return f"{self.expr}\t{self.zone}\t{self.start}\t{self.result}"

    @property
    def invalid(self) -> bool:
        return self.result.startswith("INVALID:")

    def where(self) -> str:
        return f"{self.file.name}:{self.lineno}: {self.input_line!r}"


def load(file: Path) -> list[GoldenCase]:
    cases = []
    with file.open(encoding="utf-8", newline="\n") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            cases.append(GoldenCase(file, lineno, line))
    return cases


def _answer_case():
    try:
        from batchd.cron import answer_case
    except ImportError as exc:  # the engine is not there (yet): fail each test, don't break collection
        pytest.fail(f"batchd.cron.answer_case is not importable: {exc}")
    return answer_case


def check(case: GoldenCase, got: str) -> str | None:
    """None when batchd's output line agrees with Quartz's, else a description of the mismatch."""
    head = f"{case.expr}\t{case.zone}\t{case.start}\t"
    if not got.startswith(head):
        return f"{case.where()}\n    output does not echo the case: {got!r}"
    answer = got[len(head):]
    if case.invalid:
        if not answer.startswith("INVALID: "):
            return f"{case.where()}\n    Quartz: {case.result}\n    batchd accepted it: {answer!r}"
        message = answer[len("INVALID: "):].strip()
        if not message:
            return f"{case.where()}\n    batchd's INVALID message is empty"
        if not FIELD_WORDS.search(message):
            return f"{case.where()}\n    batchd's message names no field: {message!r}"
        return None
    if answer.startswith("INVALID:"):
        return f"{case.where()}\n    Quartz accepts it: {case.result!r}\n    batchd: {answer}"
    if answer != case.result:
        want, have = case.result.split(","), answer.split(",")
        first = next((i for i, (a, b) in enumerate(zip(want, have)) if a != b), min(len(want), len(have)))
        return (f"{case.where()}\n    Quartz: {case.result}\n    batchd: {answer}\n"
                f"    first difference at fire #{first + 1}: Quartz "
                f"{want[first] if first < len(want) else '(none)'} / batchd {have[first] if first < len(have) else '(none)'}")
    return None


def test_golden_files_present():
    assert len(FILES) >= 8, f"golden files missing in {GOLDEN}"
    total = sum(len(load(f)) for f in FILES)
    assert total >= 5000, total


@pytest.mark.parametrize("file", FILES, ids=[f.stem for f in FILES])
def test_golden(file: Path):
    answer_case = _answer_case()
    cases = load(file)
    assert cases, f"{file.name} has no cases"
    failures = []
    for case in cases:
        try:
            got = answer_case(case.input_line)
        except Exception as exc:  # noqa: BLE001 - every case must answer, report all that don't
            failures.append(f"{case.where()}\n    raised {type(exc).__name__}: {exc}")
            continue
        problem = check(case, got)
        if problem:
            failures.append(problem)
    if failures:
        shown = "\n".join(failures[:MAX_REPORTED])
        more = f"\n... and {len(failures) - MAX_REPORTED} more" if len(failures) > MAX_REPORTED else ""
        pytest.fail(f"{len(failures)} of {len(cases)} cases in {file.name} disagree with Quartz:\n{shown}{more}",
                    pytrace=False)


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("batchd")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "batchd"]


@pytest.mark.parametrize("name", ["typical", "dst_walls"])
def test_cli_cron_next_end_to_end(name: str):
    """`batchd cron next` on a golden file's valid cases prints exactly Quartz's lines."""
    cases = [c for c in load(GOLDEN / f"{name}.tsv") if not c.invalid]
    stdin = "".join(c.input_line + "\n" for c in cases)
    expected = "".join(c.output_line + "\n" for c in cases)
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.run(_cli() + ["cron", "next"], input=stdin.encode(), capture_output=True, env=env,
                          timeout=240, cwd=REPO)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    if proc.stdout != expected.encode():
        got = proc.stdout.decode(errors="replace").split("\n")
        want = expected.split("\n")
        diffs = [f"line {i + 1}:\n    want {w!r}\n    got  {g!r}" for i, (w, g) in enumerate(zip(want, got)) if w != g]
        pytest.fail(f"`batchd cron next` output differs from Quartz ({len(got)} vs {len(want)} lines):\n"
                    + "\n".join(diffs[:20]), pytrace=False)
