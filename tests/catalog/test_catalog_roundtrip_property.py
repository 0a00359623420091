"""Property: any valid portable definition survives import → export → import unchanged."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from batchd.catalog.shapes import export_definition, from_document, to_document
from batchd.catalog.validation import parse_import

names = st.text(alphabet="abcdefghij_-0123456789", min_size=1, max_size=12)
texts = st.text(max_size=20).filter(lambda s: "\x00" not in s)
numbers_maybe_as_text = lambda low, high: st.integers(low, high).flatmap(  # noqa: E731
    lambda n: st.sampled_from([n, str(n)]))


@st.composite
def flow_json(draw: st.DrawFn) -> dict[str, Any]:
    task_names = draw(st.lists(names, min_size=0, max_size=5, unique=True))
    tasks = [
        {
            "name": name,
            "type": draw(st.sampled_from(["COMMAND", "DATA_INTEGRATION", "python", 3, "6", 7])),
            "cmd": draw(texts),
            "timeout": draw(numbers_maybe_as_text(0, 604800)),
            "retryLimit": draw(numbers_maybe_as_text(0, 100)),
            "successCode": draw(st.sampled_from(["", "0", "0,1"])),
            "asLink": draw(st.booleans()),
            "runMode": json.dumps({"taskMode": draw(st.sampled_from([1, 2])), "cpu": 0.5, "memory": 1}),
        }
        for name in task_names
    ]
    # Edges only from earlier to later tasks: always a DAG.
    pairs = [(a, b) for i, a in enumerate(task_names) for b in task_names[i + 1:]]
    edges = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=6)) if pairs else []
    params = draw(st.lists(names, unique=True, max_size=3))
    return {
        "type": draw(st.sampled_from([0, 2])), "cycle": draw(st.sampled_from(["M", "W", "D", "H", "mi"])),
        "cron": "", "alertMode": draw(numbers_maybe_as_text(0, 3)),
        "owners": draw(st.sampled_from(["", "a", ";a;b;", "a;b"])), "visitors": draw(st.sampled_from(["", ";v;"])),
        "parameters": json.dumps([{"key": k, "value": draw(texts)} for k in params]),
        "desc": draw(texts), "startTime": draw(st.sampled_from(["", "2024-02-29"])),
        "tasks": tasks,
        "relations": [{"sourceTaskName": a, "targetTaskName": b, "rerun": draw(st.booleans())} for a, b in edges],
    }


@settings(max_examples=40, deadline=None)
@given(flow_json())
def test_import_export_import_is_stable(flow: dict[str, Any]) -> None:
    first = parse_import({"flowName": "p", "dirId": "d", "flowJson": flow}).definition
    exported = export_definition(first)
    again = parse_import({"flowName": "p", "dirId": "d", "flowJson": exported}).definition
    assert export_definition(again) == exported
    assert from_document(to_document(first)) == first
    for key in ("parameters", "owners", "visitors", "desc", "startTime", "relations"):
        assert exported[key] == flow[key]
    assert [t["type"] for t in exported["tasks"]] == [t["type"] for t in flow["tasks"]]
