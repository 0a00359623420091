"""The EnOS response envelope, and the one place where exceptions become responses.

Success: `{"code": 0, "msg": "OK", "data": ..., "requestId": "<uuid>"}`, HTTP 200.
Business errors (`BatchdError`): its code and message, `data: null`, HTTP 200 — the official
EnOS Python client drops the body of any non-2xx answer, so the code must travel in a 200.
Gateway-level refusals keep their HTTP status and still carry an envelope, so both a plain HTTP
client and an envelope reader learn why: 401 for authentication (`code` 401), 413 for a body over
the limit (`code` 62102). Anything unexpected is logged with its traceback and answered with
62109 "Internal server exception" in a 200 envelope, never a framework error page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.responses import JSONResponse, Response

from batchd.errors import BatchdError, InternalError

log = structlog.get_logger("batchd.api")

INTERNAL_MESSAGE = "Internal server exception"


class Unauthorized(Exception):
    """The call's credentials are missing or wrong; answered with HTTP 401 naming the reason."""

    code = 401

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.message = f"Unauthorized: {reason}"


class BodyTooLarge(BatchdError):
    """The request body is over `settings.max_body_bytes`; answered with HTTP 413 and 62102."""

    code = 62102


def envelope(code: int, msg: str, data: Any, request_id: str) -> dict[str, Any]:
    return {"code": code, "msg": msg, "data": data, "requestId": request_id}


@dataclass(frozen=True)
class JsonText:
    """A `data` value that is already JSON text (Get Flow's stored answer): placed into the
    envelope as it is, not decoded and encoded again."""

    text: str


def success(data: Any, request_id: str) -> Response:
    if isinstance(data, JsonText):
        # Byte for byte what JSONResponse makes of the same envelope (compact, UTF-8).
        body = f'{{"code":0,"msg":"OK","data":{data.text},"requestId":{json.dumps(request_id)}}}'
        return Response(body.encode(), media_type=JSONResponse.media_type)
    return JSONResponse(envelope(0, "OK", data, request_id))


def code_of(exc: BaseException) -> int:
    """The envelope code `failure(exc)` answers with."""
    return exc.code if isinstance(exc, (Unauthorized, BatchdError)) else InternalError.code


def failure(exc: BaseException, request_id: str) -> JSONResponse:
    """The response for any exception raised while serving an API call."""
    if isinstance(exc, Unauthorized):
        return JSONResponse(envelope(exc.code, exc.message, None, request_id), status_code=401)
    if isinstance(exc, BodyTooLarge):
        return JSONResponse(envelope(exc.code, exc.message, None, request_id), status_code=413)
    if isinstance(exc, BatchdError):
        return JSONResponse(envelope(exc.code, exc.message, None, request_id))
    log.error("unexpected error", request_id=request_id, exc_info=exc)
    return JSONResponse(envelope(InternalError.code, INTERNAL_MESSAGE, None, request_id))
