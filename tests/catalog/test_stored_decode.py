"""Reading a stored document: the direct path for tasks (`shapes._stored_task`) gives exactly what
validating every field gives, and anything not in the stored shape takes the validating path."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from batchd.catalog.shapes import from_document, to_document
from batchd.catalog.validation import parse_import
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
    document = json.dumps(doc)
    try:
        expected = from_document(document, trusted=False)
    except InvalidParameter as error:
        with pytest.raises(InvalidParameter, match=re.escape(error.message)):
            from_document(document)
        return
    assert from_document(document) == expected
