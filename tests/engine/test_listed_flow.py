"""List Flow Instances reads four fields of each instance's snapshot straight from its JSON
(`engine.shapes.ListedFlow.read`); they must be exactly what the full model parse gives, for any
definition the catalogue can store, and an unknown layout falls back to the model parse."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hypothesis import given, settings

from batchd.catalog.shapes import from_document, to_document
from batchd.catalog.validation import parse_import
from batchd.engine.shapes import ListedFlow

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
