"""`create_app(settings)`: the batchd HTTP service as one FastAPI app.

The lifespan opens the database and migrates it to head before the first request, so a started
server always has its schema. Operations register by import (see `api.context`); this module
imports every routes module once.
"""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

import batchd
# Importing a routes module registers its operations (see api.context).
import batchd.api.routes.directories  # noqa: F401
import batchd.api.routes.flows  # noqa: F401
import batchd.api.routes.instances  # noqa: F401
import batchd.api.routes.runs  # noqa: F401
import batchd.api.routes.time  # noqa: F401
from batchd.api import envelope
from batchd.api.access_log import AccessLog, configure_logging
from batchd.api.auth import Authenticator, token_router
from batchd.api.dispatch import API_PREFIX, dispatch
from batchd.api.openapi import build_openapi
from batchd.api.routes import health
from batchd.config import Settings
from batchd.engine.dispatcher import Engine
from batchd.executors.local import LocalExecutor
from batchd.store.database import Database, open_database

try:  # the scheduler is optional: a server without it still runs triggered instances
    from batchd.scheduler import Scheduler
except ImportError:  # pragma: no cover - until batchd.scheduler lands
    Scheduler = None  # type: ignore[assignment,misc]


def create_app(settings: Settings, *, owns_process: bool = False) -> FastAPI:
    """The app on `settings`' database. `owns_process`: the app is all this process runs
    (`batchd serve`), so what start-up built is frozen out of the collector's full passes
    (`_freeze_startup_objects`); a test process starting many apps keeps the collector as is."""
    configure_logging()
    database = open_database(settings)
    authenticator = Authenticator(database=database)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await database.migrate()
        database.start_checkpoints()
        try:
            async with _running_engine(database, settings):
                if owns_process:
                    _freeze_startup_objects()
                yield
        finally:
            await database.dispose()

    app = FastAPI(title="batchd", version=batchd.__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.database = database
    app.state.authenticator = authenticator
    app.add_middleware(AccessLog)
    app.include_router(health.router)
    app.include_router(token_router(authenticator, settings.max_body_bytes))
    # A plain Starlette route: dispatch reads the request itself, so FastAPI's per-call
    # dependency solving would be pure overhead (its /docs entry comes from build_openapi).
    app.add_route(API_PREFIX + "/{resource}", dispatch, methods=["GET", "POST"], name="dispatch",
                  include_in_schema=False)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    return app


@asynccontextmanager
async def _running_engine(database: Database, settings: Settings) -> AsyncIterator[None]:
    """Executor, engine and (when installed) scheduler, started in that order and stopped in
    reverse: the engine kills and puts back the attempts still running before the executor goes."""
    executor = LocalExecutor(settings.parallelism)
    await executor.start()
    engine = Engine(database, settings, executor, slots=settings.parallelism)
    await engine.start()
    scheduler = Scheduler(database, settings) if Scheduler is not None else None
    scheduler_task = asyncio.create_task(scheduler.run(), name="batchd-scheduler") if scheduler else None
    try:
        yield
    finally:
        if scheduler is not None and scheduler_task is not None:
            await scheduler.stop()
            await asyncio.gather(scheduler_task, return_exceptions=True)
        await engine.stop()
        await executor.stop()


def _freeze_startup_objects() -> None:
    """Exempt what start-up built (modules, tables, the app: ~150,000 objects) from the garbage
    collector's full passes: each walked all of them, ~60 ms with the event loop stopped while
    tasks waited to start (bench/gc_pauses.py). None of it is garbage: it lives as long as the
    process. Collected once first, so only live objects are frozen."""
    gc.collect()
    gc.freeze()


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Unknown paths and methods outside the dispatcher still answer with an envelope."""
    assert isinstance(exc, StarletteHTTPException)
    body = envelope.envelope(exc.status_code, str(exc.detail), None, str(uuid.uuid4()))
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    return envelope.failure(exc, str(uuid.uuid4()))
