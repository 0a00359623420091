"""Descriptions people read in the console and `batchd cron explain`."""

import subprocess
import sys

import pytest

from batchd.cron import CronExpression


@pytest.mark.parametrize(
    ("text", "description"),
    [
        ("0 0 0 * * ? *", "at 00:00:00, every day"),
        ("59 59 23 * * ? *", "at 23:59:59, every day"),
        ("0 1 * * * ? *", "every hour at minute 1, every day"),
        ("0 1/1 * * * ? *", "every minute starting at minute 1, every day"),
        ("0 0/15 9-17 ? * MON-FRI", "every 15 minutes, hours 9-17, on weekdays"),
        ("0 30 2 L * ?", "at 02:30:00, on the last day of the month"),
        ("0 0 12 ? * 6#3", "at 12:00:00, on the third Friday of the month"),
        ("0 0 12 ? * 2L", "at 12:00:00, on the last Monday of the month"),
        ("0 0 2 15W * ? 2025-2027", "at 02:00:00, on the weekday nearest the 15th of the month, in 2025-2027"),
        ("0 0 6 1 JAN,JUL ?", "at 06:00:00, on the 1st of the month, in January and July"),
        ("0 0 0 * * ? 2020", "at 00:00:00, every day, in 2020"),
        ("0 0 0 * * ? L", "never (no year selected)"),
    ],
)
def test_describe(text: str, description: str) -> None:
    assert description in CronExpression.parse(text).describe()


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "batchd", "cron", *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_explain_lists_fire_times_with_offsets() -> None:
    result = run_cli("explain", "0 0 0 * * ? *", "--zone", "Europe/Berlin", "--after",
                     "2024-03-29T12:00:00", "--count", "3")
    assert result.returncode == 0, result.stderr
    assert "at 00:00:00, every day" in result.stdout
    assert "2024-03-30 00:00:00 Sat" in result.stdout
    assert "2024-04-01 00:00:00 Mon │ +0200" in result.stdout


def test_explain_reports_invalid_expression() -> None:
    result = run_cli("explain", "0 0 25 * * ?")
    assert result.returncode == 1
    assert "hour: 25 is out of range 0-23" in result.stderr


def test_next_rejects_malformed_case_lines() -> None:
    result = run_cli("next", stdin="0 0 0 * * ?\tUTC\n")
    assert result.returncode == 2
    assert "line 1: expected 4 tab-separated columns" in result.stderr
