"""`batchd admin`: organisations, users and service-account keys, straight in the database.

Works without a running server, on the same database the server uses (`--home`, or
`BATCHD_DATABASE_URL` for PostgreSQL); migrates it first, so it also works on a fresh home.
Each command is one transaction.
"""

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
from batchd.store import identity
from batchd.store.database import run_once

app = typer.Typer(help="Manage organisations, users and service-account keys.", no_args_is_help=True)
users_app = typer.Typer(help="Users of an organisation.", no_args_is_help=True)
keys_app = typer.Typer(help="Service-account keys (access key + secret key).", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")

stdout = Console()
stderr = Console(stderr=True)

T = TypeVar("T")
# Home, AsJson, _in_transaction, _print_json and _when are also used by cli/flows.py: keep them.
Home = Annotated[Path | None, typer.Option(help="batchd's data folder (default ~/.batchd, or BATCHD_HOME).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _in_transaction(home: Path | None, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run `work` in one transaction on the migrated database; errors become exit codes."""

    try:
        return asyncio.run(run_once(Settings.load(home=home), work))
    except SettingsError as exc:
        stderr.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None
    except BatchdError as exc:
        stderr.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None


def _print_json(value: Any) -> None:
    # Plain print: rich would wrap and colour it, and this output is for programs.
    print(json.dumps(value, separators=(",", ":")))


def _when(epoch_ms: int | None) -> str:
    return "" if epoch_ms is None else datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@app.command()
def bootstrap(
    org: Annotated[str, typer.Option(help="Organisation id (created if missing).")],
    user: Annotated[str, typer.Option(help="User id in that organisation (created if missing).")],
    name: Annotated[str | None, typer.Option(help="User's display name (default: the user id).")] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Make sure an organisation, a user in it and an active key exist; print the credentials.

    Idempotent: a second run prints the same org, user and key.
    """
    credentials = _in_transaction(
        home, lambda conn: identity.bootstrap(conn, org_id=org, user_id=user, user_name=name or user)
    )
    if as_json:
        _print_json(credentials.as_json())
        return
    for label, value in credentials.as_json().items():
        stdout.print(f"{label:<10} {value}", soft_wrap=True)


@users_app.command("add")
def users_add(
    org: Annotated[str, typer.Option(help="Existing organisation id.")],
    user: Annotated[str, typer.Option(help="New user id (unique across organisations).")],
    name: Annotated[str | None, typer.Option(help="Display name (default: the user id).")] = None,
    locked: Annotated[bool, typer.Option("--locked", help="Create the account locked (62105 on changes).")] = False,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Add a user to an organisation."""
    added = _in_transaction(
        home, lambda conn: identity.add_user(conn, org_id=org, user_id=user, name=name or user, locked=locked)
    )
    if as_json:
        _print_json({"orgId": added.org_id, "userId": added.user_id, "name": added.name, "locked": added.locked})
    else:
        stdout.print(f"added user [bold]{added.user_id}[/bold] ({added.name}) to organisation {added.org_id}")


@keys_app.command("list")
def keys_list(
    org: Annotated[str | None, typer.Option(help="Only this organisation's keys.")] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """List access keys (never the secrets), revoked ones included."""
    accounts = _in_transaction(home, lambda conn: identity.list_service_accounts(conn, org))
    if as_json:
        _print_json(
            [
                {"accessKey": a.access_key, "orgId": a.org_id, "createdAt": a.created_at, "revokedAt": a.revoked_at}
                for a in accounts
            ]
        )
        return
    # Plain aligned lines, not a rich table: a table narrower than a key would fold it, and
    # operators copy keys from here.
    print(f"{'accessKey':<36}  {'orgId':<16}  {'created':<23}  revoked")
    for account in accounts:
        print(f"{account.access_key:<36}  {account.org_id:<16}  {_when(account.created_at):<23}  {_when(account.revoked_at)}")


@keys_app.command("create")
def keys_create(
    org: Annotated[str, typer.Option(help="Existing organisation id.")],
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Create another key for an organisation (e.g. to rotate: create, switch clients, revoke the old)."""
    account = _in_transaction(home, lambda conn: identity.create_service_account(conn, org))
    if as_json:
        _print_json({"orgId": account.org_id, "accessKey": account.access_key, "secretKey": account.secret_key})
    else:
        stdout.print(f"accessKey {account.access_key}\nsecretKey {account.secret_key}")


@keys_app.command("revoke")
def keys_revoke(
    access_key: Annotated[str, typer.Argument(help="The access key to revoke.")],
    home: Home = None,
) -> None:
    """Revoke a key: its tokens stop working immediately, and it can no longer get new ones."""
    account = _in_transaction(home, lambda conn: identity.revoke_service_account(conn, access_key))
    stdout.print(f"revoked {account.access_key} (organisation {account.org_id}) at {_when(account.revoked_at)}")
