"""Starting runs of a workflow (spec §3.20-3.22): thin handlers over `engine.operations.trigger`.

Owners only, and their account must be unlocked (62103 / 62105). A past `triggerTime` runs now
with that time as the business time; a future one waits until then; a second trigger of the same
workflow within one minute collides on the instance id and is 62102.
"""

from __future__ import annotations

from batchd.api.context import Caller, RequestContext, operation
from batchd.engine import operations


def _caller(ctx: RequestContext) -> Caller:
    assert ctx.caller is not None
    return ctx.caller


@operation(resource="flows", method="POST", action="trigger")
async def trigger_flow(ctx: RequestContext) -> dict[str, str]:
    """Trigger Flow: a new instance of `flowId` at `triggerTime` (epoch ms); `{"flowInstanceId": ...}`."""
    return await operations.trigger(ctx.conn, _caller(ctx), ctx.body, zone=ctx.settings.zone)


@operation(resource="flows", method="POST", action="triggerFromTask")
async def trigger_flow_from_task(ctx: RequestContext) -> dict[str, str]:
    """Trigger Flow From Task: run `taskId` and its descendants through `rerun: true` edges; the rest SKIP."""
    return await operations.trigger(ctx.conn, _caller(ctx), ctx.body, zone=ctx.settings.zone, with_task=True)


@operation(resource="flows", method="POST", action="updateAndTrigger")
async def update_and_trigger_flow(ctx: RequestContext) -> dict[str, str]:
    """Update And Trigger Flow: trigger with `parameters` overriding the flow's for this run only."""
    return await operations.trigger(ctx.conn, _caller(ctx), ctx.body, zone=ctx.settings.zone, with_parameters=True)
