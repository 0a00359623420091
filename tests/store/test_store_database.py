"""The database on both backends: migrations, connection settings, id counters, identity records."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from servicekit import Backend

from batchd.config import Settings
from batchd.errors import InvalidParameter
from batchd.store import identity, ids, tokens
from batchd.store.database import Database, open_database
from batchd.store.tables import directories, metadata

CATALOGUE_COLUMNS = {
    "directories": ["dir_id", "org_id", "parent_id", "name", "created_at"],
    "flows": [
        "flow_id", "org_id", "dir_id", "name", "creator", "owners", "visitors", "type", "active", "cron", "cycle",
        "start_date", "entry", "version", "definition", "create_time", "update_time", "update_user", "detail",
    ],
    "flow_versions": ["flow_id", "version", "definition", "saved_by", "saved_at"],
    "flow_dependencies": ["flow_id", "upstream_flow_id"],
    "tasks": ["task_id", "flow_id", "name"],
    "id_counters": ["name", "value"],
}


def settings_for(backend: Backend, tmp_path: Path) -> Settings:
    return Settings.load(home=tmp_path / "home", database_url=backend.database_url, environ={})


def run(backend: Backend, tmp_path: Path, work) -> object:
    """Open the backend's database, migrate it, run `await work(database)`, close it."""

    async def main() -> object:
        database = open_database(settings_for(backend, tmp_path))
        try:
            await database.migrate()
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(main())


def test_migration_creates_every_table_as_tables_py_declares(backend: Backend, tmp_path: Path) -> None:
    async def inspect(database: Database) -> dict[str, list[str]]:
        async with database.engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: {t: [c["name"] for c in sa.inspect(sync).get_columns(t)] for t in sa.inspect(sync).get_table_names()}
            )

    found = run(backend, tmp_path, inspect)

    assert set(found) == set(metadata.tables) | {"alembic_version"}
    for name, table in metadata.tables.items():
        assert found[name] == [column.name for column in table.columns], name
    for name, columns in CATALOGUE_COLUMNS.items():
        assert found[name] == columns


def test_the_migrated_schema_has_exactly_the_indexes_and_columns_tables_py_declares(backend: Backend,
                                                                                    tmp_path: Path) -> None:
    """Migrations and `tables.py` are written separately; Alembic's comparison of the two must
    find nothing (an index one side lacks would pass every functional test and cost later)."""
    async def compare(database: Database) -> list[object]:
        async with database.engine.connect() as conn:
            return await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), metadata))

    assert run(backend, tmp_path, compare) == []


def test_migrating_twice_is_a_no_op_and_the_schema_is_at_head(backend: Backend, tmp_path: Path) -> None:
    async def twice(database: Database) -> tuple[str | None, str]:
        await database.migrate()
        return await database.schema_revision()

    assert run(backend, tmp_path, twice) == ("0013", "0013")


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    backend = Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'batchd.db'}")

    async def pragmas(database: Database) -> list[object]:
        async with database.transaction() as conn:
            return [
                (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "busy_timeout", "foreign_keys")
            ]

    assert run(backend, tmp_path, pragmas) == ["wal", 10_000, 1]


def test_default_database_is_a_sqlite_file_in_home(tmp_path: Path) -> None:
    settings = Settings.load(home=tmp_path / "fresh", environ={})

    async def main() -> None:
        database = open_database(settings)
        await database.migrate()
        await database.dispose()

    asyncio.run(main())
    assert (tmp_path / "fresh" / "batchd.db").exists()


def test_foreign_keys_are_enforced(backend: Backend, tmp_path: Path) -> None:
    async def orphan(database: Database) -> None:
        async with database.transaction() as conn:
            await conn.execute(sa.insert(directories).values(dir_id="a" * 32, org_id="no-org", name="x", created_at=0))

    with pytest.raises(sa.exc.IntegrityError):
        run(backend, tmp_path, orphan)


def test_id_counters_count_up_and_skip_reserved_values(backend: Backend, tmp_path: Path) -> None:
    async def allocate(database: Database) -> list[int]:
        async with database.transaction() as conn:
            taken = [await ids.next_id(conn, "flow"), await ids.next_id(conn, "flow"), await ids.next_id(conn, "task")]
            await ids.reserve_at_least(conn, "flow", 500)
            taken.append(await ids.next_id(conn, "flow"))
            await ids.reserve_at_least(conn, "flow", 10)  # lower: no effect
            taken.append(await ids.next_id(conn, "flow"))
        return taken

    assert run(backend, tmp_path, allocate) == [1, 2, 1, 501, 502]


def test_a_rolled_back_allocation_gives_its_id_back(backend: Backend, tmp_path: Path) -> None:
    async def allocate(database: Database) -> int:
        with pytest.raises(RuntimeError):
            async with database.transaction() as conn:
                await ids.next_id(conn, "flow")
                raise RuntimeError("request failed")
        async with database.transaction() as conn:
            return await ids.next_id(conn, "flow")

    assert run(backend, tmp_path, allocate) == 1


def test_concurrent_allocations_never_repeat(backend: Backend, tmp_path: Path) -> None:
    async def allocate(database: Database) -> list[int]:
        async def one() -> int:
            async with database.transaction() as conn:
                return await ids.next_id(conn, "flow")

        return list(await asyncio.gather(*(one() for _ in range(20))))

    taken = run(backend, tmp_path, allocate)

    assert sorted(taken) == list(range(1, 21))


def test_a_new_org_gets_a_workflow_root_directory(backend: Backend, tmp_path: Path) -> None:
    async def create(database: Database) -> list[sa.Row]:
        async with database.transaction() as conn:
            await identity.create_org(conn, "o1", "Org One")
            return list(await conn.execute(sa.select(directories)))

    [root] = run(backend, tmp_path, create)

    assert (root.org_id, root.parent_id, root.name) == ("o1", None, "Workflow")
    assert len(root.dir_id) == 32 and int(root.dir_id, 16) >= 0 and root.dir_id == root.dir_id.lower()


def test_bootstrap_is_idempotent_and_reuses_the_active_key(backend: Backend, tmp_path: Path) -> None:
    async def twice(database: Database) -> list[identity.Credentials]:
        results = []
        for _ in range(2):
            async with database.transaction() as conn:
                results.append(await identity.bootstrap(conn, org_id="o1", user_id="u1", user_name="User"))
        async with database.transaction() as conn:
            await identity.revoke_service_account(conn, results[0].access_key)
        async with database.transaction() as conn:
            results.append(await identity.bootstrap(conn, org_id="o1", user_id="u1", user_name="User"))
        return results

    first, second, after_revoke = run(backend, tmp_path, twice)

    assert first == second
    assert after_revoke.access_key != first.access_key
    assert (after_revoke.org_id, after_revoke.user_id) == ("o1", "u1")


def test_bootstrap_refuses_a_user_of_another_org(backend: Backend, tmp_path: Path) -> None:
    async def clash(database: Database) -> None:
        async with database.transaction() as conn:
            await identity.bootstrap(conn, org_id="o1", user_id="u1", user_name="User")
        async with database.transaction() as conn:
            await identity.bootstrap(conn, org_id="o2", user_id="u1", user_name="User")

    with pytest.raises(InvalidParameter, match="already belongs to organisation 'o1'"):
        run(backend, tmp_path, clash)


def test_concurrent_migrations_of_a_fresh_database_both_succeed(backend: Backend, tmp_path: Path) -> None:
    # A server and `batchd admin` starting at the same time on an empty database. On SQLite both
    # race to switch the new file to WAL, which lost about one time in eight before the switch
    # was retried: several fresh databases make that race likely to show.
    async def both(home: Path) -> list[tuple[str | None, str]]:
        fresh = Backend("sqlite", f"sqlite+aiosqlite:///{home / 'batchd.db'}") if backend.name == "sqlite" else backend
        first, second = (open_database(settings_for(fresh, home)) for _ in range(2))
        try:
            await asyncio.gather(first.migrate(), second.migrate())
            return [await first.schema_revision(), await second.schema_revision()]
        finally:
            await first.dispose()
            await second.dispose()

    for round_no in range(10 if backend.name == "sqlite" else 1):
        home = tmp_path / str(round_no)
        home.mkdir()
        assert asyncio.run(both(home)) == [("0013", "0013"), ("0013", "0013")]


def test_a_signature_is_accepted_once_until_it_is_pruned(backend: Backend, tmp_path: Path) -> None:
    async def uses(database: Database) -> list[bool]:
        async with database.transaction() as conn:
            seen = [await tokens.first_use(conn, "sig-a", 1_000), await tokens.first_use(conn, "sig-a", 2_000)]
            await tokens.first_use(conn, "sig-b", 5_000)
            await tokens.forget_signatures_before(conn, 3_000)
            seen += [await tokens.first_use(conn, "sig-a", 6_000), await tokens.first_use(conn, "sig-b", 6_000)]
        return seen

    assert run(backend, tmp_path, uses) == [True, False, True, False]
