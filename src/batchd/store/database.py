"""The database batchd runs on: an `AsyncEngine` plus migrations, for SQLite and PostgreSQL.

SQLite (the embedded default) gets, on every new connection, WAL journaling (readers never block
the writer), a busy timeout (a second writer waits instead of failing with "database is locked"),
and enforced foreign keys. Its transactions start with `BEGIN IMMEDIATE`: a request that reads
and then writes would otherwise hold a read snapshot it cannot upgrade when another writer got in
first, and SQLite answers that with an immediate SQLITE_BUSY that no timeout helps. Taking the
write lock up front makes writers queue on the busy timeout instead.

Read-only work may use `read_transaction()` instead: on SQLite a deferred `BEGIN`, whose first
read fixes a WAL snapshot, so it neither takes nor waits for the write lock and still sees one
consistent state. `autocommit()` gives a connection on which each statement commits by itself
(for a single insert that must be durable before anything else happens, without a transaction
of its own around it).

PostgreSQL is reached through psycopg 3's async driver (`postgresql+psycopg://`).

`run_write(work)` runs a synchronous `work(connection)` in one write transaction on the
database's worker thread, over a synchronous engine on the same database (pysqlite with the
same connection set-up, or psycopg's sync side). It is for hot paths of many small statements:
through the async layer every statement makes its own trip to the driver's thread (~0.2 ms on
this project's VM, against ~0.02 ms for SQLite to run it), here the whole transaction makes one.
Where no second engine can reach the same data (an in-memory SQLite), `work` runs through
`run_sync` on an async transaction instead, with the same result. `run_read(work)` is the same
for a read transaction, for reads a client repeats often (List Flow Instances).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from batchd.config import Settings
from batchd.store.sqlite_driver import one_hop_connector

SQLITE_BUSY_TIMEOUT_MS = 10_000
#: WAL pages after which a committing SQLite connection checkpoints by itself. SQLite's default
#: is 1,000; batchd's server checkpoints on a thread of its own (`WalCheckpointer`), so this is
#: only the backstop, for processes without one and a checkpointer that cannot keep up.
SQLITE_AUTOCHECKPOINT_PAGES = 10_000
#: How often the server's `WalCheckpointer` copies committed WAL pages into the database file.
CHECKPOINT_EVERY_S = 1.0
POSTGRES_THREADS = 4  # `run_write` threads on PostgreSQL (fewer than the sync pool's 5 connections)
#: Execution option telling the SQLite `begin` hook how to start: "read" (deferred BEGIN) or
#: "autocommit" (no BEGIN at all); absent means BEGIN IMMEDIATE.
_SQLITE_BEGIN = "batchd_sqlite_begin"
MIGRATION_LOCK_KEY = 0x62A7C4D  # any constant; names batchd's migration lock on PostgreSQL
T = TypeVar("T")
log = logging.getLogger("batchd.store")
#: Callbacks of the innermost `Database.transaction()` open in this task, run once it commits.
_AFTER_COMMIT: ContextVar[list[Callable[[], None]] | None] = ContextVar("batchd_after_commit", default=None)


def after_commit(callback: Callable[[], None]) -> bool:
    """Run `callback` right after the `Database.transaction()` open in the calling task commits
    (never when it rolls back); False, and nothing registered, when no such transaction is open.

    For work that must see the transaction's writes from another connection, such as waking the
    engine after a trigger: without it the caller could only guess how long the commit takes."""
    hooks = _AFTER_COMMIT.get()
    if hooks is None:
        return False
    hooks.append(callback)
    return True


@dataclass(frozen=True)
class Database:
    """One engine for the process; `transaction()` is how every unit of work touches it."""

    engine: AsyncEngine
    _engines: dict[str, AsyncEngine] = field(default_factory=dict, compare=False, repr=False)
    _worker: _Worker | None = field(default=None, compare=False, repr=False)
    _checkpointer: WalCheckpointer | None = field(default=None, compare=False, repr=False)

    def start_checkpoints(self) -> None:
        """Checkpoint an SQLite file's WAL on a thread of its own from now on (`WalCheckpointer`),
        until `dispose()`; a no-op on PostgreSQL and in-memory SQLite. For the server: a one-shot
        tool's connections checkpoint by themselves, as SQLite's do by default."""
        if self._checkpointer is not None:
            self._checkpointer.start()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside one transaction: committed on normal exit, rolled back on raise;
        callbacks given to `after_commit` inside it run after the commit."""
        hooks: list[Callable[[], None]] = []
        token = _AFTER_COMMIT.set(hooks)
        try:
            async with self.engine.begin() as conn:
                yield conn
        finally:
            _AFTER_COMMIT.reset(token)
        for hook in hooks:
            hook()

    @asynccontextmanager
    async def read_transaction(self) -> AsyncIterator[AsyncConnection]:
        """Like `transaction()`, for work that only reads: on SQLite it takes no write lock, so
        it runs beside a writer instead of queueing behind it (module docstring). Writing in it
        is a mistake: on SQLite the write would have to upgrade the lock and may fail busy."""
        async with self._engine_for("read").begin() as conn:
            yield conn

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection on which every statement is committed as it runs, with no transaction
        around them (SQLite: its implicit one per statement; PostgreSQL: AUTOCOMMIT)."""
        async with self._engine_for("autocommit").connect() as conn:
            yield conn

    def _engine_for(self, mode: str) -> AsyncEngine:
        """The engine with the execution options of `mode`, sharing its pool and event hooks
        (made once here rather than set on every connection: each option change costs a call)."""
        engine = self._engines.get(mode)
        if engine is None:
            if self.dialect == "sqlite":
                engine = self.engine.execution_options(**{_SQLITE_BEGIN: mode})
            elif mode == "autocommit":
                engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            else:
                engine = self.engine
            self._engines[mode] = engine
        return engine

    async def run_write(self, work: Callable[[sa.Connection], T], *, short: bool = False) -> T:
        """`work(connection)` in one write transaction (committed when it returns, rolled back
        when it raises), run on the worker thread in one hop (module docstring).

        `short`: a transaction of a few indexed statements (the engine's outcome and claim). On
        SQLite it runs right here on the event loop's thread when the write lock is free, which
        saves both thread hops (~0.1-0.2 ms each, more than the transaction); when another
        connection holds the lock it goes to the worker thread as usual, so the loop never
        waits for a lock. On PostgreSQL every statement is a network round trip: always the
        worker."""
        if self._worker is None:
            async with self.transaction() as conn:
                return await conn.run_sync(work)
        return await self._worker.run(work, short=short)

    async def run_read(self, work: Callable[[sa.Connection], T]) -> T:
        """`work(connection)` in one read transaction (`read_transaction`: on SQLite a deferred
        BEGIN, so it neither takes nor waits for the write lock), in one trip to the worker
        thread: for a read of several statements that a client calls often (List Flow Instances
        polled by a dashboard), each of which would otherwise make its own trip."""
        if self._worker is None:
            async with self.read_transaction() as conn:
                return await conn.run_sync(work)
        return await self._worker.read(work)

    async def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic `upgrade head`); a no-op when current."""
        async with self.engine.begin() as conn:
            await conn.run_sync(_upgrade_to_head)

    async def schema_revision(self) -> tuple[str | None, str]:
        """(revision the database is at, newest revision batchd ships); readiness compares them."""
        async with self.engine.connect() as conn:
            current = await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
        return current, ScriptDirectory.from_config(_alembic_config()).get_current_head() or ""

    async def dispose(self) -> None:
        """Close every pooled connection (and the worker's threads) and stop the checkpoints.
        The database stays usable: its next use opens new ones (a bulk load closes them to leave
        SQLite's WAL unpinned)."""
        if self._checkpointer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._checkpointer.stop)
        if self._worker is not None:
            await self._worker.close()
        await self.engine.dispose()


class _Worker:
    """Threads with a synchronous engine of their own. SQLite gets one (it has one writer
    anyway, and transactions queue on the thread instead of in the busy handler); PostgreSQL a
    few, so that writers of different workflows proceed side by side."""

    def __init__(self, engine: sa.Engine, threads: int = 1, *, inline: bool = False) -> None:
        self._engine = engine
        self._count = threads
        self._threads: ThreadPoolExecutor | None = None
        self._inline = inline  # SQLite: short transactions may run on the loop's thread
        self._inline_conn: sa.Connection | None = None
        self._reader: sa.Engine | None = None  # `_engine` starting read transactions (SQLite)

    async def run(self, work: Callable[[sa.Connection], T], *, short: bool = False) -> T:
        if short and self._inline:
            done, value = self._try_inline(work)
            if done:
                return value  # type: ignore[return-value]
        return await asyncio.get_running_loop().run_in_executor(self._pool(), self._transaction, work)

    def _pool(self) -> ThreadPoolExecutor:
        if self._threads is None:  # first use, or first use after close(): like the pool, reopens
            self._threads = ThreadPoolExecutor(max_workers=self._count, thread_name_prefix="batchd-db")
        return self._threads

    def _transaction(self, work: Callable[[sa.Connection], T]) -> T:
        with self._engine.begin() as conn:
            return work(conn)

    async def read(self, work: Callable[[sa.Connection], T]) -> T:
        """`work` in a read transaction on a worker thread (`Database.run_read`)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool(), self._read_transaction, work)

    def _read_transaction(self, work: Callable[[sa.Connection], T]) -> T:
        if self._reader is None:
            self._reader = self._engine.execution_options(**{_SQLITE_BEGIN: "read"})
        with self._reader.begin() as conn:
            return work(conn)

    def _try_inline(self, work: Callable[[sa.Connection], T]) -> tuple[bool, T | None]:
        """(True, result) after running `work` in a transaction on this thread, or (False,
        None) at once when the write lock is taken: this connection never waits for it.

        The transaction is begun and ended on the driver's connection itself: SQLAlchemy's
        `begin()` and commit cost ~20 µs more of the ~300 µs an outcome-and-claim takes, for
        nothing the hot path's statements need (they run on the DB-API cursor, `store.statements`).
        A statement of `work` that does go through SQLAlchemy (a flow's end, a cross-workflow
        reference) opens SQLAlchemy's own transaction on top; the `begin` hook then issues no
        second BEGIN (`_configure_sqlite`), and that transaction is ended through SQLAlchemy."""
        conn = self._inline_conn
        if conn is None or conn.closed:
            conn = self._inline_conn = self._engine.connect()
            conn.connection.dbapi_connection.execute("PRAGMA busy_timeout=0")  # type: ignore[union-attr]
        raw = conn.connection.dbapi_connection
        assert isinstance(raw, sqlite3.Connection)
        try:
            raw.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return False, None  # SQLITE_BUSY: another writer; the worker thread queues for it
        try:
            result = work(conn)
            if conn.in_transaction():
                conn.commit()
            else:
                raw.commit()
        except BaseException:
            # Never leave the write lock held: every other writer would wait for it.
            if conn.in_transaction():
                conn.rollback()
            if raw.in_transaction:
                raw.rollback()
            raise
        return True, result

    async def close(self) -> None:
        """Close the connections and end the threads (after the transactions queued on them)."""
        inline, self._inline_conn = self._inline_conn, None
        if inline is not None:
            inline.close()
        threads, self._threads = self._threads, None
        if threads is not None:
            await asyncio.get_running_loop().run_in_executor(threads, self._engine.dispose)
            threads.shutdown(wait=False)
        else:
            self._engine.dispose()


class WalCheckpointer:
    """Copies the committed pages of an SQLite file's WAL into the database file, every
    `CHECKPOINT_EVERY_S`, on a thread and connection of its own.

    Left to SQLite, the connection whose commit takes the WAL past 1,000 pages does the
    checkpoint inside that commit: it copies the pages and syncs the database file, 10-30 ms
    here, and in the server that connection is often the engine's, committing on the event
    loop (`_Worker._try_inline`). Once per ~1,000-task run the loop stopped that long, before
    the first task of the run could start (docs/performance.md, "Engine"). Here the copying and
    syncing happen on this thread, which holds no GIL while SQLite works; a PASSIVE checkpoint
    takes no lock that writers or readers wait for. The connections' own threshold is raised
    to `SQLITE_AUTOCHECKPOINT_PAGES` (`_configure_sqlite`) so that they still checkpoint if this
    thread falls far behind.
    """

    def __init__(self, path: str, every_s: float = CHECKPOINT_EVERY_S) -> None:
        self._path = path
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="batchd-wal-checkpoint", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop after the checkpoint under way, if any (a final one runs as the last connection
        closes: SQLite's own)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()

    def _run(self) -> None:
        connection = None
        try:
            while not self._stop.wait(self._every_s):
                try:
                    if connection is None:
                        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
                        connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:  # the next turn tries again; writers checkpoint meanwhile
                    log.warning("WAL checkpoint failed", exc_info=True)
        finally:
            if connection is not None:
                connection.close()


def open_database(settings: Settings) -> Database:
    """Create the engine for `settings.database_url` (the SQLite file's folder is created too)."""
    url = sa.make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            settings.home.mkdir(parents=True, exist_ok=True)
        worker = None
        if url.database and url.database != ":memory:" and not url.query:
            engine = create_async_engine(url, async_creator=one_hop_connector(url.database))
            twin = sa.create_engine(url.set(drivername="sqlite"), connect_args={"check_same_thread": False})
            _configure_sqlite(twin)
            worker = _Worker(twin, inline=True)
        else:
            engine = create_async_engine(url)
        _configure_sqlite(engine.sync_engine)
        checkpointer = WalCheckpointer(url.database) if worker is not None else None
        return Database(engine=engine, _worker=worker, _checkpointer=checkpointer)
    engine = create_async_engine(url, pool_pre_ping=True)
    return Database(engine=engine, _worker=_Worker(sa.create_engine(url, pool_pre_ping=True), threads=POSTGRES_THREADS))


async def run_once(settings: Settings, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Open the database, migrate it, run `work(conn)` in one transaction, close it again.

    For one-shot tools (the admin CLI, test set-up) that must also work on a fresh home.
    """
    database = open_database(settings)
    try:
        await database.migrate()
        async with database.transaction() as conn:
            return await work(conn)
    finally:
        await database.dispose()


def _switch_to_wal(cursor: Any) -> None:
    """`PRAGMA journal_mode=WAL`, retried while the database is locked.

    Switching a fresh database needs its exclusive lock. When two connections open it at the same
    moment (a server and `batchd admin`, two servers) each holds a shared lock and wants the
    exclusive one, and SQLite answers "database is locked" at once instead of waiting in the busy
    handler, since waiting could deadlock. One of them gets it on a retry; the other then finds
    WAL already set."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:  # the driver's OperationalError, adapted or not
            if "database is locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.005)


def _configure_sqlite(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (see "begin" below) instead of the driver's
        # implicit BEGIN that only starts before data changes.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL: a crash loses no committed data
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")  # `WalCheckpointer`
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get(_SQLITE_BEGIN)
        if mode == "autocommit":
            return  # the driver runs each statement in SQLite's own implicit transaction
        begin = "BEGIN" if mode == "read" else "BEGIN IMMEDIATE"
        dbapi_connection = conn.connection.dbapi_connection
        if isinstance(dbapi_connection, sqlite3.Connection):
            if dbapi_connection.in_transaction:
                return  # begun on the driver's connection already (`_Worker._try_inline`)
            # Straight to pysqlite: through `exec_driver_sql` the BEGIN of every engine
            # transaction cost ~45 µs of the ~400 µs an outcome-and-claim takes, nearly all of
            # it SQLAlchemy's execution machinery around a statement with nothing to process.
            try:
                dbapi_connection.execute(begin)
            except sqlite3.Error as exc:  # as SQLAlchemy would raise it (busy: OperationalError)
                raise sa.exc.DBAPIError.instance(begin, None, exc, sqlite3.Error) from exc
        else:  # the async side's adapted connection (`sqlite_driver`) sends it its own way
            conn.exec_driver_sql(begin)


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("batchd.store") / "migrations"))
    return config


def _upgrade_to_head(sync_connection: sa.Connection) -> None:
    if sync_connection.dialect.name == "postgresql":
        # A server and an admin command starting together must not both create the tables; the
        # lock is released with the migration's transaction. (SQLite: BEGIN IMMEDIATE already.)
        sync_connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    config = _alembic_config()
    config.attributes["connection"] = sync_connection
    command.upgrade(config, "head")
