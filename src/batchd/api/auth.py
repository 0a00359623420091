"""EnOS access-token authentication: the token service and the per-call signature check.

1. The application trades its service account for a token:
   `POST /apim-token-service/v2.0/token/get` with `{"appKey", "timestamp", "encryption"}`, where
   encryption = sha256_hex(appKey + timestamp + appSecret). `.../token/refresh` also takes the
   current `accessToken` and replaces it. Answers use the token service's own `status` codes.
2. Every API call then carries `apim-accesstoken`, `apim-timestamp` (epoch ms) and
   `apim-signature` = sha256_hex(accessToken + paramsData + timestamp + appSecret), paramsData
   being the query parameters sorted by name as name1value1name2value2..., then the raw body.

Both proofs are replay-guarded: a timestamp more than `CLOCK_SKEW_MS` away from the server's
clock is refused, and inside that window each encryption/signature is accepted once.

Last, the call's `orgId` must be the service account's organisation and `userId` one of its
users (62101 otherwise). With `--insecure` (loopback only) steps 1-2 are skipped, not the last.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import JSONResponse

from batchd.api.body import read_body
from batchd.api.context import Caller
from batchd.api.envelope import BodyTooLarge, Unauthorized
from batchd.clock import now_ms
from batchd.errors import IdentityError, InvalidParameter
from batchd.store import identity, tokens
from batchd.store.database import Database

CLOCK_SKEW_MS = 5 * 60 * 1000
TOKEN_CACHE_SIZE = 4096  # tokens whose secret and org this process remembers
PRUNE_EVERY_MS = 60 * 1000
TOKEN_SERVICE_PREFIX = "/apim-token-service/v2.0/token"
SIGNING_HEADERS = ("apim-accesstoken", "apim-timestamp", "apim-signature")
IDENTITY_MESSAGE = "userId does not exist, or it does not match to orgId."

# Status codes of the EnOS token service (spec §5.2).
REPLAYED, UNKNOWN_APP_KEY, BAD_ENCRYPTION, BAD_PARAMETER = 1001, 1002, 1003, 1004
TOKEN_EXPIRED, REFRESH_FAILED = 1203, 1204


class TokenServiceError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, kw_only=True)
class TokenRequest:
    app_key: str
    timestamp: str  # as the client wrote it: the encryption hashes its text
    encryption: str
    access_token: str  # only for refresh

    @classmethod
    def parse(cls, raw: bytes, *, refresh: bool) -> TokenRequest:
        try:
            body = json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise TokenServiceError(BAD_PARAMETER, f"invalid parameter: body is not JSON ({exc})") from None
        if not isinstance(body, dict):
            raise TokenServiceError(BAD_PARAMETER, "invalid parameter: body must be a JSON object")
        names = ["appKey", "encryption", "timestamp"] + (["accessToken"] if refresh else [])
        missing = [name for name in names if body.get(name) in (None, "")]
        if missing:
            raise TokenServiceError(BAD_PARAMETER, f"invalid parameter: {', '.join(missing)} missing")
        if any("\x00" in str(body[name]) for name in names):
            raise TokenServiceError(BAD_PARAMETER, "invalid parameter: NUL characters are not allowed")
        timestamp = body["timestamp"]
        if isinstance(timestamp, bool) or not str(timestamp).isdigit():
            raise TokenServiceError(BAD_PARAMETER, f"invalid parameter: timestamp {timestamp!r} is not epoch ms")
        return cls(
            app_key=str(body["appKey"]),
            timestamp=str(timestamp),
            encryption=str(body["encryption"]).lower(),
            access_token=str(body.get("accessToken") or ""),
        )


@dataclass(kw_only=True)
class Authenticator:
    """Issues tokens and checks signed calls against the store; one per app."""

    database: Database
    _last_prune_ms: int = field(default=0)
    _holders: dict[str, tokens.TokenHolder] = field(default_factory=dict)  # see _live_holder

    async def issue(self, request: TokenRequest) -> dict[str, Any]:
        async with self.database.transaction() as conn:
            await self._check_encryption(conn, request)
            token = await tokens.issue_token(conn, request.app_key, now_ms())
        return {"accessToken": token.token, "expire": tokens.TOKEN_TTL_SECONDS}

    async def refresh(self, request: TokenRequest) -> dict[str, Any]:
        async with self.database.transaction() as conn:
            await self._check_encryption(conn, request)
            holder = await tokens.find_token(conn, request.access_token)
            if holder is None or holder.token.access_key != request.app_key:
                raise TokenServiceError(REFRESH_FAILED, "refresh failed: accessToken is not a token of this appKey")
            if holder.token.expires_at <= now_ms():
                raise TokenServiceError(TOKEN_EXPIRED, "accessToken has expired; get a new one with token/get")
            await tokens.drop_token(conn, request.access_token)
            token = await tokens.issue_token(conn, request.app_key, now_ms())
        return {"accessToken": token.token, "expire": tokens.TOKEN_TTL_SECONDS}

    async def _check_encryption(self, conn: AsyncConnection, request: TokenRequest) -> None:
        now = now_ms()
        if abs(int(request.timestamp) - now) > CLOCK_SKEW_MS:
            raise TokenServiceError(
                BAD_PARAMETER, f"invalid parameter: timestamp is more than {CLOCK_SKEW_MS // 1000} s from server time"
            )
        account = await identity.find_service_account(conn, request.app_key)
        if account is None or not account.active:
            raise TokenServiceError(UNKNOWN_APP_KEY, "appKey is unknown or revoked")
        expected = _sha256(request.app_key.encode(), request.timestamp.encode(), account.secret_key.encode())
        if not hmac.compare_digest(expected, request.encryption):
            raise TokenServiceError(
                BAD_ENCRYPTION, "invalid encryption: expected sha256(appKey + timestamp + appSecret)"
            )
        if not await tokens.first_use(conn, request.encryption, now):
            raise TokenServiceError(REPLAYED, "duplicated encryption: this request was already used")

    async def verify_call(self, headers: Any, query: list[tuple[str, str]], body: bytes) -> str:
        """Check a call's token and signature, and record the signature; returns the org of its
        service account.

        Raises `Unauthorized` naming the first thing wrong. The signature is recorded, together
        with the check that the token is still live, by one statement committed on its own before
        the call runs, so a call that later fails still cannot be replayed (docs/decisions.md,
        "Platform: token service and replay protection").
        """
        signature = await self.check_call(headers, query, body)
        await self.record(signature)
        return signature.org_id

    async def check_call(self, headers: Any, query: list[tuple[str, str]], body: bytes) -> PendingSignature:
        """`verify_call` up to the record: the headers, the timestamp and the signature itself
        (the token read only the first time this process sees it). The caller must `record` it
        before the call's answer goes out, or have the call's own transaction do so
        (`PendingSignature.record_now`)."""
        missing = [name for name in SIGNING_HEADERS if not headers.get(name)]
        if missing:
            raise Unauthorized(f"missing header(s) {', '.join(missing)}")
        token, timestamp, signature = (headers[name] for name in SIGNING_HEADERS)
        now = now_ms()
        if not timestamp.isdigit() or abs(int(timestamp) - now) > CLOCK_SKEW_MS:
            raise Unauthorized(
                f"apim-timestamp {timestamp!r} is not epoch ms within {CLOCK_SKEW_MS // 1000} s of server time"
            )
        holder = self._holders.get(token)
        if holder is None:
            async with self.database.autocommit() as conn:
                holder = await self._live_holder(conn, token, now)
        params = "".join(name + value for name, value in sorted(query, key=lambda item: item[0]))
        expected = _sha256(token.encode(), params.encode(), body, timestamp.encode(), holder.secret_key.encode())
        if not hmac.compare_digest(expected, signature.lower()):
            raise Unauthorized(
                "apim-signature does not match sha256(accessToken + sorted query + body + timestamp + appSecret)"
            )
        prune_before = None
        if now - self._last_prune_ms > PRUNE_EVERY_MS:  # whichever way it is recorded, it prunes
            self._last_prune_ms = now
            prune_before = now - 2 * CLOCK_SKEW_MS
        return PendingSignature(signature=signature.lower(), token=token, now=now, org_id=holder.org_id,
                                prune_before=prune_before)

    async def record(self, signature: PendingSignature) -> None:
        """Record a checked call's signature in one statement committed on its own (see
        `verify_call`); `Unauthorized` when it was used before or its token is no longer live.

        On SQLite the statement is a write transaction of its own through `Database.run_write`
        (short: on the event loop's thread when the write lock is free, else on the worker, which
        waits for it), cheaper than a statement through the async layer; on PostgreSQL, where a
        transaction would add round trips, one autocommit statement."""
        if self.database.dialect == "sqlite":
            recorded = await self.database.run_write(signature.record_now, short=True)
        else:
            async with self.database.autocommit() as conn:
                recorded = await tokens.record_signature(conn, signature.signature, signature.token, signature.now)
                if recorded and signature.prune_before is not None:
                    await tokens.forget_signatures_before(conn, signature.prune_before)
        if not recorded:
            async with self.database.autocommit() as conn:
                await self._live_holder(conn, signature.token, signature.now)  # raises when no longer live
            raise Unauthorized("replayed request: this apim-signature was already used")
        signature.recorded = True

    async def _live_holder(self, conn: AsyncConnection, token: str, now: int) -> tokens.TokenHolder:
        """The token with its account, read now; `Unauthorized` when it is not live. Remembered
        for the token's secret and org only, which never change: whether it is still live is
        asked again on every call, by `tokens.record_signature`."""
        holder = await tokens.find_token(conn, token)
        if holder is None:
            raise Unauthorized("unknown access token")
        if holder.token.expires_at <= now:
            raise Unauthorized("access token expired; get a new one from the token service")
        if holder.account_revoked:
            raise Unauthorized("the service account of this token is revoked")
        if len(self._holders) >= TOKEN_CACHE_SIZE:
            self._holders.clear()  # only live tokens get here; a full memo is merely refilled
        self._holders[token] = holder
        return holder


@dataclass(kw_only=True)
class PendingSignature:
    """A signed call's checked signature, to be recorded before the call's answer goes out: by
    `Authenticator.record` on its own, or inside the call's own write transaction
    (`record_now`, for the one hop of Import Flow and of a signed Get Flow, which then keep it
    even when the call fails)."""

    signature: str
    token: str
    now: int
    org_id: str  # the service account's organisation
    prune_before: int | None = None  # also forget the signatures seen before this (PRUNE_EVERY_MS)
    recorded: bool = False

    def record_now(self, conn: sa.Connection) -> bool:
        """Record it on `conn`, a synchronous connection in a write transaction; False when it
        was not (used before, or its token is no longer live: `Authenticator.record` says which).
        `recorded` is for the caller to set once that transaction has committed."""
        if not tokens.record_signature_now(conn, self.signature, self.token, self.now):
            return False
        if self.prune_before is not None:
            tokens.forget_signatures_before_now(conn, self.prune_before)
        return True


@dataclass(frozen=True, kw_only=True)
class CallerClaim:
    """The `userId`/`orgId` a call names, checked against the calling service account's
    organisation before any lookup; `identify` finishes the check with the user's row. Split
    in two so an operation that reads the user together with its own data (Get Flow, Import
    Flow: `api.context.Shortcut`) checks exactly what `resolve_caller` checks."""

    user_id: str
    org_id: str

    @classmethod
    def of(cls, query: dict[str, str], key_org_id: str | None) -> CallerClaim:
        """`key_org_id` is None in insecure mode: then the pair must only exist and match."""
        user_id, org_id = query.get("userId"), query.get("orgId")
        for name, value in (("userId", user_id), ("orgId", org_id)):
            if not value:
                raise InvalidParameter(f"param: {name} cannot be empty")
        if key_org_id is not None and org_id != key_org_id:
            raise IdentityError(f"{IDENTITY_MESSAGE} (orgId is not the organisation of this service account)")
        assert user_id is not None and org_id is not None
        return cls(user_id=user_id, org_id=org_id)

    def identify(self, user: identity.User | None) -> Caller:
        """The caller, given the row of `user_id` (None when there is none)."""
        if user is None or user.org_id != self.org_id:
            raise IdentityError(IDENTITY_MESSAGE)
        return Caller(org_id=user.org_id, user_id=user.user_id, user_name=user.name, locked=user.locked)


async def resolve_caller(conn: AsyncConnection, query: dict[str, str], key_org_id: str | None) -> Caller:
    """The user named by `userId`/`orgId`, who must belong to the calling service account's org."""
    claim = CallerClaim.of(query, key_org_id)
    return claim.identify(await identity.find_user(conn, claim.user_id))


def token_router(authenticator: Authenticator, max_body_bytes: int) -> APIRouter:
    """The two token-service endpoints; answers are HTTP 200 with the service's `status` code."""
    router = APIRouter(tags=["token service"])

    async def answer(request: Request, refresh: bool) -> JSONResponse:
        try:
            parsed = TokenRequest.parse(await read_body(request, max_body_bytes), refresh=refresh)
            data = await (authenticator.refresh(parsed) if refresh else authenticator.issue(parsed))
        except TokenServiceError as exc:
            status, msg, data = exc.status, exc.message, None
        except BodyTooLarge as exc:
            status, msg, data = BAD_PARAMETER, exc.message, None
        else:
            status, msg = 0, "SUCCESS"
        request.state.code = status  # for the access log line
        return JSONResponse({"status": status, "msg": msg, "business": "apim-token-service", "data": data})

    @router.post(
        f"{TOKEN_SERVICE_PREFIX}/get",
        summary="Get an access token for a service account",
        openapi_extra=_token_docs(refresh=False),
    )
    async def get_token(request: Request) -> JSONResponse:
        return await answer(request, refresh=False)

    @router.post(
        f"{TOKEN_SERVICE_PREFIX}/refresh",
        summary="Replace a live access token with a new one",
        openapi_extra=_token_docs(refresh=True),
    )
    async def refresh_token(request: Request) -> JSONResponse:
        return await answer(request, refresh=True)

    return router


def _token_docs(*, refresh: bool) -> dict[str, Any]:
    """OpenAPI request and answer of a token-service endpoint (the handlers read raw bodies)."""
    fields = {
        "appKey": {"type": "string", "description": "Access key of the service account"},
        "timestamp": {"type": "integer", "description": "Epoch ms, within 5 minutes of server time"},
        "encryption": {"type": "string", "description": "lowercase hex sha256(appKey + timestamp + appSecret)"},
    }
    if refresh:
        fields["accessToken"] = {"type": "string", "description": "The live token to replace"}
    token = {"accessToken": {"type": "string"}, "expire": {"type": "integer", "description": "seconds"}}
    answer = {
        "type": "object",
        "properties": {
            "status": {
                "type": "integer",
                "description": "0 success; 1001 replay, 1002 unknown appKey, 1003 bad encryption, "
                "1004 bad parameter, 1203 token expired, 1204 refresh failed",
            },
            "msg": {"type": "string"},
            "business": {"type": "string", "enum": ["apim-token-service"]},
            "data": {"type": "object", "nullable": True, "properties": token},
        },
    }
    request = {"type": "object", "required": list(fields), "properties": fields}
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
        "responses": {"200": {"description": "Token service answer", "content": {"application/json": {"schema": answer}}}},
    }


def _sha256(*parts: bytes) -> str:
    return hashlib.sha256(b"".join(parts)).hexdigest()
