"""Helpers for runner tests: real processes, short timeouts, a fresh folder per test.

A module of its own (not conftest.py, whose name the top-level conftest already takes);
`tests/runner/conftest.py` exposes `make_spec` as a fixture.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from batchd.runner import AttemptSpec, attempt_header
from batchd.runner.process import live_members

MakeSpec = Callable[..., AttemptSpec]


@pytest.fixture
def make_spec(tmp_path: Path) -> MakeSpec:
    """`make_spec(command, **overrides)`: a SHELL attempt in tmp_path (workdir `w<attempt>`)."""

    def make(command: str, **overrides: Any) -> AttemptSpec:
        attempt = overrides.get("attempt", 1)
        fields: dict[str, Any] = {
            "task_instance_id": "104452-201908080322",
            "attempt": attempt,
            "task_type": "SHELL",
            "command": command,
            "timeout_seconds": 20,
            "workdir": tmp_path / f"w{attempt}",
            "log_path": tmp_path / "logs" / "task.log",
            "header": attempt_header(
                1, attempt, "104452-201908080322", command, "tester",
                dt.datetime(2019, 8, 8, 3, 22, 38, tzinfo=dt.timezone.utc),
            ),
            "kill_grace_seconds": 1.0,
        }
        fields.update(overrides)
        return AttemptSpec(**fields)

    return make


def output_of(spec: AttemptSpec) -> bytes:
    """What followed this attempt's header in the log (the last attempt with that header)."""
    data = spec.log_path.read_bytes()
    header = spec.header.encode()
    assert header in data, data[:200]
    return data[data.rindex(header) + len(header) :]


def assert_group_gone(pgid: int) -> None:
    """No live process of the group is left (zombies reparented to a non-reaping init don't count)."""
    assert live_members(pgid) == [], f"group {pgid} still has live processes"


def run(coro: Any) -> Any:
    return asyncio.run(coro)
