"""The catalogue operations on a real (SQLite, in a temp file) store, without HTTP.

The black-box HTTP tests in tests/api cover the wire; these pin the storage effects: rows in
step across tables, versions, dependencies, and nothing written by a refused call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from batchd.catalog import directories as dirs
from batchd.catalog import flows as ops
from batchd.errors import BatchdError, IllegalState, InvalidParameter, NoPrivilege
from batchd.store import identity
from batchd.store.tables import flow_dependencies, flow_versions, metadata, tasks

pytestmark = pytest.mark.anyio


@dataclasses.dataclass(frozen=True)
class Who:
    org_id: str
    user_id: str
    user_name: str


ALICE = Who("o1", "u1", "alice")
BOB = Who("o1", "u2", "bob")
EVE = Who("o2", "u3", "eve")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def conn(tmp_path: Path) -> AsyncIterator[AsyncConnection]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")

    @sa.event.listens_for(engine.sync_engine, "connect")
    def _fk(dbapi_conn: Any, _: Any) -> None:
        dbapi_conn.execute("PRAGMA foreign_keys=ON")

    async with engine.connect() as connection:
        await connection.run_sync(metadata.create_all)
        for org in ("o1", "o2"):
            await identity.create_org(connection, org, org)
        for who in (ALICE, BOB, EVE):
            await identity.add_user(connection, org_id=who.org_id, user_id=who.user_id, name=who.user_name)
        yield connection
    await engine.dispose()


async def root(conn: AsyncConnection, who: Who = ALICE) -> str:
    return (await dirs.list_directories(conn, who))[0]["key"]


def flow_json(**fields: Any) -> dict[str, Any]:
    base = {
        "type": 1, "cycle": "D", "cron": "0 0 1 * * ? *", "owners": "alice", "visitors": ";bob;",
        "tasks": [{"name": "a", "type": "COMMAND", "cmd": "echo a", "asLink": True},
                  {"name": "b", "type": "COMMAND", "cmd": "echo b"}],
        "relations": [{"sourceTaskName": "a", "targetTaskName": "b", "rerun": True}],
    }
    return {**base, **fields}


async def do_import(conn: AsyncConnection, name: str = "f", who: Who = ALICE, **fields: Any) -> int:
    body = {"flowName": name, "dirId": await root(conn, who), "flowJson": flow_json(**fields)}
    return (await ops.import_flow(conn, who, body))["flowId"]


async def count(conn: AsyncConnection, table: sa.Table) -> int:
    return (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()


async def test_import_writes_every_table_and_export_round_trips(conn: AsyncConnection) -> None:
    flow_id = await do_import(conn)
    assert flow_id == 1
    assert await count(conn, tasks) == 2 and await count(conn, flow_versions) == 1
    exported = await ops.export_flow(conn, ALICE, str(flow_id))
    assert exported == {"name": "f", **ops.export_definition(
        (await ops.flow_store.load_flow(conn, "o1", flow_id)).definition)}
    assert exported["owners"] == "alice" and exported["tasks"][1]["cmd"] == "echo b"


async def test_requested_flow_id_is_honoured_when_free(conn: AsyncConnection) -> None:
    body = {"flowName": "x", "dirId": await root(conn), "flowJson": flow_json(), "flowId": 500}
    assert (await ops.import_flow(conn, ALICE, body))["flowId"] == 500
    body["flowName"] = "y"
    assert (await ops.import_flow(conn, ALICE, body))["flowId"] == 501  # taken → allocated past it


async def test_refused_import_writes_nothing(conn: AsyncConnection) -> None:
    cyclic = flow_json(relations=[{"sourceTaskName": "a", "targetTaskName": "b"},
                                  {"sourceTaskName": "b", "targetTaskName": "a"}])
    with pytest.raises(InvalidParameter, match="tasks are in a cycle: a -> b -> a"):
        await ops.import_flow(conn, ALICE, {"flowName": "x", "dirId": await root(conn), "flowJson": cyclic})
    with pytest.raises(InvalidParameter, match="Directory does not exist"):
        await ops.import_flow(conn, ALICE, {"flowName": "x", "dirId": "nope", "flowJson": flow_json()})
    with pytest.raises(InvalidParameter, match="Directory does not exist"):
        await ops.import_flow(conn, ALICE, {"flowName": "x", "dirId": await root(conn, EVE), "flowJson": flow_json()})
    assert await count(conn, tasks) == 0 and await do_import(conn) == 1


async def test_flow_names_are_unique_in_an_organisation(conn: AsyncConnection) -> None:
    await do_import(conn)
    with pytest.raises(InvalidParameter, match='flowName: a workflow named "f" already exists'):
        await do_import(conn)
    assert await do_import(conn, who=EVE) == 2  # another organisation may use the name


async def test_links_resolve_by_name_and_block_delete(conn: AsyncConnection) -> None:
    up = await do_import(conn, "up")
    down = await do_import(
        conn, "down",
        flowLinks=[{"linkId": "0", "sourceFlowName": "up"}],
        taskLinks=[{"linkId": "1", "sourceFlowName": "up", "sourceTaskName": "a"}],
        linkRelations=[{"linkId": "0", "targetTaskName": "a"}, {"linkId": "1", "targetTaskName": "b"}],
    )
    rows = (await conn.execute(sa.select(flow_dependencies))).all()
    assert [(r.flow_id, r.upstream_flow_id) for r in rows] == [(down, up)]
    with pytest.raises(IllegalState, match="relied on by other workflows.*Referenced by: down"):
        await ops.delete_flow(conn, ALICE, up)
    with pytest.raises(IllegalState, match='task "a" is referenced by workflow "down" and cannot be removed'):
        await ops.save_flow(conn, ALICE, {"id": up, "tasks": [{"taskName": "b", "taskId": 2}]})
    await ops.save_flow(conn, ALICE, {"id": up, "name": "up2", "tasks": [{"taskName": "a2", "taskId": 1}]})
    exported = await ops.export_flow(conn, ALICE, down)  # references show today's names
    assert exported["flowLinks"] == [{"linkId": "0", "sourceFlowName": "up2"}]
    assert exported["taskLinks"] == [{"linkId": "1", "sourceFlowName": "up2", "sourceTaskName": "a2"}]
    detail = await ops.get_flow(conn, ALICE, down)
    assert '"nodeId":"f_1"' in detail["graph"] and '"flowName":"1(a2)"' in detail["graph"]
    assert await ops.delete_flow(conn, ALICE, down) == ""
    assert await ops.delete_flow(conn, ALICE, up) == ""
    assert await count(conn, tasks) == 0 and await count(conn, flow_versions) == 0


@pytest.mark.parametrize(
    ("links", "message"),
    [
        ({"flowLinks": [{"linkId": "0", "sourceFlowName": "ghost"}]},
         'flowJson.flowLinks[0].sourceFlowName: no workflow named "ghost" in this organisation'),
        ({"taskLinks": [{"linkId": "0", "sourceFlowName": "up", "sourceTaskName": "zz"}]},
         'flowJson.taskLinks[0].sourceTaskName: workflow "up" has no task "zz"'),
        ({"taskLinks": [{"linkId": "0", "sourceFlowName": "up", "sourceTaskName": "b"}]},
         'flowJson.taskLinks[0]: task "b" does not allow references (asLink is false)'),
    ],
)
async def test_unknown_upstreams(conn: AsyncConnection, links: dict[str, Any], message: str) -> None:
    await do_import(conn, "up")
    with pytest.raises(InvalidParameter) as info:
        await do_import(conn, "down", **links)
    assert info.value.message == message


async def test_other_organisation_upstream_is_unknown(conn: AsyncConnection) -> None:
    await do_import(conn, "theirs", who=EVE)
    with pytest.raises(InvalidParameter, match="no workflow named"):
        await do_import(conn, "down", flowLinks=[{"linkId": "0", "sourceFlowName": "theirs"}])


async def test_permissions(conn: AsyncConnection) -> None:
    flow_id = await do_import(conn)
    for action in (lambda who: ops.delete_flow(conn, who, flow_id),
                   lambda who: ops.set_flow_active(conn, who, {"flowId": flow_id}, active=True),
                   lambda who: ops.save_flow(conn, who, {"id": flow_id, "desc": "x"})):
        with pytest.raises(NoPrivilege, match="User has no privilege"):
            await action(BOB)
        with pytest.raises(InvalidParameter, match=f"workflow {flow_id} does not exist"):
            await action(EVE)
    detail = await ops.get_flow(conn, BOB, flow_id)
    assert (detail["hasEditPri"], detail["hasReadPri"]) == (False, True)
    assert (await ops.get_flow(conn, ALICE, flow_id))["hasEditPri"] is True
    assert await ops.my_flows(conn, BOB, None) == [
        {"flowId": "1", "editable": False, "flowName": "f", "cycle": "D"}]
    assert await ops.my_flows(conn, EVE, None) == [] and await ops.search_flows(conn, EVE, {}) == []


async def test_save_versions_and_restore(conn: AsyncConnection) -> None:
    flow_id = await do_import(conn)
    await ops.save_flow(conn, ALICE, {"id": str(flow_id), "tasks": [{"taskName": "a", "taskId": "1"}]})
    v2 = await ops.export_flow(conn, ALICE, flow_id)
    assert [t["name"] for t in v2["tasks"]] == ["a"] and await count(conn, tasks) == 1
    v1 = await ops.export_flow(conn, ALICE, flow_id, version="1")
    assert [t["name"] for t in v1["tasks"]] == ["a", "b"]
    assert (await ops.get_flow(conn, ALICE, flow_id))["version"] == 2
    await ops.save_flow(conn, ALICE, {"id": flow_id, "restoreVersion": 1})
    v3 = await ops.export_flow(conn, ALICE, flow_id)
    assert v3 == v1 and await count(conn, tasks) == 2
    assert (await ops.get_flow(conn, ALICE, flow_id, version="3"))["version"] == 3
    with pytest.raises(InvalidParameter, match="version: workflow 1 has no version 9"):
        await ops.export_flow(conn, ALICE, flow_id, version=9)


async def test_save_swaps_task_names_and_adds_tasks(conn: AsyncConnection) -> None:
    flow_id = await do_import(conn)
    await ops.save_flow(conn, ALICE, {"id": flow_id, "tasks": [
        {"taskName": "b", "taskId": 1}, {"taskName": "a", "taskId": 2}, {"taskName": "c"}]})
    exported = await ops.export_flow(conn, ALICE, flow_id)
    assert [(t["name"], t["cmd"]) for t in exported["tasks"]] == [("b", "echo a"), ("a", "echo b"), ("c", "")]
    rows = (await conn.execute(sa.select(tasks.c.task_id, tasks.c.name).order_by(tasks.c.task_id))).all()
    assert [tuple(r) for r in rows] == [(1, "b"), (2, "a"), (3, "c")]


async def test_save_refuses_reference_cycles(conn: AsyncConnection) -> None:
    up = await do_import(conn, "up")
    down = await do_import(conn, "down", flowLinks=[{"linkId": "0", "sourceFlowName": "up"}])
    loop = f"flows: workflow references would form a cycle: {up} -> {down} -> {up}"
    with pytest.raises(InvalidParameter, match=loop):
        await ops.save_flow(conn, ALICE, {"id": up, "flows": [{"flowId": down}]})
    with pytest.raises(InvalidParameter, match="a workflow cannot reference itself"):
        await ops.save_flow(conn, ALICE, {"id": up, "flows": [{"flowId": up}]})


async def test_enable_disable(conn: AsyncConnection) -> None:
    flow_id = await do_import(conn)
    assert await ops.set_flow_active(conn, ALICE, {"flowId": str(flow_id)}, active=True) == ""
    assert (await ops.get_flow(conn, ALICE, flow_id))["active"] == 1
    await ops.set_flow_active(conn, ALICE, {"flowId": flow_id}, active=False)
    assert (await ops.get_flow(conn, ALICE, flow_id))["active"] == 0
    with pytest.raises(InvalidParameter, match="flowId: is required"):
        await ops.set_flow_active(conn, ALICE, {}, active=True)


async def test_search(conn: AsyncConnection) -> None:
    for name in ("alpha", "beta", "alphabet", "x_y"):
        await do_import(conn, name)
    assert [f["flowName"] for f in await ops.search_flows(conn, BOB, {"expression": "ALPHA"})] == ["alpha", "alphabet"]
    assert [f["flowName"] for f in await ops.search_flows(conn, BOB, {"expression": "_"})] == ["x_y"]
    assert await ops.search_flows(conn, BOB, {"expression": "2"}) == [{"flowId": "2", "flowName": "beta"}]
    page = {"pageNo": 0, "pageSize": 2, "sorters": [{"field": "create_time", "order": "desc"}]}
    assert [f["flowId"] for f in await ops.search_flows(conn, BOB, {"pagination": page})] == ["4", "3"]
    page = {"pageNo": "2", "pageSize": "3", "sorters": [{"field": "updateTime"}]}
    assert [f["flowId"] for f in await ops.search_flows(conn, BOB, {"pagination": page})] == ["4"]
    for pagination, message in [
        ({"pageNo": 1, "pageSize": 0}, "pagination.pageSize: 0 is below 1"),
        ({"pageNo": 1, "pageSize": 5, "sorters": [{"field": "name"}]},
         'pagination.sorters[0].field: The sorters field parameter is invalid: "name"'),
        ({"pageNo": 1, "pageSize": 5, "sorters": [{"field": "startTime", "order": "UP"}]},
         'pagination.sorters[0].order: "UP" is not ASC or DESC'),
    ]:
        with pytest.raises(InvalidParameter) as info:
            await ops.search_flows(conn, BOB, {"pagination": pagination})
        assert info.value.message.startswith(message)


async def test_directories(conn: AsyncConnection) -> None:
    top = await root(conn)
    sub = (await dirs.create_directory(conn, ALICE, {"parentId": top, "dirName": "etl"}))["dirId"]
    assert len(sub) == 32
    await ops.import_flow(conn, ALICE, {"flowName": "w", "dirId": sub, "flowJson": flow_json()})
    tree = await dirs.list_directories(conn, BOB)
    assert tree == [{"children": [{"children": [{"editable": False, "title": "w", "type": 1, "key": 1,
                                                  "isDirectory": False}],
                                   "title": "etl", "type": 1, "key": sub, "isDirectory": True}],
                     "title": "Workflow", "type": 1, "key": top, "isDirectory": True}]
    assert (await dirs.list_directories(conn, EVE))[0]["children"] == []
    for body, message in [
        ({"parentId": top}, "param: dirName cannot be empty"),
        ({"parentId": top, "dirName": " "}, "param: dirName cannot be empty"),
        ({"dirName": "x"}, "param: parentId cannot be empty"),
        ({"dirName": "x", "parentId": "f" * 32}, "parentId not found"),
        ({"dirName": "x", "parentId": await root(conn, EVE)}, "parentId not found"),
        ({"dirName": "etl", "parentId": top}, "A directory of the same name already exists"),
    ]:
        with pytest.raises(BatchdError) as info:
            await dirs.create_directory(conn, ALICE, body)
        assert (info.value.code, info.value.message) == (62102, message)


async def test_find_flow_for_the_engine(conn: AsyncConnection) -> None:
    flow_id = await do_import(conn, who=EVE)
    found = await ops.flow_store.find_flow(conn, flow_id)
    assert found is not None and found.org_id == "o2" and [t.task_id for t in found.definition.tasks] == [1, 2]
    assert await ops.flow_store.find_flow(conn, 999) is None


async def test_enable_checks_the_cron_again(conn: AsyncConnection) -> None:
    """A cron that a stricter parser no longer accepts stays readable but cannot be enabled."""
    flow_id = await do_import(conn)
    document = (await conn.execute(sa.select(ops.flows.c.definition))).scalar_one()
    await conn.execute(sa.update(ops.flows).values(definition=document.replace("0 0 1 * * ? *", "0 0 25 * * ? *")))
    assert (await ops.get_flow(conn, ALICE, flow_id))["freq"] == "0 0 25 * * ? *"
    with pytest.raises(InvalidParameter, match='freq: "0 0 25 \\* \\* \\? \\*": hour: 25 is out of range 0-23'):
        await ops.set_flow_active(conn, ALICE, {"flowId": flow_id}, active=True)
