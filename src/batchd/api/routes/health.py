"""Liveness and readiness for process supervisors and load balancers (not part of EnOS)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

router = APIRouter(tags=["health"])


def _answer(description: str, **properties: dict[str, Any]) -> dict[str, Any]:
    schema = {"type": "object", "required": list(properties), "additionalProperties": False, "properties": properties}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_STATUS = {"type": "string"}
_HEALTHZ = {200: _answer("Up", status={"const": "ok"})}
_READYZ = {
    200: _answer("Ready", status={"const": "ready"}, schema={"type": "string", "description": "migration revision"}),
    503: _answer("Not ready: the database is unreachable or its schema is not at the newest revision",
                 status={"const": "unavailable"}, reason=_STATUS),
}


@router.get("/healthz", summary="The process is up and serving HTTP", responses=_HEALTHZ)
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz", summary="The database answers and its schema is at the newest migration", responses=_READYZ)
async def readyz(request: Request) -> JSONResponse:
    try:
        current, head = await request.app.state.database.schema_revision()
    except Exception as exc:  # noqa: BLE001 - any failure to reach the database means "not ready"
        return JSONResponse({"status": "unavailable", "reason": f"database unreachable: {exc}"}, status_code=503)
    if current != head:
        return JSONResponse(
            {"status": "unavailable", "reason": f"database schema at {current}, batchd needs {head}"}, status_code=503
        )
    return JSONResponse({"status": "ready", "schema": current})
