"""`batchd flows` (versions, show, diff) as an operator uses it, on a SQLite home."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from typer.testing import CliRunner

from batchd.api.context import Caller
from batchd.catalog import directories, flows
from batchd.cli.flows import app
from batchd.config import Settings
from batchd.store import identity
from batchd.store.database import run_once

runner = CliRunner()
ALICE = Caller(org_id="o1", user_id="u1", user_name="alice")


def arrange(home: Path) -> None:
    """Flow 1 with three versions: imported (a → b), b renamed to c, then the desc changed."""

    async def work(conn: AsyncConnection) -> None:
        await identity.bootstrap(conn, org_id="o1", user_id="u1", user_name="alice")
        root = (await directories.list_directories(conn, ALICE))[0]["key"]
        flow_json: dict[str, Any] = {
            "type": 0, "cycle": "D", "owners": "alice",
            "tasks": [{"name": "a", "type": "COMMAND", "cmd": "echo a"}, {"name": "b", "type": "COMMAND"}],
            "relations": [{"sourceTaskName": "a", "targetTaskName": "b"}],
        }
        await flows.import_flow(conn, ALICE, {"flowName": "f", "dirId": root, "flowJson": flow_json})
        await flows.save_flow(conn, ALICE, {"id": 1, "tasks": [{"taskName": "a", "taskId": 1},
                                                              {"taskName": "c", "taskId": 2}]})
        await flows.save_flow(conn, ALICE, {"id": 1, "desc": "third"})

    asyncio.run(run_once(Settings.load(home=home, environ={}), work))


def invoke(home: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--home", str(home)], env={"COLUMNS": "200", "BATCHD_DATABASE_URL": ""})
    return result.exit_code, result.stdout, result.stderr


def test_versions_show_and_diff(tmp_path: Path) -> None:
    arrange(tmp_path)
    code, out, _ = invoke(tmp_path, "versions", "1", "--json")
    assert code == 0
    assert [(v["version"], v["savedBy"]) for v in json.loads(out)] == [(1, "alice"), (2, "alice"), (3, "alice")]
    code, out, _ = invoke(tmp_path, "versions", "1")
    assert code == 0 and out.splitlines()[0].split() == ["version", "saved", "by"] and len(out.splitlines()) == 4

    code, out, _ = invoke(tmp_path, "show", "1", "--version", "1")
    assert code == 0 and [t["name"] for t in json.loads(out)["tasks"]] == ["a", "b"]
    assert json.loads(invoke(tmp_path, "show", "1")[1])["desc"] == "third"

    code, out, _ = invoke(tmp_path, "diff", "1")
    assert code == 0 and '-  "desc": "",' in out and '+  "desc": "third",' in out and '"name": "c"' not in out
    code, out, _ = invoke(tmp_path, "diff", "1", "--from", "1", "--to", "2")
    assert '-      "name": "b",' in out and '+      "name": "c",' in out
    assert invoke(tmp_path, "diff", "1", "--from", "2", "--to", "2")[1] == ""


def test_errors_name_the_problem(tmp_path: Path) -> None:
    arrange(tmp_path)
    code, _, err = invoke(tmp_path, "show", "7")
    assert code == 1 and "flowId: workflow 7 does not exist" in err
    code, _, err = invoke(tmp_path, "show", "1", "--version", "9")
    assert code == 1 and "version: workflow 1 has no version 9 (current: 3)" in err
    code, _, err = invoke(tmp_path, "diff", "1", "--to", "1")
    assert code == 1 and "--from: workflow 1 has no version before 1" in err
