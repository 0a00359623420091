"""The `batchd` command line: one Typer app, one sub-app per area (cron, serve, admin, ...)."""

from __future__ import annotations

import typer

from batchd.cli.admin import app as admin_app
from batchd.cli.cron import app as cron_app
from batchd.cli.flows import app as flows_app
from batchd.cli.serve import serve

app = typer.Typer(
    name="batchd",
    help="batchd: batch workflows with Quartz schedules, speaking the EnOS Batch Processing API v2.1.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(cron_app, name="cron")
app.command("serve")(serve)
app.add_typer(admin_app, name="admin")
app.add_typer(flows_app, name="flows")


def main() -> None:
    app()
