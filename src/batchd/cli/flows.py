"""`batchd flows`: a workflow's saved versions, read straight from the database.

Every Import and Save Flow writes a version (docs/decisions.md, "versions"). These commands show
them to an operator without a running server: list them, print one as Export Flow would, or diff
two. Rolling back is an API call (Save Flow with `restoreVersion`), so it stays an owner's act.
"""

from __future__ import annotations

import difflib
import json
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncConnection

from batchd.catalog import flow_store
from batchd.catalog.model import StoredFlow
from batchd.catalog.shapes import export_definition
from batchd.cli.common import AsJson, Home, in_transaction, print_json, when
from batchd.errors import InvalidParameter

app = typer.Typer(help="Workflows' saved versions: list, show, diff.", no_args_is_help=True)

FlowId = Annotated[int, typer.Argument(help="The workflow id (flowId).", min=1)]


async def _flow(conn: AsyncConnection, flow_id: int, version: int | None) -> StoredFlow:
    flow = await flow_store.find_flow(conn, flow_id, version=version)
    if flow is None:
        raise InvalidParameter(f"flowId: workflow {flow_id} does not exist")
    return flow


def _exported(flow: StoredFlow) -> str:
    return json.dumps(export_definition(flow.definition), indent=2, ensure_ascii=False) + "\n"


@app.command("versions")
def versions(flow_id: FlowId, home: Home = None, as_json: AsJson = False) -> None:
    """List the saved versions of a workflow, oldest first; the last one is current."""

    async def work(conn: AsyncConnection) -> list[flow_store.VersionInfo]:
        await _flow(conn, flow_id, None)
        return await flow_store.list_versions(conn, flow_id)

    found = in_transaction(home, work)
    if as_json:
        print_json([{"version": v.version, "savedBy": v.saved_by, "savedAt": v.saved_at_ms} for v in found])
        return
    print(f"{'version':>7}  {'saved':<23}  by")
    for v in found:
        print(f"{v.version:>7}  {when(v.saved_at_ms):<23}  {v.saved_by}")


@app.command("show")
def show(
    flow_id: FlowId,
    version: Annotated[int | None, typer.Option(help="Version to show (default: the current one).", min=1)] = None,
    home: Home = None,
) -> None:
    """Print a version as Export Flow returns it (Import Flow's `flowJson`)."""
    print(_exported(in_transaction(home, lambda conn: _flow(conn, flow_id, version))), end="")


@app.command("diff")
def diff(
    flow_id: FlowId,
    old: Annotated[
        int | None, typer.Option("--from", help="Older version (default: the one before --to).", min=1)
    ] = None,
    new: Annotated[int | None, typer.Option("--to", help="Newer version (default: the current one).", min=1)] = None,
    home: Home = None,
) -> None:
    """Unified diff between two versions' exports; prints nothing when they are equal."""

    async def work(conn: AsyncConnection) -> tuple[StoredFlow, StoredFlow]:
        after = await _flow(conn, flow_id, new)
        before_version = old if old is not None else after.version - 1
        if before_version < 1:
            raise InvalidParameter(f"--from: workflow {flow_id} has no version before {after.version}")
        return await _flow(conn, flow_id, before_version), after

    before, after = in_transaction(home, work)
    lines: Any = difflib.unified_diff(
        _exported(before).splitlines(keepends=True), _exported(after).splitlines(keepends=True),
        fromfile=f"flow {flow_id} version {before.version}", tofile=f"flow {flow_id} version {after.version}",
    )
    print("".join(lines), end="")
