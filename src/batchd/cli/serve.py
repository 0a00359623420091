"""`batchd serve`: run the HTTP service (uvicorn) on the configured database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer
import uvicorn
from rich.console import Console

from batchd.api.app import create_app
from batchd.config import Settings, SettingsError

stderr = Console(stderr=True)


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1, or BATCHD_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8080, or BATCHD_PORT).")] = None,
    home: Annotated[
        Path | None, typer.Option(help="batchd's data folder (default ~/.batchd, or BATCHD_HOME).")
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Accept calls without token or signature (userId/orgId are still checked). "
            "Refused unless --host is a loopback address.",
        ),
    ] = False,
) -> None:
    """Serve the EnOS Batch Processing API v2.1 (migrates the database first)."""
    try:
        settings = Settings.load(home=home, host=host, port=port, insecure=insecure)
    except SettingsError as exc:
        stderr.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None
    if settings.insecure:
        stderr.print("[yellow]warning:[/yellow] --insecure: authentication is off (loopback only)")
    database = sa.make_url(settings.database_url).render_as_string(hide_password=True)
    stderr.print(f"batchd serving on http://{settings.host}:{settings.port} (database {database}, docs at /docs)", soft_wrap=True)
    # httptools and uvloop are pinned dependencies: named here rather than left to uvicorn's
    # "auto", so a missing one fails at start instead of silently serving on the slower
    # pure-Python h11 and the standard library's loop (docs/decisions.md, "HTTP stack").
    uvicorn.run(create_app(settings, owns_process=True), host=settings.host, port=settings.port, access_log=False,
                log_level="warning", http="httptools", loop="uvloop")
