"""What the offline `batchd` commands (`admin`, `flows`) share: the `--home` and `--json`
options, one transaction on the migrated database with errors turned into exit codes, and
output helpers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncConnection

from batchd.config import Settings, SettingsError
from batchd.errors import BatchdError
from batchd.store.database import run_once

stdout = Console()
stderr = Console(stderr=True)

T = TypeVar("T")
Home = Annotated[Path | None, typer.Option(help="batchd's data folder (default ~/.batchd, or BATCHD_HOME).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def in_transaction(home: Path | None, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run `work` in one transaction on the migrated database; errors become exit codes
    (2 for bad settings, 1 for a refused operation) with the message on stderr."""
    try:
        return asyncio.run(run_once(Settings.load(home=home), work))
    except SettingsError as exc:
        stderr.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None
    except BatchdError as exc:
        stderr.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None


def print_json(value: Any) -> None:
    # Plain print: rich would wrap and colour it, and this output is for programs.
    print(json.dumps(value, separators=(",", ":")))


def when(epoch_ms: int | None) -> str:
    """An epoch-ms moment for people: `2026-11-25 03:15:00 UTC`, empty when there is none."""
    return "" if epoch_ms is None else datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
