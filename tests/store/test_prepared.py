"""`Prepared`: a Core statement compiled once per database and run on the DB-API cursor — the
same answers as SQLAlchemy's own execution, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from servicekit import Backend

from batchd.config import Settings
from batchd.store.database import open_database
from batchd.store.statements import Prepared
from batchd.store.tables import orgs

INSERT = Prepared(orgs.insert(), column_keys=("org_id", "name", "created_at"))
RENAME = Prepared(sa.update(orgs).where(orgs.c.org_id == sa.bindparam("_id")).values(name=sa.bindparam("_name")))
NEWEST = Prepared(sa.select(orgs.c.org_id, orgs.c.name.label("called"))
                  .where(orgs.c.created_at >= sa.bindparam("since", 5)).order_by(orgs.c.created_at.desc()))


def work(conn: sa.Connection) -> tuple[int, int, list[tuple[str, str]], str | None]:
    for number in range(1, 4):
        INSERT.execute(conn, {"org_id": f"o{number}", "name": f"org {number}", "created_at": number * 3})
    renamed = RENAME.execute(conn, {"_id": "o2", "_name": "renamed"}).rowcount
    missing = RENAME.execute(conn, {"_id": "nobody", "_name": "x"}).rowcount
    rows = NEWEST.execute(conn, {}).rows  # `since` keeps its value from the statement: 5
    first = NEWEST.execute(conn, {"since": 100}).first()
    return renamed, missing, [(row.org_id, row.called) for row in rows], first


def test_prepared_statements_read_and_write_like_sqlalchemy(backend: Backend, tmp_path: Path) -> None:
    async def scenario() -> tuple[object, list[tuple[str, str]]]:
        settings = Settings.load(home=tmp_path / "home", database_url=backend.database_url, environ={},
                                 timezone="UTC")
        database = open_database(settings)
        await database.migrate()
        try:
            answer = await database.run_write(work)
            async with database.read_transaction() as conn:  # through SQLAlchemy, for comparison
                stored = [tuple(row) for row in await conn.execute(
                    sa.select(orgs.c.org_id, orgs.c.name).where(orgs.c.created_at >= 5)
                    .order_by(orgs.c.created_at.desc()))]
            return answer, stored
        finally:
            await database.dispose()

    (renamed, missing, rows, first), stored = asyncio.run(scenario())
    assert (renamed, missing, first) == (1, 0, None)
    assert rows == stored == [("o3", "org 3"), ("o2", "renamed")]


def test_an_expanding_in_list_is_refused_with_the_way_out(tmp_path: Path) -> None:
    statement = Prepared(sa.select(orgs.c.org_id).where(orgs.c.org_id.in_(["a", "b"])))
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn, pytest.raises(ValueError, match="numbered bind parameters"):
        statement.execute(conn, {})
