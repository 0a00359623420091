"""Migration 0009 gives the flows written before it the Get Flow answer a write stores now.

Flows are imported at head, the column is taken away (downgrade to 0008, as a database of the
previous release has it) and migrated again: each flow must get back exactly the text its write
stored, and Get Flow must answer for it what the full read of its document answers.
"""

from __future__ import annotations

import asyncio
import json
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from servicekit import Backend, bootstrap_root

from batchd.api.context import Caller
from batchd.catalog import flows as catalog
from batchd.config import Settings
from batchd.store.database import open_database
from batchd.store.tables import flows


def _alembic(sync: sa.Connection, revision: str, *, down: bool) -> None:
    config = Config()
    config.set_main_option("script_location", str(resources.files("batchd.store") / "migrations"))
    config.attributes["connection"] = sync
    (command.downgrade if down else command.upgrade)(config, revision)


def _flow_json(**fields: Any) -> dict[str, Any]:
    return {"type": 1, "cycle": "D", "cron": "0 0 2 * * ? *", "owners": ";tester;",
            "tasks": [{"name": "a", "type": "SHELL", "cmd": "echo a"}, {"name": "b", "type": "SHELL"}],
            "relations": [{"sourceTaskName": "a", "targetTaskName": "b"}], **fields}


def test_rows_written_before_0009_get_the_answer_a_write_stores(backend: Backend, tmp_path: Path) -> None:
    caller = Caller(org_id="o1", user_id="u1", user_name="tester")
    member = Caller(org_id="o1", user_id="u2", user_name="member")

    async def main() -> None:
        database = open_database(Settings.load(home=tmp_path / "home", database_url=backend.database_url, environ={}))
        try:
            await database.migrate()
            async with database.transaction() as conn:
                root = await bootstrap_root(conn, caller)
                await bootstrap_root(conn, member)
                plain = [(await catalog.import_flow(conn, caller, {
                    "flowName": f"f{n}", "dirId": root, "flowJson": _flow_json(desc=f"flow {n}")}))["flowId"]
                    for n in range(3)]
                linked = (await catalog.import_flow(conn, caller, {
                    "flowName": "linked", "dirId": root, "flowJson": _flow_json(
                        flowLinks=[{"linkId": "0", "sourceFlowName": "f0"}],
                        linkRelations=[{"linkId": "0", "targetTaskName": "a"}])}))["flowId"]
                await catalog.set_flow_active(conn, caller, {"flowId": plain[1]}, active=True)
            async with database.transaction() as conn:
                written = dict((await conn.execute(sa.select(flows.c.flow_id, flows.c.detail))).all())
                answers = {f: await catalog.get_flow(conn, member, f) for f in plain}
            assert all(written[f] for f in plain) and written[linked] is None

            async with database.engine.begin() as conn:
                await conn.run_sync(_alembic, "0008", down=True)
            await database.migrate()

            async with database.transaction() as conn:
                assert dict((await conn.execute(sa.select(flows.c.flow_id, flows.c.detail))).all()) == written
                for flow_id in plain:
                    stored = await catalog.rendered_flow_detail(conn, member.user_id, lambda _user: member, flow_id)
                    assert stored is not None
                    assert json.loads(stored) == answers[flow_id]
        finally:
            await database.dispose()

    asyncio.run(main())
