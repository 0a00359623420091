"""`Database.run_write`: a synchronous unit of work in one transaction on the worker thread —
committed when it returns, rolled back when it raises, and usable again after `dispose()`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from servicekit import Backend

from batchd.config import Settings
from batchd.store.database import open_database
from batchd.store.tables import orgs


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
