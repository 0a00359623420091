"""List Flow Instances reads four fields of each instance's snapshot straight from its JSON
(`engine.instances.ListedFlow.read`); they must be exactly what the full model parse gives, for any
definition the catalogue can store, and an unknown layout falls back to the model parse."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from servicekit import EnosClient, Service

from batchd.catalog.shapes import from_document, to_document
from batchd.catalog.validation import parse_import
from batchd.engine.instances import ListedFlow

sys.path.insert(0, str(Path(__file__).parent.parent / "catalog"))
from test_catalog_roundtrip_property import flow_json  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(flow_json())
def test_the_fast_read_equals_the_model_for_every_stored_definition(flow: dict[str, Any]) -> None:
    document = to_document(parse_import({"flowName": "p", "dirId": "d", "flowJson": flow}).definition)
    assert ListedFlow.read(document, "[]") == ListedFlow.of(from_document(document), "[]")


def test_a_document_in_another_layout_is_read_through_the_model() -> None:
    flow = {"type": 0, "cycle": "D", "cron": "", "alertMode": "2", "tasks": [{"name": "a", "type": "COMMAND"}]}
    document = json.loads(to_document(parse_import({"flowName": "p", "dirId": "d", "flowJson": flow}).definition))
    document["alertMode"] = "2"  # an older writer's number as text
    listed = ListedFlow.read(json.dumps(document), "[]")
    assert listed == ListedFlow(cron="", cycle="D", submitter=listed.submitter, alert_mode=2, parameters="[]")


def test_the_process_that_creates_an_instance_lists_it_without_reading_its_snapshot(
        service: Service, client: EnosClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """List Flow Instances shows the snapshot's cron, cycle, submitter and alert mode and the
    run's parameters; the process that created the instance knows them from the creation, so
    the first listing after a trigger does not parse a snapshot (~1 MB for 1,000 tasks) while
    the run's first tasks wait. Here, parsing one fails the call."""
    sys.path.insert(0, str(Path(__file__).parent.parent / "api"))
    from test_runs_api import import_flow, past, trigger

    flow_id, _ = import_flow(client, "listed", [{"name": "a", "type": "COMMAND", "cmd": "true"}],
                             cron="0 0 3 * * ? *", cycle="H", alertMode=2, submitter="acct",
                             parameters='[{"key":"day","value":"mon"}]')

    def parse(*_: object) -> ListedFlow:
        raise AssertionError("the listing parsed a snapshot")

    monkeypatch.setattr(ListedFlow, "read", classmethod(parse))
    plain = trigger(client, flow_id, past(2))
    changed = trigger(client, flow_id, past(1), "updateAndTrigger", parameters=[{"key": "day", "value": "tue"}])
    envelope = client.call("POST", "flowInstances", "search", body={"flowId": flow_id})
    assert envelope["code"] == 0, envelope
    shown = {item["instanceId"]: (item["freq"], item["cycle"], item["doAs"], item["alertMode"],
                                  json.loads(item["parameters"])) for item in envelope["data"]["flowInsts"]}
    assert shown == {
        plain: ("0 0 3 * * ? *", "H", "acct", 2, [{"key": "day", "value": "mon"}]),
        changed: ("0 0 3 * * ? *", "H", "acct", 2, [{"key": "day", "value": "tue"}]),
    }
