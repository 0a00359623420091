"""The engine's parsed snapshots: each instance gets its own parameters, while instances of one
workflow version (the same snapshot text) share one parse of the definition."""

from __future__ import annotations

import json

from batchd.catalog.fields import FieldReader
from batchd.catalog.shapes import to_document
from batchd.catalog.validation import parse_definition
from batchd.engine.progress import DefinitionCache


def document(names: list[str]) -> str:
    flow = {"type": 0, "cycle": "D", "cron": "",
            "tasks": [{"name": n, "type": "COMMAND", "cmd": f"echo {n}"} for n in names],
            "relations": [{"sourceTaskName": a, "targetTaskName": b, "rerun": True} for a, b in zip(names, names[1:])]}
    return to_document(parse_definition(FieldReader(flow, "flowJson"), name="cached"))


def parameters(**values: str) -> str:
    return json.dumps([{"key": k, "value": v} for k, v in values.items()])


def test_instances_of_one_snapshot_share_the_parse_but_not_the_parameters() -> None:
    cache = DefinitionCache()
    text = document(["a", "b", "c"])
    first = cache.get("1-1", (text, parameters(day="mon")))
    second = cache.get("1-2", (text, parameters(day="tue")))
    assert first is not None and second is not None
    assert first.parameters == {"day": "mon"} and second.parameters == {"day": "tue"}
    assert second.definition is first.definition  # parsed once
    assert second.downstream == {"a": ("b",), "b": ("c",)} and second.upstream == {"b": ("a",), "c": ("b",)}
    assert cache.get("1-1") is first  # by instance id, without the columns
    assert cache.get("1-3") is None


def test_a_different_snapshot_is_parsed_for_itself() -> None:
    cache = DefinitionCache()
    old = cache.get("1-1", (document(["a", "b"]), "[]"))
    new = cache.get("1-2", (document(["a", "b", "c"]), "[]"))
    assert old is not None and new is not None
    assert [t.name for t in old.definition.tasks] == ["a", "b"]
    assert [t.name for t in new.definition.tasks] == ["a", "b", "c"]
    assert new.tasks["c"].cmd == "echo c"


def test_the_oldest_entries_make_room() -> None:
    cache = DefinitionCache(limit=2, shapes=1)
    texts = [document(["a"]), document(["b"])]
    for number, text in enumerate([*texts, texts[0]]):
        assert cache.get(f"1-{number}", (text, "[]")) is not None
    assert cache.get("1-0") is None  # evicted by 1-2
    graph = cache.get("1-2")
    assert graph is not None and [t.name for t in graph.definition.tasks] == ["a"]
