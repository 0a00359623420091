"""The server's SQLite WAL is checkpointed by a thread of its own (`WalCheckpointer`), not inside
the commits of the engine's connections, one of which commits on the event loop: what a commit
wrote reaches the database file within a few seconds, and without the checkpointer it stays in
the WAL (below the connections' raised threshold)."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from pathlib import Path

import sqlalchemy as sa

from batchd.config import Settings
from batchd.store.database import CHECKPOINT_EVERY_S, open_database
from batchd.store.tables import orgs


def in_database_file(home: Path, org_id: str, copies: Path) -> bool:
    """Whether `org_id`'s row is in the database file itself: a copy of the file without its
    WAL shows only what checkpoints copied into it."""
    copy = copies / f"copy-{time.monotonic_ns()}.db"
    shutil.copyfile(home / "batchd.db", copy)
    with sqlite3.connect(copy) as db:
        try:
            return db.execute("SELECT count(*) FROM orgs WHERE org_id = ?", (org_id,)).fetchone()[0] == 1
        except sqlite3.OperationalError:  # not even the migration's tables are in it yet
            return False


async def written_rows_reach_the_file(home: Path, copies: Path, *, checkpoints: bool) -> list[bool]:
    database = open_database(Settings.load(home=home, environ={}, timezone="UTC"))
    await database.migrate()
    if checkpoints:
        database.start_checkpoints()
    try:
        for name in ("o-inline", "o-worker"):
            def add(conn: sa.Connection, name: str = name) -> None:
                # ~1,500 pages: past SQLite's default threshold, below batchd's
                conn.execute(sa.insert(orgs).values(org_id=name, name="x" * 6_000_000, created_at=0))
            # `short`: the engine's kind of transaction, committed on this (the loop's) thread
            await database.run_write(add, short=name == "o-inline")
        deadline = time.monotonic() + 3 * CHECKPOINT_EVERY_S
        while True:
            seen = [in_database_file(home, name, copies) for name in ("o-inline", "o-worker")]
            if all(seen) or time.monotonic() > deadline:
                return seen
            await asyncio.sleep(0.2)
    finally:
        await database.dispose()


def test_the_checkpointer_copies_commits_into_the_database_file(tmp_path: Path) -> None:
    assert asyncio.run(written_rows_reach_the_file(tmp_path / "home", tmp_path, checkpoints=True)) == [True, True]


def test_without_it_the_commits_stay_in_the_wal(tmp_path: Path) -> None:
    """The engine's connections do not checkpoint by themselves at SQLite's default 1,000
    pages, inside a commit; each transaction here writes ~1,500."""
    assert asyncio.run(written_rows_reach_the_file(tmp_path / "home", tmp_path, checkpoints=False)) == [False, False]
