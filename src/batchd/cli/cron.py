"""`batchd cron`: evaluate Quartz cron expressions from the command line.

`next` speaks the Quartz oracle's line format on stdin/stdout, so other tools can diff batchd
against the real Quartz; `explain` is for people.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from itertools import islice
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from batchd.cron import CronExpression, answer_case, resolve_zone
from batchd.errors import BatchdError

app = typer.Typer(help="Evaluate Quartz cron expressions.", no_args_is_help=True)


@app.command("next")
def next_fires() -> None:
    """Read cases `EXPRESSION<TAB>ZONE<TAB>START<TAB>N` on stdin; write the oracle's format to stdout.

    Each answer line is `EXPRESSION<TAB>ZONE<TAB>START<TAB>fire1,fire2,...` (local ISO times in
    ZONE, strictly after START) or `...<TAB>INVALID: message`. Blank lines and lines starting
    with `#` are skipped.
    """
    out = sys.stdout
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        try:
            out.write(answer_case(line) + "\n")
        except ValueError as exc:
            typer.echo(f"line {number}: {exc}", err=True)
            raise typer.Exit(2) from exc
    out.flush()


@app.command("explain")
def explain(
    expression: Annotated[str, typer.Argument(help="A Quartz cron expression, e.g. '0 0 0 * * ? *'.")],
    zone: Annotated[str, typer.Option("--zone", "-z", help="IANA time zone or GMT+H offset.")] = "UTC",
    count: Annotated[int, typer.Option("--count", "-n", min=0, max=1000, help="How many fire times.")] = 5,
    after: Annotated[
        str | None, typer.Option(help="Start after this local time (yyyy-mm-ddThh:mm:ss); default now.")
    ] = None,
) -> None:
    """Describe EXPRESSION in English and list its next fire times."""
    console = Console()
    try:
        parsed = CronExpression.parse(expression)
        tz = resolve_zone(zone)
        start = datetime.now(timezone.utc) if after is None else datetime.fromisoformat(after).replace(tzinfo=tz)
    except BatchdError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(1) from exc
    except ValueError as exc:
        Console(stderr=True).print(f"[red]error:[/red] --after: {exc}", highlight=False)
        raise typer.Exit(2) from exc
    console.print(f"[bold]{expression}[/bold]", highlight=False)
    console.print(parsed.describe(), highlight=False)
    fires = list(islice(parsed.fire_times(start, tz), count))
    if not fires:
        console.print("It never fires after that time.")
        return
    table = Table(title=f"Next {len(fires)} fire times in {zone}")
    table.add_column("#", justify="right")
    table.add_column("local time")
    table.add_column("UTC offset")
    for number, fire in enumerate(fires, start=1):
        table.add_row(str(number), fire.strftime("%Y-%m-%d %H:%M:%S %a"), fire.strftime("%z"))
    console.print(table)
