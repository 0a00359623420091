"""`batchd admin`: organisations, users and service-account keys, straight in the database.

Works without a running server, on the same database the server uses (`--home`, or
`BATCHD_DATABASE_URL` for PostgreSQL); migrates it first, so it also works on a fresh home.
Each command is one transaction.
"""

from __future__ import annotations

from typing import Annotated

import typer

from batchd.cli.common import AsJson, Home, in_transaction, print_json, stdout, when
from batchd.store import identity

app = typer.Typer(help="Manage organisations, users and service-account keys.", no_args_is_help=True)
users_app = typer.Typer(help="Users of an organisation.", no_args_is_help=True)
keys_app = typer.Typer(help="Service-account keys (access key + secret key).", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")


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
    credentials = in_transaction(
        home, lambda conn: identity.bootstrap(conn, org_id=org, user_id=user, user_name=name or user)
    )
    if as_json:
        print_json(credentials.as_json())
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
    added = in_transaction(
        home, lambda conn: identity.add_user(conn, org_id=org, user_id=user, name=name or user, locked=locked)
    )
    if as_json:
        print_json({"orgId": added.org_id, "userId": added.user_id, "name": added.name, "locked": added.locked})
    else:
        stdout.print(f"added user [bold]{added.user_id}[/bold] ({added.name}) to organisation {added.org_id}")


@keys_app.command("list")
def keys_list(
    org: Annotated[str | None, typer.Option(help="Only this organisation's keys.")] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """List access keys (never the secrets), revoked ones included."""
    accounts = in_transaction(home, lambda conn: identity.list_service_accounts(conn, org))
    if as_json:
        print_json(
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
        print(f"{account.access_key:<36}  {account.org_id:<16}  {when(account.created_at):<23}  {when(account.revoked_at)}")


@keys_app.command("create")
def keys_create(
    org: Annotated[str, typer.Option(help="Existing organisation id.")],
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Create another key for an organisation (e.g. to rotate: create, switch clients, revoke the old)."""
    account = in_transaction(home, lambda conn: identity.create_service_account(conn, org))
    if as_json:
        print_json({"orgId": account.org_id, "accessKey": account.access_key, "secretKey": account.secret_key})
    else:
        stdout.print(f"accessKey {account.access_key}\nsecretKey {account.secret_key}")


@keys_app.command("revoke")
def keys_revoke(
    access_key: Annotated[str, typer.Argument(help="The access key to revoke.")],
    home: Home = None,
) -> None:
    """Revoke a key: its tokens stop working immediately, and it can no longer get new ones."""
    account = in_transaction(home, lambda conn: identity.revoke_service_account(conn, access_key))
    stdout.print(f"revoked {account.access_key} (organisation {account.org_id}) at {when(account.revoked_at)}")
