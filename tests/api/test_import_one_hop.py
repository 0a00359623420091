"""Import Flow in one trip to the database's worker thread (`catalog.flows.import_flow_in_one_hop`),
through HTTP: what a user sees must be what the ordinary way gives — ids in sequence, every row
written, a refusal leaving nothing behind, an id taken by other means skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from servicekit import EnosClient, Service
from test_flows_api import count_rows, failed, flow_json, import_flow, ok, root_dir

from batchd.store.tables import flows, id_counters


def test_imports_get_ids_in_sequence_and_all_their_rows(service: Service, client: EnosClient) -> None:
    first = import_flow(client, "first")  # a fresh database: this one creates the id counters
    second = import_flow(client, "second")
    third = import_flow(client, "third")
    assert (second, third) == (first + 1, first + 2)
    assert count_rows(service) == (3, 6, 3)
    for flow_id, name in ((second, "second"), (third, "third")):
        detail = ok(client.call("GET", "flows", "get", query={"flowId": flow_id}))
        assert (detail["flowName"], detail["creator"], detail["version"], detail["active"]) == (name, "tester", 1, 0)
        exported = ok(client.call("GET", "flows", "export", query={"flowId": flow_id}))
        assert [t["name"] for t in exported["tasks"]] == ["extract", "load"]


def test_refused_imports_leave_nothing_and_name_the_field(service: Service, client: EnosClient,
                                                         other_org_client: EnosClient) -> None:
    import_flow(client, "taken")
    before = count_rows(service)
    body = {"flowName": "taken", "dirId": root_dir(client), "flowJson": flow_json()}
    assert failed(client.call("POST", "flows", "import", body=body), 62102).startswith(
        'flowName: a workflow named "taken" already exists')
    body = {"flowName": "new", "dirId": "0" * 32, "flowJson": flow_json()}
    assert failed(client.call("POST", "flows", "import", body=body), 62102) == (
        f"dirId: Directory does not exist: \"{'0' * 32}\"")
    body = {"flowName": "new", "dirId": root_dir(client), "flowJson": flow_json(cron="not a cron")}
    assert failed(client.call("POST", "flows", "import", body=body), 62102).startswith("flowJson.cron:")
    failed(client.call("POST", "flows", "import", body=body, query={"userId": "u-nobody"}), 62101)
    body = {"flowName": "new", "dirId": root_dir(client), "flowJson": flow_json()}
    failed(other_org_client.call("POST", "flows", "import", body=body, query={"orgId": "o-test"}), 62101)
    assert count_rows(service) == before


def test_a_counter_value_taken_by_other_means_is_skipped(service: Service, client: EnosClient) -> None:
    first = import_flow(client, "first")

    async def rewind(conn: Any) -> None:  # as if a flow had been written with the next id already
        await conn.execute(sa.update(id_counters).where(id_counters.c.name == "flow_id").values(value=first - 1))

    service.in_transaction(rewind)
    second = import_flow(client, "second")
    assert second == first + 1

    async def names(conn: Any) -> list[str]:
        return list((await conn.execute(sa.select(flows.c.name).order_by(flows.c.flow_id))).scalars())

    assert service.in_transaction(names) == ["first", "second"]


def replayable(client: EnosClient, method: str, resource: str, action: str, *, query: dict[str, Any] | None = None,
               body: Any = None) -> Callable[[], Any]:
    """The same signed request, sendable again byte for byte (same timestamp and signature)."""
    full_query = {"action": action, "orgId": client.org_id, "userId": client.user_id, **(query or {})}
    content = b"" if body is None else json.dumps(body).encode()
    timestamp = client.timestamp()
    headers = {"apim-timestamp": str(timestamp),
               "apim-signature": client.signature(client.token, {k: str(v) for k, v in full_query.items()},
                                                  content, timestamp)}
    return lambda: client.request(method, resource, action, query=query, raw_body=content, headers=headers)


def test_a_signed_import_or_get_cannot_be_replayed_even_when_refused(service: Service, client: EnosClient) -> None:
    existing = import_flow(client, "existing")
    body = {"flowName": "once", "dirId": root_dir(client), "flowJson": flow_json()}
    send = replayable(client, "POST", "flows", "import", body=body)
    assert ok(send().json())["flowId"] == existing + 1
    again = send()
    assert again.status_code == 401 and "replayed" in again.json()["msg"]

    refused = replayable(client, "POST", "flows", "import", body={**body, "flowName": "existing"})
    assert failed(refused().json(), 62102).startswith('flowName: a workflow named "existing" already exists')
    assert refused().status_code == 401  # the refusal kept the signature: a replay is not tried again

    get = replayable(client, "GET", "flows", "get", query={"flowId": existing})
    assert ok(get().json())["flowName"] == "existing"
    assert get().status_code == 401
    assert count_rows(service)[0] == 2
