"""Workflow operations on `flows` (spec §3.3-3.6, 3.8, 3.10, 3.14, 3.17-3.19): thin handlers.

Each handler reads the query or body, makes one `catalog.flows` call and returns its `data`.
Rules (validation, permissions, versions) live in the catalogue. `version=N` on get, loadForEdit
and export is a batchd extension (docs/decisions.md, "versions").
"""

from __future__ import annotations

from typing import Any

from batchd.api.auth import CallerClaim
from batchd.api.context import Caller, RequestContext, ShortcutContext, operation
from batchd.api.envelope import JsonText
from batchd.catalog import flows


def _caller(ctx: RequestContext) -> Caller:
    assert ctx.caller is not None  # every operation here needs a caller (the default)
    return ctx.caller


async def _detail(ctx: RequestContext) -> dict[str, Any]:
    caller = _caller(ctx)
    return await flows.get_flow(ctx.conn, caller, ctx.query.get("flowId"), version=ctx.query.get("version"),
                                zone=ctx.settings.zone, user_locked=caller.locked)


async def _stored_detail(ctx: ShortcutContext) -> JsonText | None:
    """Get Flow / Load Flow For Edit from the flow's stored answer: a signed call in one trip to
    the database's worker thread that records its signature first
    (`flows.rendered_flow_detail_in_one_hop`); an insecure one in one statement on its own (no
    transaction around it: one statement reads one consistent state by itself)."""
    claim = CallerClaim.of(ctx.query, ctx.key_org_id)
    flow_id, version, zone = ctx.query.get("flowId"), ctx.query.get("version"), ctx.settings.zone
    if ctx.signature is not None:
        text = await flows.rendered_flow_detail_in_one_hop(ctx.database, claim.user_id, claim.identify, flow_id,
                                                           kept=ctx.signature, version=version, zone=zone)
    else:
        async with ctx.database.autocommit() as conn:
            text = await flows.rendered_flow_detail(conn, claim.user_id, claim.identify, flow_id, version=version,
                                                    zone=zone)
    return None if text is None else JsonText(text)


async def _import_in_one_hop(ctx: ShortcutContext) -> dict[str, int] | None:
    """Import Flow in one trip to the database's worker thread, a signed call's signature
    recorded first in that same transaction (`flows.import_flow_in_one_hop`)."""
    claim = CallerClaim.of(ctx.query, ctx.key_org_id)
    return await flows.import_flow_in_one_hop(ctx.database, claim.user_id, claim.identify, ctx.body,
                                              kept=ctx.signature)


@operation(resource="flows", method="GET", action="get", writes=False, shortcut=_stored_detail)
async def get_flow(ctx: RequestContext) -> dict[str, Any]:
    """Get Flow: FlowDetail of `flowId` (any member of its organisation; `version=N` for an older one)."""
    return await _detail(ctx)


@operation(resource="flows", method="GET", action="loadForEdit", writes=False, shortcut=_stored_detail)
async def load_flow_for_edit(ctx: RequestContext) -> dict[str, Any]:
    """Load Flow For Edit: FlowDetail with `queue`, the starting point of Save Flow."""
    return await _detail(ctx)


@operation(resource="flows", method="GET", action="export", writes=False)
async def export_flow(ctx: RequestContext) -> dict[str, Any]:
    """Export Flow: the portable FlowDefinition, Import Flow's `flowJson` (`version=N` for an older one)."""
    return await flows.export_flow(ctx.conn, _caller(ctx), ctx.query.get("flowId"), version=ctx.query.get("version"))


@operation(resource="flows", method="GET", action="getMyFlow", writes=False)
async def get_my_flow(ctx: RequestContext) -> list[dict[str, Any]]:
    """Get My Flow: flows the caller owns or visits, filtered by `expression` (or V2.0's `searchValue`)."""
    expression = ctx.query.get("expression", ctx.query.get("searchValue"))
    return await flows.my_flows(ctx.conn, _caller(ctx), expression)


@operation(resource="flows", method="GET", action="delete")
async def delete_flow(ctx: RequestContext) -> str:
    """Delete Flow (a GET, as in EnOS): owners only; 62104 while other flows reference it."""
    return await flows.delete_flow(ctx.conn, _caller(ctx), ctx.query.get("flowId"))


@operation(resource="flows", method="POST", action="import", shortcut=_import_in_one_hop)
async def import_flow(ctx: RequestContext) -> dict[str, int]:
    """Import Flow: create `flowName` in `dirId` from `flowJson`; answers `{"flowId": N}`."""
    return await flows.import_flow(ctx.conn, _caller(ctx), ctx.body)


@operation(resource="flows", method="POST", action="save")
async def save_flow(ctx: RequestContext) -> dict[str, int]:
    """Save Flow: merge the graph-shaped body into the flow as a new version (owners only)."""
    return await flows.save_flow(ctx.conn, _caller(ctx), ctx.body)


@operation(resource="flows", method="POST", action="enable")
async def enable_flow(ctx: RequestContext) -> str:
    """Enable Flow: start scheduling `flowId` (owners only; the cron is checked again)."""
    return await flows.set_flow_active(ctx.conn, _caller(ctx), ctx.body, active=True)


@operation(resource="flows", method="POST", action="disable")
async def disable_flow(ctx: RequestContext) -> str:
    """Disable Flow: stop scheduling `flowId` (owners only)."""
    return await flows.set_flow_active(ctx.conn, _caller(ctx), ctx.body, active=False)


@operation(resource="flows", method="POST", action="search", writes=False)
async def search_flow(ctx: RequestContext) -> list[dict[str, Any]]:
    """Search Flow: the organisation's flows matching `expression`, paged and sorted, as PageFlow."""
    return await flows.search_flows(ctx.conn, _caller(ctx), ctx.body)
