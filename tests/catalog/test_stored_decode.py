"""Reading a stored document: the direct path for tasks (`shapes._stored_task`) gives exactly what
validating every field gives, Get Flow's outline read shows exactly what the whole read shows,
and anything not in the stored shape takes the validating path."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from batchd.catalog.model import FlowDefinition, StoredFlow
from batchd.catalog.shapes import flow_detail, from_document, outline_from_document, to_document
from batchd.catalog import validation
from batchd.catalog.fields import FieldReader
from batchd.catalog.validation import parse_import, plain_task, read_task_fields
from batchd.errors import InvalidParameter

sys.path.insert(0, str(Path(__file__).parent))
from test_catalog_roundtrip_property import flow_json  # noqa: E402

SEED = json.loads((Path(__file__).parent / "fixtures" / "seed_import_flow.json").read_text())


def stored(flow: dict[str, Any]) -> str:
    return to_document(parse_import({"flowName": "p", "dirId": "d", "flowJson": flow}).definition)


@settings(max_examples=60, deadline=None)
@given(flow_json())
def test_direct_and_validating_reads_agree(flow: dict[str, Any]) -> None:
    document = stored(flow)
    assert from_document(document) == from_document(document, trusted=False)


def test_seed_sample_with_wait_code_agrees() -> None:
    document = stored(SEED["flowJson"])
    assert '"waitCode":""' in document
    assert from_document(document) == from_document(document, trusted=False)


@pytest.mark.parametrize("change", [
    {"timeout": "300"},  # not as stored: a string
    {"timeout": 10**9},  # out of range
    {"asLink": 1},
    {"name": "x" * 200},
    {"runMode": "{\"taskMode\":\"2\"}"},  # a valid text the direct path must parse the same way
    {"type": "6"},
    {"waitCode": None},
])
def test_documents_not_in_the_stored_shape_read_as_validation_says(change: dict[str, Any]) -> None:
    doc = json.loads(stored(SEED["flowJson"]))
    doc["tasks"][0].update(change)
    reads_as_validation_says(json.dumps(doc))


def reads_as_validation_says(document: str) -> FlowDefinition | None:
    """The direct read gives what the validating one gives, or fails with its error (None)."""
    try:
        expected = from_document(document, trusted=False)
    except InvalidParameter as error:
        with pytest.raises(InvalidParameter, match=re.escape(error.message)):
            from_document(document)
        return None
    assert from_document(document) == expected
    return expected


@pytest.mark.parametrize("change", [
    {"rerun": "1"},  # a boolean written as text: the validating read decides
    {"rerun": 1},
    {"cycleGap": 3},  # not as stored (a text or null)
    {"cycleGap": "1D"},
    {"sourceTaskName": " "},
])
def test_relations_not_in_the_stored_shape_read_as_validation_says(change: dict[str, Any]) -> None:
    doc = json.loads(with_canvas(stored(SEED["flowJson"])))
    name = doc["tasks"][0]["name"]
    plain = {"sourceTaskName": name, "targetTaskName": name, "rerun": True, "cycleGap": None}
    doc["relations"] = [plain, {**plain, **change}, {**plain, "cycleGap": "D1"}]
    expected = reads_as_validation_says(json.dumps(doc))
    assert expected is None or len(expected.relations) == len(doc["relations"])


# --- Get Flow's outline read (`shapes.outline_from_document`) --------------------------------


def detail_of(definition: Any, task_nodes: Any = None) -> dict[str, Any]:
    flow = StoredFlow(flow_id=7, org_id="o", dir_id="d", definition=definition, active=True, creator="c",
                      create_time_ms=1, update_time_ms=2, update_user="u", entry=1, version=3)
    return flow_detail(flow, can_edit=True, can_read=True, user_locked=False, task_nodes=task_nodes)


def with_canvas(document: str) -> str:
    """The document as a Save from the graph editor leaves it: positions, cycle gaps, a queue."""
    doc = json.loads(document)
    for i, task in enumerate(doc["tasks"]):
        task["taskId"] = 1000 + i
        task["position"] = {"x": i * 1.5, "y": -i} if i % 2 else None
    for i, relation in enumerate(doc["relations"]):
        relation["cycleGap"] = "D1" if i % 2 else None
    doc["queue"] = "etl"
    return json.dumps(doc)


@settings(max_examples=60, deadline=None)
@given(flow_json())
def test_get_flow_shows_the_same_from_the_outline_as_from_the_whole_document(flow: dict[str, Any]) -> None:
    for document in (stored(flow), with_canvas(stored(flow))):
        outline = outline_from_document(document)
        assert outline is not None
        assert detail_of(*outline) == detail_of(from_document(document))


@pytest.mark.parametrize("change", [
    lambda doc: doc["relations"][0].update(rerun="1"),  # a boolean written as text
    lambda doc: doc["tasks"][0].update(taskId="12"),
    lambda doc: doc["tasks"][0].update(position={"x": 1}),
    lambda doc: doc["tasks"][0].update(name=" "),
    lambda doc: doc.update(flowLinks=[{"linkId": "l1", "sourceFlowName": "up", "sourceFlowId": 3, "position": None}]),
])
def test_documents_not_in_the_stored_shape_are_read_whole(change: Any) -> None:
    doc = json.loads(with_canvas(stored(SEED["flowJson"])))
    doc["relations"] = doc["relations"] or [{"sourceTaskName": doc["tasks"][0]["name"],
                                             "targetTaskName": doc["tasks"][0]["name"], "rerun": False}]
    change(doc)

    assert outline_from_document(json.dumps(doc)) is None


# --- the direct task read (`validation.plain_task`) against the field-by-field one ----------


@settings(max_examples=60, deadline=None)
@given(flow_json())
def test_plain_tasks_read_as_field_by_field(flow: dict[str, Any]) -> None:
    stored_tasks = json.loads(stored(flow))["tasks"]
    for td in [*flow["tasks"], *stored_tasks]:
        try:
            expected = read_task_fields(FieldReader(td, "task"))
        except InvalidParameter:
            assert plain_task(td) is None
            continue
        direct = plain_task(td)
        assert direct is None or direct == expected


@pytest.mark.parametrize("change", [
    {"timeout": "300"}, {"timeout": 10**9}, {"asLink": 1}, {"name": "x" * 200}, {"cron": " 0 0 * * * ? "},
    {"resource": None}, {"successCode": "0,300"}, {"runMode": "{\"cpu\": 9}"}, {"type": "nope"},
])
def test_tasks_not_plain_are_read_field_by_field(change: dict[str, Any]) -> None:
    td = {**json.loads(stored(SEED["flowJson"]))["tasks"][0], **change}

    assert plain_task(td) is None


@pytest.mark.parametrize("relation", [
    {"sourceTaskName": "a", "targetTaskName": "b", "rerun": True},
    {"sourceTaskName": "a", "targetTaskName": "b", "rerun": False},
    {"sourceTaskName": "a", "targetTaskName": "b", "rerun": None},
    {"sourceTaskName": "a", "targetTaskName": "b"},
    {"sourceTaskName": "a", "targetTaskName": "b", "rerun": 1},
    {"sourceTaskName": "a", "targetTaskName": "b", "rerun": 0},
    {"sourceTaskName": "a", "targetTaskName": "b", "rerun": 2},
    {"sourceTaskName": "a", "targetTaskName": "b", "rerun": "true"},
    {"sourceTaskName": 7, "targetTaskName": "b"},
    {"sourceTaskName": " ", "targetTaskName": "b"},
    {"sourceTaskName": "a", "targetTaskName": "b", "rerun": "maybe"},
])
def test_relations_read_the_same_with_or_without_the_shortcut(relation: dict[str, Any]) -> None:
    def read(flow: dict[str, Any]) -> Any:
        try:
            return parse_import({"flowName": "p", "dirId": "d", "flowJson": flow}).definition.relations
        except InvalidParameter as error:
            return error.message

    flow = {**SEED["flowJson"], "tasks": [{"name": "a", "type": "SHELL"}, {"name": "b", "type": "SHELL"}],
            "relations": [relation]}
    with_shortcut = read(flow)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(validation, "plain_relation", lambda rd: None)
        assert read(flow) == with_shortcut
