"""Organisations, their users and service accounts: who may call batchd, on whose behalf.

The EnOS model: an application's service account (access key + secret key) belongs to one
organisation (OU); every API call names a `userId` of that organisation. batchd keeps exactly
that, plus a root "Workflow" directory per organisation, which List Workflow Directories returns.

Functions take the caller's connection and never commit, so the admin CLI's bootstrap is one
transaction: a crash half way leaves nothing behind.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from batchd.clock import now_ms
from batchd.errors import InvalidParameter
from batchd.store.tables import directories, orgs, service_accounts, users

ROOT_DIRECTORY_NAME = "Workflow"


@dataclass(frozen=True, kw_only=True)
class User:
    user_id: str
    org_id: str
    name: str
    locked: bool


@dataclass(frozen=True, kw_only=True)
class ServiceAccount:
    access_key: str
    secret_key: str
    org_id: str
    created_at: int
    revoked_at: int | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """What `batchd admin bootstrap` hands to an operator: enough to make signed calls."""

    org_id: str
    user_id: str
    access_key: str
    secret_key: str

    def as_json(self) -> dict[str, str]:
        return {"orgId": self.org_id, "userId": self.user_id, "accessKey": self.access_key, "secretKey": self.secret_key}


async def org_exists(conn: AsyncConnection, org_id: str) -> bool:
    return (await conn.execute(sa.select(orgs.c.org_id).where(orgs.c.org_id == org_id))).first() is not None


async def create_org(conn: AsyncConnection, org_id: str, name: str) -> None:
    """A new organisation with its root "Workflow" directory (id: 32 lower-case hex chars)."""
    _require_id("orgId", org_id)
    now = now_ms()
    await conn.execute(sa.insert(orgs).values(org_id=org_id, name=name, created_at=now))
    await conn.execute(
        sa.insert(directories).values(
            dir_id=uuid.uuid4().hex, org_id=org_id, parent_id=None, name=ROOT_DIRECTORY_NAME, created_at=now
        )
    )


# Built once: every API call runs it, and building a statement costs more than SQLite's lookup.
_USER_BY_ID = sa.select(users).where(users.c.user_id == sa.bindparam("user_id"))


async def find_user(conn: AsyncConnection, user_id: str) -> User | None:
    return _user_of((await conn.execute(_USER_BY_ID, {"user_id": user_id})).first())


def find_user_now(conn: sa.Connection, user_id: str) -> User | None:
    """`find_user` on a synchronous connection: for work that runs whole on the database's
    worker thread (`Database.run_write`), such as Import Flow's one hop."""
    return _user_of(conn.execute(_USER_BY_ID, {"user_id": user_id}).first())


def _user_of(row: sa.Row | None) -> User | None:
    if row is None:
        return None
    return User(user_id=row.user_id, org_id=row.org_id, name=row.name, locked=bool(row.locked))


async def add_user(conn: AsyncConnection, *, org_id: str, user_id: str, name: str, locked: bool = False) -> User:
    """A new user of an existing organisation; user ids are global, as in EnOS."""
    _require_id("userId", user_id)
    if not await org_exists(conn, org_id):
        raise InvalidParameter(f"orgId: organisation {org_id!r} does not exist")
    existing = await find_user(conn, user_id)
    if existing is not None:
        raise InvalidParameter(f"userId: {user_id!r} already exists (in organisation {existing.org_id!r})")
    await conn.execute(
        sa.insert(users).values(user_id=user_id, org_id=org_id, name=name, locked=locked, created_at=now_ms())
    )
    return User(user_id=user_id, org_id=org_id, name=name, locked=locked)


async def create_service_account(conn: AsyncConnection, org_id: str) -> ServiceAccount:
    """A new key pair for `org_id`. Both keys are UUID-shaped: EnOS's Python client parses them."""
    if not await org_exists(conn, org_id):
        raise InvalidParameter(f"orgId: organisation {org_id!r} does not exist")
    account = ServiceAccount(
        access_key=str(uuid.uuid4()), secret_key=str(uuid.uuid4()), org_id=org_id, created_at=now_ms(), revoked_at=None
    )
    await conn.execute(
        sa.insert(service_accounts).values(
            access_key=account.access_key,
            secret_key=account.secret_key,
            org_id=org_id,
            created_at=account.created_at,
        )
    )
    return account


async def find_service_account(conn: AsyncConnection, access_key: str) -> ServiceAccount | None:
    row = (await conn.execute(sa.select(service_accounts).where(service_accounts.c.access_key == access_key))).first()
    return None if row is None else _account(row)


async def list_service_accounts(conn: AsyncConnection, org_id: str | None = None) -> list[ServiceAccount]:
    """Every key, oldest first, optionally of one organisation (revoked ones included)."""
    query = sa.select(service_accounts).order_by(service_accounts.c.created_at, service_accounts.c.access_key)
    if org_id is not None:
        query = query.where(service_accounts.c.org_id == org_id)
    return [_account(row) for row in await conn.execute(query)]


async def revoke_service_account(conn: AsyncConnection, access_key: str) -> ServiceAccount:
    """Revoke a key: its tokens stop working at once (they are checked against the key per call)."""
    account = await find_service_account(conn, access_key)
    if account is None:
        raise InvalidParameter(f"accessKey: {access_key!r} does not exist")
    if account.active:
        revoked_at = now_ms()
        await conn.execute(
            sa.update(service_accounts)
            .where(service_accounts.c.access_key == access_key)
            .values(revoked_at=revoked_at)
        )
        account = ServiceAccount(**{**account.__dict__, "revoked_at": revoked_at})
    return account


async def bootstrap(conn: AsyncConnection, *, org_id: str, user_id: str, user_name: str) -> Credentials:
    """Make sure the org, the user in it and an active key exist; create only what is missing.

    Running it twice returns the same org, user and key, so scripts can call it unconditionally.
    """
    if not await org_exists(conn, org_id):
        await create_org(conn, org_id, org_id)
    user = await find_user(conn, user_id)
    if user is None:
        user = await add_user(conn, org_id=org_id, user_id=user_id, name=user_name)
    elif user.org_id != org_id:
        raise InvalidParameter(f"userId: {user_id!r} already belongs to organisation {user.org_id!r}, not {org_id!r}")
    active = [account for account in await list_service_accounts(conn, org_id) if account.active]
    account = active[0] if active else await create_service_account(conn, org_id)
    return Credentials(org_id=org_id, user_id=user.user_id, access_key=account.access_key, secret_key=account.secret_key)


def _account(row: sa.Row) -> ServiceAccount:
    return ServiceAccount(
        access_key=row.access_key,
        secret_key=row.secret_key,
        org_id=row.org_id,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _require_id(field: str, value: str) -> None:
    if not value or not value.strip() or len(value) > 64:
        raise InvalidParameter(f"{field}: {value!r} must be 1-64 characters, not blank")
