"""A signed Get Flow in one trip to the database's worker thread
(`catalog.flows.rendered_flow_detail_in_one_hop`): its signature is recorded first in the same
transaction as the read, and the replay guard must hold exactly as when the record went its own
way — on the same server, on a second server sharing the database (SQLite and PostgreSQL), for a
Get that is refused (62101) or read the full way, and for a token revoked in between.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import sqlalchemy as sa
from servicekit import Backend, EnosClient, Service, start_service
from test_api_transactions import writer_holding_the_lock
from test_flows_api import failed, import_flow, ok
from test_import_one_hop import replayable

from batchd.store import identity
from batchd.store.tables import used_signatures


def signatures(service: Service) -> int:
    async def count(conn):  # type: ignore[no-untyped-def]
        return (await conn.execute(sa.select(sa.func.count()).select_from(used_signatures))).scalar_one()

    return service.in_transaction(count)


def test_a_signed_get_records_its_signature_once_and_refuses_its_replay(service: Service,
                                                                       client: EnosClient) -> None:
    flow_id = import_flow(client, "nightly")
    before = signatures(service)
    get = replayable(client, "GET", "flows", "get", query={"flowId": flow_id})
    assert ok(get().json())["flowName"] == "nightly"
    assert signatures(service) == before + 1
    replayed = get()
    assert replayed.status_code == 401 and "replayed" in replayed.json()["msg"]
    assert signatures(service) == before + 1

    # Load For Edit shares the shortcut; an older version and a missing flow take the full way
    # after the shortcut recorded the signature, which must then not be recorded twice.
    for action, query in (("loadForEdit", {"flowId": flow_id}), ("get", {"flowId": flow_id, "version": 1})):
        call = replayable(client, "GET", "flows", action, query=query)
        assert ok(call().json())["flowName"] == "nightly"
        assert call().status_code == 401
    missing = replayable(client, "GET", "flows", "get", query={"flowId": flow_id + 1000})
    assert "does not exist" in failed(missing().json(), 62102)
    assert missing().status_code == 401
    assert signatures(service) == before + 4


def test_a_refused_signed_get_keeps_its_signature(client: EnosClient, other_org_client: EnosClient) -> None:
    flow_id = import_flow(client, "nightly")
    for query in ({"flowId": flow_id, "userId": "u-nobody"}, {"flowId": "not-a-number"}):
        refused = replayable(client, "GET", "flows", "get", query=query)
        assert failed(refused().json(), 62101 if "userId" in query else 62102)
        assert refused().status_code == 401
    # Another organisation's flow "does not exist" for this caller, read or replayed.
    foreign = replayable(other_org_client, "GET", "flows", "get", query={"flowId": flow_id})
    assert "does not exist" in failed(foreign().json(), 62102)
    assert foreign().status_code == 401


def test_a_signed_get_replayed_to_a_second_server_is_refused(backend: Backend, tmp_path: Path) -> None:
    with start_service(backend, tmp_path / "a") as first, start_service(backend, tmp_path / "b") as second:
        caller = first.client()
        flow_id = import_flow(caller, "nightly")
        get = replayable(caller, "GET", "flows", "get", query={"flowId": flow_id})
        accepted = get()
        caller.base_url = second.base_url  # the same signed request, sent to the other process
        replayed = get()

    assert ok(accepted.json())["flowName"] == "nightly"
    assert replayed.status_code == 401 and "replayed" in replayed.json()["msg"]


def test_a_signed_get_with_a_revoked_key_is_refused(service: Service, client: EnosClient) -> None:
    flow_id = import_flow(client, "nightly")
    assert ok(client.call("GET", "flows", "get", query={"flowId": flow_id}))["flowName"] == "nightly"
    service.in_transaction(lambda conn: identity.revoke_service_account(conn, client.access_key))
    refused = client.request("GET", "flows", "get", query={"flowId": flow_id})
    assert refused.status_code == 401 and "revoked" in refused.json()["msg"]


def test_signed_calls_wait_for_a_writer_holding_the_lock(backend: Backend, tmp_path: Path) -> None:
    # A signed call's record (and Get's and Import's one hop) runs on the event loop's thread
    # only when SQLite's write lock is free; while another connection holds it, the call waits
    # on the worker thread (busy timeout) and then goes through, never "database is locked".
    with start_service(backend, tmp_path / "home") as service:
        client = service.client()
        flow_id = import_flow(client, "nightly")
        held = threading.Event()
        released_at: list[float] = []

        def hold() -> None:
            with writer_holding_the_lock(backend):
                held.set()
                time.sleep(0.3)
                released_at.append(time.monotonic())

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert held.wait(10)
            detail = ok(client.call("GET", "flows", "get", query={"flowId": flow_id}))
            got_at = time.monotonic()
            now = ok(client.call("GET", "time", "getCurrentTime"))
            second = import_flow(client, "nightly-2")
        finally:
            holder.join()

    assert detail["flowName"] == "nightly" and isinstance(now, int) and second == flow_id + 1
    if backend.name == "sqlite":
        assert got_at >= released_at[0]  # its signature could only commit once the lock was free
