"""`Database.run_write`: a synchronous unit of work in one transaction on the worker thread —
committed when it returns, rolled back when it raises, and usable again after `dispose()`."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from servicekit import Backend

from batchd.config import Settings
from batchd.store.database import open_database
from batchd.store.statements import Prepared
from batchd.store.tables import orgs

_INSERT_ORG = Prepared(sa.insert(orgs).values(org_id=sa.bindparam("org_id"), name=sa.bindparam("name"),
                                              created_at=sa.bindparam("created_at")))


def add(name: str, fail: bool = False):  # type: ignore[no-untyped-def]
    def work(conn: sa.Connection) -> str:
        conn.execute(sa.insert(orgs).values(org_id=name, name=name, created_at=0))
        if fail:
            raise RuntimeError("half-way")
        return name

    return work


async def scenario(settings: Settings) -> tuple[str, list[str]]:
    database = open_database(settings)
    await database.migrate()
    try:
        returned = await database.run_write(add("o-kept"))
        with pytest.raises(RuntimeError):
            await database.run_write(add("o-rolled-back", fail=True))
        await database.dispose()
        await database.dispose()  # twice is harmless
        await database.run_write(add("o-after-dispose"))
        async with database.read_transaction() as conn:
            names = sorted((await conn.execute(sa.select(orgs.c.org_id))).scalars())
        return returned, names
    finally:
        await database.dispose()


def test_run_write_commits_rolls_back_and_survives_dispose(backend: Backend, tmp_path: Path) -> None:
    settings = Settings.load(home=tmp_path / "home", database_url=backend.database_url, environ={}, timezone="UTC")
    assert asyncio.run(scenario(settings)) == ("o-kept", ["o-after-dispose", "o-kept"])


async def short_scenario(settings: Settings) -> tuple[list[bool], list[str]]:
    """Short transactions with the write lock free and with another connection holding it."""
    database = open_database(settings)
    await database.migrate()
    loop_thread = threading.get_ident()
    on_loop: list[bool] = []

    def work(name: str):  # type: ignore[no-untyped-def]
        def run(conn: sa.Connection) -> None:
            on_loop.append(threading.get_ident() == loop_thread)
            conn.execute(sa.insert(orgs).values(org_id=name, name=name, created_at=0))
        return run

    def raw(name: str, *, fail: bool = False):  # type: ignore[no-untyped-def]
        """The engine's kind of statement: on the DB-API cursor, not through SQLAlchemy."""
        def run(conn: sa.Connection) -> None:
            _INSERT_ORG.execute(conn, {"org_id": name, "name": name, "created_at": 0})
            if fail:
                raise RuntimeError("half-way")
        return run

    try:
        await database.run_write(work("o-free"), short=True)
        def failing(conn: sa.Connection) -> None:
            work("o-rolled-back")(conn)
            raise RuntimeError("half-way")

        with pytest.raises(RuntimeError):
            await database.run_write(failing, short=True)
        await database.run_write(raw("o-raw"), short=True)
        with pytest.raises(RuntimeError):
            await database.run_write(raw("o-raw-rolled-back", fail=True), short=True)
        holder = await database.engine.connect()
        await holder.begin()  # BEGIN IMMEDIATE on SQLite: the write lock is taken
        await holder.execute(sa.insert(orgs).values(org_id="o-holder", name="o-holder", created_at=0))
        waiting = asyncio.ensure_future(database.run_write(work("o-queued"), short=True))
        ticks = 0
        while not waiting.done() and ticks < 20:  # the loop keeps turning while it waits
            await asyncio.sleep(0.01)
            ticks += 1
        queued_early = waiting.done()
        await holder.commit()
        await holder.close()
        await waiting
        async with database.read_transaction() as conn:
            names = sorted((await conn.execute(sa.select(orgs.c.org_id))).scalars())
        return [*on_loop, queued_early], names
    finally:
        await database.dispose()


def test_a_short_write_runs_on_the_loop_when_the_lock_is_free_and_queues_otherwise(
        backend: Backend, tmp_path: Path) -> None:
    settings = Settings.load(home=tmp_path / "home", database_url=backend.database_url, environ={}, timezone="UTC")
    placement, names = asyncio.run(short_scenario(settings))
    free, rolled_back, queued, queued_early = placement
    # SQLite: on the loop's thread while the lock is free, on the worker while another holds it.
    # PostgreSQL: always the worker (a statement is a network round trip).
    assert (free, rolled_back, queued) == ((True, True, False) if backend.name == "sqlite" else (False, False, False))
    if backend.name == "sqlite":
        assert not queued_early  # it waited for the holder's commit, and the loop kept turning
    assert names == ["o-free", "o-holder", "o-queued", "o-raw"]
