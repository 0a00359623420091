"""A locked account (spec §4: "neither caller account nor workflow may be locked") may read but
not run or stop workflows: Trigger, Trigger From Task, Update And Trigger and Cancel answer 62105
for a locked *owner*, and nothing is created or cancelled. (A locked stranger learns only 62103,
tests/api/test_runs_api.py.)"""

from __future__ import annotations

from typing import Any

from servicekit import EnosClient
from test_flows_api import failed, ok
from test_runs_api import MINUTE_MS, import_flow, instance, past, task, trigger

LOCKED = "Your account has been locked"


def test_a_locked_owner_can_neither_trigger_nor_cancel(client: EnosClient, make_user: Any) -> None:
    flow_id, ids = import_flow(client, "locked-owner", [task("a", "true"), task("b", "true")], [("a", "b", True)],
                               owners=";tester;lou;")
    locked = make_user("u-lou", name="lou", locked=True)
    # lou may still read the workflow he owns
    assert ok(locked.call("GET", "flows", "get", query={"flowId": flow_id}))["isUserLocked"] is True
    attempts = [
        ("trigger", {}),
        ("triggerFromTask", {"taskId": ids["b"]}),
        ("updateAndTrigger", {"parameters": [{"key": "k", "value": "v"}]}),
    ]
    for minutes, (action, extra) in enumerate(attempts, start=1):
        body = {"flowId": flow_id, "triggerTime": past(minutes), **extra}
        assert failed(locked.call("POST", "flows", action, body=body), 62105) == LOCKED
    listed = ok(client.call("POST", "flowInstances", "search", body={"flowId": flow_id}))
    assert listed["count"] == 0, "a refused trigger must create no instance"

    # An instance an unlocked owner queued for later: lou cannot cancel it, tester can.
    later = trigger(client, flow_id, past(0) + 10 * MINUTE_MS)
    assert ok(client.call("POST", "flowInstances", "search", body={"flowId": flow_id}))["count"] == 1
    assert failed(locked.call("POST", "flowInstances", "cancel", body={"flowInstId": later}), 62105) == LOCKED
    assert instance(client, later)["statusDesc"] != "CANCEL"
    assert ok(client.call("POST", "flowInstances", "cancel", body={"flowInstId": later})) == ""
    assert instance(client, later)["statusDesc"] == "CANCEL"
