"""Flow and task instances (spec §3.1, 3.9, 3.11, 3.12, 3.15): thin handlers over `engine.operations`."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from batchd.api.auth import CallerClaim
from batchd.api.context import Caller, RequestContext, ShortcutContext, operation
from batchd.engine import operations
from batchd.store import identity


def _caller(ctx: RequestContext) -> Caller:
    assert ctx.caller is not None
    return ctx.caller


@operation(resource="flowInstances", method="GET", action="get", writes=False)
async def get_flow_instance(ctx: RequestContext) -> dict[str, Any]:
    """Get Flow Instance: FlowInstance of `flowInstId`, with `graph` (JSON text) of node statuses."""
    return await operations.get_flow_instance(ctx.conn, _caller(ctx), ctx.query.get("flowInstId"),
                                              zone=ctx.settings.zone)


async def _list_in_one_hop(ctx: ShortcutContext) -> dict[str, Any]:
    """List Flow Instances with the caller check in one read transaction, in one trip to the
    database's worker thread (`Database.run_read`): a dashboard polls it, and through the async
    layer each of its five statements made a trip of its own (the call cost the server ~3.4 ms
    of CPU then, about half that now; bench/list_poll_cost.py)."""
    claim = CallerClaim.of(ctx.query, ctx.key_org_id)
    zone = ctx.settings.zone

    def work(conn: sa.Connection) -> dict[str, Any]:
        caller = claim.identify(identity.find_user_now(conn, claim.user_id))
        return operations.list_flow_instances_now(conn, caller, ctx.body, zone=zone)

    return await ctx.database.run_read(work)


@operation(resource="flowInstances", method="POST", action="search", writes=False, shortcut=_list_in_one_hop)
async def list_flow_instances(ctx: RequestContext) -> dict[str, Any]:
    """List Flow Instances: `{"flowInsts": [...], "count": total}` filtered, sorted and paged."""
    return await operations.list_flow_instances(ctx.conn, _caller(ctx), ctx.body, zone=ctx.settings.zone)


@operation(resource="flowInstances", method="POST", action="cancel")
async def cancel_flow_instance(ctx: RequestContext) -> str:
    """Cancel Flow Instance: kill running tasks, mark the rest and the instance CANCEL (owners only)."""
    return await operations.cancel(ctx.conn, _caller(ctx), ctx.body)


@operation(resource="taskInstances", method="GET", action="get", writes=False)
async def get_task_instance(ctx: RequestContext) -> dict[str, Any]:
    """Get Task Instance: one TaskInstance object for `taskInstId`."""
    return await operations.get_task_instance(ctx.conn, _caller(ctx), ctx.query.get("taskInstId"),
                                              zone=ctx.settings.zone)


@operation(resource="taskInstances", method="GET", action="getLog", writes=False)
async def get_task_instance_log(ctx: RequestContext) -> dict[str, str]:
    """Get Task Instance Log: `{"log": text}` of every attempt; `maxLength` keeps the last N characters."""
    return await operations.get_task_log(ctx.conn, _caller(ctx), ctx.query.get("taskInstId"),
                                         ctx.query.get("maxLength"))
