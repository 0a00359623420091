"""`Database`'s three ways in: write transactions, read transactions, autocommit; and the SQLite
driver under them (`store.sqlite_driver`), which must answer exactly like stock aiosqlite."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from servicekit import Backend
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from test_store_database import run

from batchd.config import Settings
from batchd.store import tokens
from batchd.store.database import Database, after_commit, open_database
from batchd.store.tables import orgs, used_signatures


async def org_count(conn: AsyncConnection) -> int:
    return (await conn.execute(sa.select(sa.func.count()).select_from(orgs))).scalar_one()


def test_autocommit_keeps_each_statement_even_when_a_later_one_fails(backend: Backend, tmp_path: Path) -> None:
    async def work(database: Database) -> tuple[bool, bool, list[str]]:
        async with database.autocommit() as conn:
            first = await tokens.first_use(conn, "sig-1", 1)
            try:
                await conn.execute(sa.insert(orgs).values(org_id=None, name="x", created_at=0))  # NOT NULL
            except sa.exc.IntegrityError:
                pass
        async with database.autocommit() as conn:
            again = await tokens.first_use(conn, "sig-1", 2)
        async with database.transaction() as conn:
            kept = list((await conn.execute(sa.select(used_signatures.c.signature))).scalars())
        return first, again, kept

    assert run(backend, tmp_path, work) == (True, False, ["sig-1"])


def test_a_write_transaction_still_rolls_back_as_a_whole(backend: Backend, tmp_path: Path) -> None:
    async def work(database: Database) -> int:
        try:
            async with database.transaction() as conn:
                await conn.execute(sa.insert(orgs).values(org_id="o-gone", name="x", created_at=0))
                raise RuntimeError("fail after the write")
        except RuntimeError:
            pass
        async with database.read_transaction() as conn:
            return await org_count(conn)

    assert run(backend, tmp_path, work) == 0


def test_a_sqlite_read_transaction_sees_one_snapshot_and_takes_no_write_lock(tmp_path: Path) -> None:
    backend = Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'batchd.db'}")

    async def work(database: Database) -> tuple[int, int, int]:
        other = sqlite3.connect(tmp_path / "batchd.db", isolation_level=None, timeout=0)
        try:
            async with database.read_transaction() as conn:
                before = await org_count(conn)
                # Another writer gets the lock at once (timeout=0) and commits mid-read...
                other.execute("BEGIN IMMEDIATE")
                other.execute("INSERT INTO orgs (org_id, name, created_at) VALUES ('o-new', 'n', 0)")
                other.execute("COMMIT")
                during = await org_count(conn)  # ...which this transaction does not see
            async with database.read_transaction() as conn:
                after = await org_count(conn)
        finally:
            other.close()
        return before, during, after

    assert run(backend, tmp_path, work) == (0, 0, 1)


def test_the_sqlite_driver_answers_like_stock_aiosqlite(tmp_path: Path) -> None:
    """Rows, rowcount, lastrowid, executemany and errors through SQLAlchemy, statement for statement."""

    async def script(conn: AsyncConnection) -> list[Any]:
        seen: list[Any] = []
        await conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INTEGER)")
        inserted = await conn.execute(sa.text("INSERT INTO t (name, n) VALUES ('a', 1)"))
        seen.append((inserted.rowcount, inserted.lastrowid))
        many = await conn.execute(sa.text("INSERT INTO t (name, n) VALUES (:name, :n)"),
                                  [{"name": f"b{i}", "n": i} for i in range(5)])
        seen.append(many.rowcount)
        updated = await conn.execute(sa.text("UPDATE t SET n = n + 10 WHERE n < 3"))
        seen.append(updated.rowcount)
        seen.append([tuple(r) for r in await conn.execute(sa.text("SELECT id, name, n FROM t ORDER BY id"))])
        seen.append((await conn.execute(sa.text("SELECT n FROM t WHERE name = 'zz'"))).first())
        returned = await conn.execute(sa.text("INSERT INTO t (name, n) VALUES ('c', 7) RETURNING id, n"))
        seen.append([tuple(r) for r in returned])
        try:
            await conn.execute(sa.text("INSERT INTO t (name, n) VALUES ('a', 0)"))
        except sa.exc.IntegrityError as exc:
            seen.append(type(exc.orig).__name__)
        seen.append([tuple(r) for r in await conn.execute(sa.text("SELECT count(*), sum(n) FROM t"))])
        return seen

    async def both() -> tuple[list[Any], list[Any]]:
        answers = []
        for name, engine in (
            ("stock", create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'stock.db'}")),
            ("ours", open_database(Settings.load(home=tmp_path / "home", environ={})).engine),
        ):
            try:
                async with engine.begin() as conn:
                    answers.append(await script(conn))
            finally:
                await engine.dispose()
        return answers[0], answers[1]

    stock, ours = asyncio.run(both())

    assert ours == stock
    assert stock[-2] == sqlite3.IntegrityError.__name__


def test_a_sqlite_writer_waits_for_another_connections_lock_then_writes(tmp_path: Path) -> None:
    backend = Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'batchd.db'}")

    async def work(database: Database) -> tuple[int, list[str]]:
        other = sqlite3.connect(tmp_path / "batchd.db", isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO orgs (org_id, name, created_at) VALUES ('o-first', 'f', 0)")
        release = threading.Timer(0.05, lambda: other.execute("COMMIT"))
        release.start()
        try:
            async with database.transaction() as conn:  # waits for the lock, then writes
                await conn.execute(sa.insert(orgs).values(org_id="o-second", name="s", created_at=0))
            async with database.autocommit() as conn:
                await tokens.first_use(conn, "sig", 1)
        finally:
            release.join()
            other.close()
        async with database.read_transaction() as conn:
            names = list((await conn.execute(sa.select(orgs.c.org_id).order_by(orgs.c.org_id))).scalars())
            return await org_count(conn), names

    assert run(backend, tmp_path, work) == (2, ["o-first", "o-second"])


def test_after_commit_callbacks_run_once_the_writes_are_visible_and_never_after_a_rollback(
        backend: Backend, tmp_path: Path) -> None:
    """What a trigger's engine wake relies on: at the callback, another connection sees the
    transaction's rows; a rolled-back transaction runs none; outside one, nothing is taken."""
    async def work(database: Database) -> tuple[list[int], bool]:
        seen: list[int] = []

        async def count_elsewhere() -> None:
            async with database.read_transaction() as conn:
                seen.append(await org_count(conn))

        pending: list[asyncio.Task[None]] = []
        async with database.transaction() as conn:
            await conn.execute(sa.insert(orgs).values(org_id="o-1", name="x", created_at=0))
            assert after_commit(lambda: pending.append(asyncio.ensure_future(count_elsewhere())))
            assert pending == []  # not before the commit
        await asyncio.gather(*pending)
        try:
            async with database.transaction() as conn:
                await conn.execute(sa.insert(orgs).values(org_id="o-2", name="y", created_at=0))
                after_commit(lambda: seen.append(-1))
                raise RuntimeError("fail after the write")
        except RuntimeError:
            pass
        return seen, after_commit(lambda: seen.append(-2))

    assert run(backend, tmp_path, work) == ([1], False)
