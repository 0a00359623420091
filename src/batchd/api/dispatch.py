"""The one endpoint behind every `/batch-processing-service/v2.1/{resource}` call.

Order of checks, each failing fast and cheaply: body size (413), authentication (401), the
operation for (resource, method, action) (62102), the JSON body (62102), then — inside the
request's single transaction — the caller's userId/orgId (62101) and the handler itself. That
transaction is a read transaction for operations registered with `writes=False`. An operation's
shortcut, when it has one, is tried before that transaction (`api.context`).

A signed call's signature is checked first (401) and recorded (the replay guard, 401 for a
replay) before any answer goes out, and before anything else fails: on its own ahead of the
ordinary transaction, or first inside a shortcut's own transaction (Import Flow's and a signed
Get Flow's one hop, which keep it even when the call is refused).
"""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response

from batchd.api import envelope
from batchd.api.auth import Authenticator, PendingSignature, resolve_caller
from batchd.api.body import parse_json, read_body
from batchd.api.context import OPERATIONS, RequestContext, ShortcutContext
from batchd.api.envelope import Unauthorized
from batchd.config import Settings
from batchd.errors import InvalidParameter
from batchd.store.database import Database

API_PREFIX = "/batch-processing-service/v2.1"


async def dispatch(request: Request) -> Response:
    resource: str = request.path_params["resource"]
    settings: Settings = request.app.state.settings
    authenticator: Authenticator = request.app.state.authenticator
    request_id = str(uuid.uuid4())
    items = list(request.query_params.multi_items())
    query = {name: value for name, value in items if value != ""}
    request.state.action = query.get("action")
    try:
        raw = await read_body(request, settings.max_body_bytes)
        signature = None if settings.insecure else await authenticator.check_call(request.headers, items, raw)
        try:
            response = await _serve(request, resource, items, query, raw, signature, request_id)
        except Exception as exc:
            if signature is not None and not signature.recorded and not isinstance(exc, Unauthorized):
                await authenticator.record(signature)  # a replayed call is refused (401) before anything else
            raise
        request.state.code = 0
    except Exception as exc:  # noqa: BLE001 - every failure becomes an envelope, in envelope.failure
        response, request.state.code = envelope.failure(exc, request_id), envelope.code_of(exc)
    request.state.request_id = request_id
    return response


async def _serve(request: Request, resource: str, items: list[tuple[str, str]], query: dict[str, str], raw: bytes,
                 signature: PendingSignature | None, request_id: str) -> Response:
    """The call after its signature was checked; `signature` (not recorded yet) is recorded
    before any answer goes out: in a shortcut's own transaction (when it does so), else on its
    own before the answer or before the ordinary transaction."""
    settings: Settings = request.app.state.settings
    database: Database = request.app.state.database
    authenticator: Authenticator = request.app.state.authenticator
    op = OPERATIONS.find(resource, request.method, query.get("action"))
    for name, value in items:
        if "\x00" in name or "\x00" in value:  # PostgreSQL text cannot store one
            raise InvalidParameter(f"param: {name!r} has NUL characters, which are not allowed")
    body = parse_json(raw)
    key_org_id = None if signature is None else signature.org_id
    if op.shortcut is not None:
        shortcut = op.shortcut(ShortcutContext(
            database=database, query=query, body=body, settings=settings, key_org_id=key_org_id, signature=signature,
        ))
        answer = await shortcut
        if answer is not None:
            if signature is not None and not signature.recorded:
                await authenticator.record(signature)
            return envelope.success(answer, request_id)
    if signature is not None and not signature.recorded:
        await authenticator.record(signature)
    async with (database.transaction() if op.writes else database.read_transaction()) as conn:
        caller = await resolve_caller(conn, query, key_org_id) if op.needs_caller else None
        context = RequestContext(
            caller=caller, conn=conn, query=query, body=body, settings=settings, request_id=request_id
        )
        # Serialised inside the transaction: data that cannot be sent rolls the call back.
        return envelope.success(await op.handler(context), request_id)
