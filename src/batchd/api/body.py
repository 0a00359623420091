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
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidParameter(f"Malformed JSON body: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except ValueError as exc:  # an integer of more than 4,300 digits (Python's int limit)
        raise InvalidParameter(f"Malformed JSON body: {exc}") from None
    except RecursionError:
        raise InvalidParameter("Malformed JSON body: nested too deeply") from None
    if "\\u0000" in text:  # the only way JSON can carry a NUL; PostgreSQL text cannot store one
        try:
            _refuse_nul(value, "")
        except RecursionError:
            raise InvalidParameter("Malformed JSON body: nested too deeply") from None
    return value


def _refuse_nul(value: Any, path: str) -> None:
    if isinstance(value, str) and "\x00" in value:
        raise InvalidParameter(f"{path or 'body'}: NUL characters (\\u0000) are not allowed")
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(key, path)
            _refuse_nul(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _refuse_nul(item, f"{path}[{i}]")
