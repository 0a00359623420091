"""Liveness and readiness for process supervisors and load balancers (not part of EnOS)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up and serving HTTP")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz", summary="The database answers and its schema is at the newest migration")
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
