"""Workflow directory operations on `directories` (spec §3.2, §3.16): thin handlers."""

from __future__ import annotations

from typing import Any

from batchd.api.context import RequestContext, operation
from batchd.catalog import directories


@operation(resource="directories", method="POST", action="create")
async def create_directory(ctx: RequestContext) -> dict[str, str]:
    """Create Directory: `dirName` under `parentId`; answers `{"dirId": "<32 hex>"}`."""
    assert ctx.caller is not None
    return await directories.create_directory(ctx.conn, ctx.caller, ctx.body)


@operation(resource="directories", method="GET", action="listWorkFlowDirs")
async def list_workflow_directories(ctx: RequestContext) -> list[dict[str, Any]]:
    """List Workflow Directories: the organisation's tree under its root "Workflow"."""
    assert ctx.caller is not None
    return await directories.list_directories(ctx.conn, ctx.caller)
