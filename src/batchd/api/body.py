"""Reading a request body: bounded in size, and JSON errors that say where the JSON broke."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from batchd.api.envelope import BodyTooLarge
from batchd.errors import InvalidParameter


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused as soon as it is known to exceed `limit` bytes (before reading it
    all when Content-Length says so), so an oversized upload costs no memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"request body is {int(declared)} bytes, over the limit of {limit} bytes (max_body_bytes)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"request body is over the limit of {limit} bytes (max_body_bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    """The JSON value of a body; None for an empty body. Malformed JSON is 62102 with line/column."""
    if not raw.strip():
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidParameter(f"Malformed JSON body: not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidParameter(f"Malformed JSON body: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
