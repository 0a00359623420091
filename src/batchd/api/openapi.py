"""The OpenAPI description served at /docs, written for the EnOS wire format.

FastAPI cannot describe "one path, many operations chosen by `action`", so the v2.1 paths are
generated from the operation registry: per (path, method), the `action` enum, the common query
parameters, the signing headers, and the real envelope for every answer. Each action's summary
and description (from `@operation`) are listed in the method's description and in `x-actions`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

import batchd
from batchd.api.context import OPERATIONS, Operation
from batchd.api.dispatch import API_PREFIX

ENVELOPE = {
    "type": "object",
    "required": ["code", "msg", "data", "requestId"],
    "properties": {
        "code": {"type": "integer", "description": "0 on success; else an EnOS error code (62101-62109)"},
        "msg": {"type": "string", "description": '"OK" on success; else what went wrong'},
        "data": {"description": 'The result; null on error; "" for operations without a result'},
        "requestId": {"type": "string", "format": "uuid"},
    },
}

_SIGNING_HEADERS = [
    ("apim-accesstoken", "Access token from the token service"),
    ("apim-timestamp", "Epoch milliseconds; within 5 minutes of the server's clock"),
    ("apim-signature", "lowercase hex sha256(accessToken + sorted query name/value pairs + raw body + timestamp + appSecret)"),
]

_RESPONSES = {
    "200": {
        "description": "Envelope; `code` 0 on success, else 62101 (userId/orgId), 62102 (parameter: unknown action, "
        "malformed JSON ...), 62103 (privilege), 62104 (state), 62105 (locked), 62109 (internal)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}},
    },
    "401": {
        "description": "Authentication failed: envelope with `code` 401 and the reason in `msg`",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}},
    },
    "413": {
        "description": "Body over the size limit: envelope with `code` 62102 naming the limit",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}},
    },
}


def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title="batchd — EnOS Batch Processing Service API v2.1",
        version=batchd.__version__,
        description="Every v2.1 path serves several operations chosen by the `action` query parameter. "
        "Authenticate with the token service, then sign each call (headers below); see README.",
        routes=app.routes,
    )
    schema.setdefault("components", {}).setdefault("schemas", {})["Envelope"] = ENVELOPE
    paths = schema.setdefault("paths", {})
    for resource in OPERATIONS.resources():
        for method in ("GET", "POST"):
            ops = [op for op in OPERATIONS.all() if (op.resource, op.method) == (resource, method)]
            if ops:
                paths.setdefault(f"{API_PREFIX}/{resource}", {})[method.lower()] = _describe(resource, method, ops)
    app.openapi_schema = schema
    return schema


def _describe(resource: str, method: str, ops: list[Operation]) -> dict[str, Any]:
    needs_caller = any(op.needs_caller for op in ops)
    parameters: list[dict[str, Any]] = [
        {
            "name": "action",
            "in": "query",
            "required": True,
            "description": "The operation: " + "; ".join(f"`{op.action}` — {op.summary}" for op in ops),
            "schema": {"type": "string", "enum": [op.action for op in ops]},
        },
        {"name": "userId", "in": "query", "required": needs_caller, "schema": {"type": "string"},
         "description": "User the call runs for; must belong to orgId" if needs_caller else "Not used"},
        {"name": "orgId", "in": "query", "required": needs_caller, "schema": {"type": "string"},
         "description": "Organisation of the service account" if needs_caller else "Not used"},
    ]
    parameters += [
        {"name": name, "in": "header", "required": False, "description": text + " (not needed with --insecure)",
         "schema": {"type": "string"}}
        for name, text in _SIGNING_HEADERS
    ]
    described: dict[str, Any] = {
        "tags": [resource],
        "summary": f"{method} {resource}: " + ", ".join(op.action for op in ops),
        "description": "\n\n".join(f"**{op.action}** — {op.description or op.summary}" for op in ops),
        "operationId": f"{method.lower()}_{resource}",
        "parameters": parameters,
        "responses": _RESPONSES,
        "x-actions": {op.action: {"summary": op.summary, "description": op.description} for op in ops},
    }
    if method == "POST":
        described["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": {"type": "object", "description": "Depends on the action"}}},
        }
    return described
