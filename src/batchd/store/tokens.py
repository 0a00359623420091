"""Access tokens of the token service, and the replay guard for signed calls.

A token is an opaque random string tied to one service account, valid for `TOKEN_TTL_SECONDS`
(the 7200 s the EnOS token service announces). Every call checks it together with its account,
so revoking the account disables its tokens without touching them: `record_signature` does that
check and the replay guard's insert in one statement, the one database round trip a signed call
makes once the token's secret is known.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from batchd.store.statements import Prepared, insert_if_absent
from batchd.store.tables import access_tokens, service_accounts, used_signatures

TOKEN_TTL_SECONDS = 7200


@dataclass(frozen=True, kw_only=True)
class AccessToken:
    token: str
    access_key: str
    expires_at: int


@dataclass(frozen=True, kw_only=True)
class TokenHolder:
    """A token with what a call needs about its account: the secret to check signatures, the org."""

    token: AccessToken
    secret_key: str
    org_id: str
    account_revoked: bool


async def issue_token(conn: AsyncConnection, access_key: str, now: int) -> AccessToken:
    token = AccessToken(token=secrets.token_hex(32), access_key=access_key, expires_at=now + TOKEN_TTL_SECONDS * 1000)
    await conn.execute(
        sa.insert(access_tokens).values(token=token.token, access_key=access_key, expires_at=token.expires_at)
    )
    # Expired tokens are dead weight; dropping them here keeps the table at the live ones.
    await conn.execute(
        sa.delete(access_tokens).where(access_tokens.c.access_key == access_key, access_tokens.c.expires_at < now)
    )
    return token


async def find_token(conn: AsyncConnection, token: str) -> TokenHolder | None:
    row = (
        await conn.execute(
            sa.select(access_tokens, service_accounts.c.secret_key, service_accounts.c.org_id, service_accounts.c.revoked_at)
            .join(service_accounts)
            .where(access_tokens.c.token == token)
        )
    ).first()
    if row is None:
        return None
    return TokenHolder(
        token=AccessToken(token=row.token, access_key=row.access_key, expires_at=row.expires_at),
        secret_key=row.secret_key,
        org_id=row.org_id,
        account_revoked=row.revoked_at is not None,
    )


async def drop_token(conn: AsyncConnection, token: str) -> None:
    await conn.execute(sa.delete(access_tokens).where(access_tokens.c.token == token))


async def first_use(conn: AsyncConnection, signature: str, now: int) -> bool:
    """Record a signature; False when it was already seen, i.e. the request is a replay."""
    return await insert_if_absent(conn, used_signatures, signature=signature, seen_at=now)


def _record_signature_statement(insert: Any) -> sa.Insert:
    now = sa.bindparam("now", type_=sa.BigInteger)
    live = (
        sa.select(sa.bindparam("signature", type_=sa.String), now)
        .select_from(access_tokens.join(service_accounts))
        .where(access_tokens.c.token == sa.bindparam("token", type_=sa.String), access_tokens.c.expires_at > now,
               service_accounts.c.revoked_at.is_(None))
    )
    return (
        insert(used_signatures).from_select(["signature", "seen_at"], live)
        .on_conflict_do_nothing(index_elements=["signature"])
        .returning(used_signatures.c.signature)
    )


# Built once: constructing this statement per call cost more than running it.
_RECORD_SIGNATURE = {"postgresql": _record_signature_statement(postgresql.insert),
                     "sqlite": _record_signature_statement(sqlite.insert)}


async def record_signature(conn: AsyncConnection, signature: str, token: str, now: int) -> bool:
    """Record a call's signature if, at this instant, `token` is live (exists, not expired, its
    account not revoked) and the signature is new; True when recorded. One statement, so the
    check and the record cannot be separated by a revocation or by the same signature arriving
    at another process. On False the caller looks at the token again to say which it was.
    """
    statement = _RECORD_SIGNATURE[conn.dialect.name]
    result = await conn.execute(statement, {"signature": signature, "token": token, "now": now})
    return result.first() is not None


# The same, run straight on the DB-API cursor (`Prepared`: text and integers only, no conversion).
_RECORD_SIGNATURE_PREPARED = {dialect: Prepared(statement) for dialect, statement in _RECORD_SIGNATURE.items()}


def record_signature_now(conn: sa.Connection, signature: str, token: str, now: int) -> bool:
    """`record_signature` on a synchronous connection, inside work that runs whole in one
    `Database.run_write` transaction (Import Flow's and a signed Get Flow's one hop record their
    call's signature there; on SQLite every signed call's record is such a transaction)."""
    prepared = _RECORD_SIGNATURE_PREPARED[conn.dialect.name]
    return prepared.execute(conn, {"signature": signature, "token": token, "now": now}).first() is not None


_FORGET_SIGNATURES = sa.delete(used_signatures).where(used_signatures.c.seen_at < sa.bindparam("cutoff"))


async def forget_signatures_before(conn: AsyncConnection, cutoff: int) -> None:
    """Drop signatures seen before `cutoff`: their timestamps are outside the window anyway."""
    await conn.execute(_FORGET_SIGNATURES, {"cutoff": cutoff})


def forget_signatures_before_now(conn: sa.Connection, cutoff: int) -> None:
    """`forget_signatures_before` on a synchronous connection (see `record_signature_now`)."""
    conn.execute(_FORGET_SIGNATURES, {"cutoff": cutoff})

