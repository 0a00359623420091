"""Structured JSON logs: one line per request (method, path, action, status, code, duration).

structlog renders every event as one JSON object per line on stdout, which log collectors read
without parsing rules. Tracebacks of unexpected errors ride in the same line (`exception`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import structlog
from starlette.requests import Request
from starlette.responses import Response

log = structlog.get_logger("batchd.access")


def configure_logging() -> None:
    """Route structlog to stdout as JSON lines; safe to call more than once."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(),  # sys.stdout as it is at each call
        cache_logger_on_first_use=False,
    )


async def log_request(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """HTTP middleware: time the request and log it once it is answered."""
    started = time.perf_counter()
    response = await call_next(request)
    log.info(
        "request",
        method=request.method,
        path=request.url.path,
        action=getattr(request.state, "action", None),
        status=response.status_code,
        code=getattr(request.state, "code", None),
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
        request_id=getattr(request.state, "request_id", None),
    )
    return response
