"""Runner plugins: how task kinds other than SHELL and PYTHON get run (docs/runners.md).

A plugin is any object with

- `kinds`: the canonical task kinds it runs (`{"HIVE"}`, `{"DATA_INTEGRATION"}`), upper case;
- `async run(spec, on_started, cancel) -> AttemptOutcome`.

It is published by an installed package under the entry-point group `batchd.runners`; the entry
point may name the plugin object itself or a class / factory called with no arguments.

What `run_attempt` does around a plugin, so plugins stay small: the workdir exists and the header
is already in `spec.log_path` when `run` is called (append your output there); `cancel` is set
when the engine cancels *or* when `spec.timeout_seconds` passes (the runner then marks the
outcome `timed_out`); an exception from `run` becomes an outcome with `error` set. A plugin that
starts local processes should start them in a new session and call `await on_started(pgid)`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Collection
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

from batchd.runner.records import AttemptOutcome, AttemptSpec

ENTRY_POINT_GROUP = "batchd.runners"
log = logging.getLogger("batchd.runner")

OnStarted = Callable[[int], Awaitable[None]]


@runtime_checkable
class RunnerPlugin(Protocol):
    """Runs attempts of the task kinds in `kinds` (see the module docstring for the contract)."""

    kinds: Collection[str]

    async def run(
        self, spec: AttemptSpec, on_started: OnStarted | None, cancel: asyncio.Event
    ) -> AttemptOutcome: ...


@functools.cache
def discover_plugins() -> dict[str, RunnerPlugin]:
    """Kind -> plugin from the installed `batchd.runners` entry points (read once per process).

    A plugin that fails to load is logged and skipped; when two claim a kind, the first by
    entry-point name wins (and the other is logged).
    """
    found: dict[str, RunnerPlugin] = {}
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        try:
            loaded = point.load()
            plugin = loaded() if isinstance(loaded, type) or not hasattr(loaded, "kinds") else loaded
        except Exception:
            log.exception("runner plugin %s (%s) failed to load; skipped", point.name, point.value)
            continue
        for kind in plugin.kinds:
            kind = kind.upper()
            if kind in found:
                log.warning("runner plugin %s also claims %s; keeping the first", point.name, kind)
                continue
            found[kind] = plugin
    return found


def missing_plugin_message(kind: str) -> str:
    """The `error` of an attempt whose kind has no plugin: names the kind and the way out."""
    return (
        f"no runner for task type {kind}: install a package that provides a "
        f"'{ENTRY_POINT_GROUP}' entry point for it (see docs/runners.md)"
    )
