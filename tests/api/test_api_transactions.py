"""What a deployment sees of the per-request transactions and of the replay guard.

Reading operations run in read transactions: they answer while another connection holds the
write lock (on SQLite, an admin command or a second server mid-write). Signatures are recorded
in the database itself, so a second server on the same database refuses a replay the first one
accepted, and a key revoked through any process stops its tokens on the next call.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import sqlalchemy as sa
from servicekit import Backend, EnosClient, Service, start_service

from test_flows_api import failed, import_flow, ok

from batchd.store import identity


@contextmanager
def writer_holding_the_lock(backend: Backend) -> Iterator[None]:
    """Another connection in the middle of a write: SQLite's write lock, or on PostgreSQL a lock
    on `flows` that every writer of flows would wait for."""
    url = sa.make_url(backend.database_url)
    if backend.name == "sqlite":
        conn = sqlite3.connect(url.database, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield
        finally:
            conn.rollback()
            conn.close()
    else:
        with psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False)) as conn:
            conn.execute("LOCK TABLE flows IN EXCLUSIVE MODE")
            yield
            conn.rollback()


def test_reads_answer_while_another_connection_holds_the_write_lock(backend: Backend, tmp_path: Path) -> None:
    # Unsigned (--insecure), because a signed call writes its signature first, which on SQLite
    # waits for the lock like any write: what is shown here is the reads' own transaction.
    with start_service(backend, tmp_path / "home", insecure=True) as service:
        client = service.client()
        flow_id = import_flow(client, "nightly")
        with writer_holding_the_lock(backend):
            detail = ok(client.call("GET", "flows", "get", query={"flowId": flow_id}, sign=False))
            found = ok(client.call("POST", "flows", "search", body={"expression": "night"}, sign=False))
            exported = ok(client.call("GET", "flows", "export", query={"flowId": flow_id}, sign=False))
            now = ok(client.call("GET", "time", "getCurrentTime", sign=False))
        # Once the other writer is done, writes go through as before.
        second = import_flow(client, "nightly-2")

    assert detail["flowName"] == "nightly" and exported["name"] == "nightly"
    assert found == [{"flowId": str(flow_id), "flowName": "nightly"}]
    assert isinstance(now, int)
    assert second != flow_id


def test_a_failed_read_changes_nothing_and_a_failed_write_still_rolls_back(client: EnosClient) -> None:
    flow_id = import_flow(client, "kept")

    missing = failed(client.call("GET", "flows", "get", query={"flowId": flow_id + 1000}), 62102)
    refused = failed(client.call("POST", "flows", "import", body={"flowName": "x", "dirId": "nope", "flowJson": {}}),
                     62102)

    assert "does not exist" in missing
    assert refused
    assert [f["flowName"] for f in ok(client.call("POST", "flows", "search", body={}))] == ["kept"]


def test_a_replay_is_refused_by_a_second_server_on_the_same_database(backend: Backend, tmp_path: Path) -> None:
    with start_service(backend, tmp_path / "a") as first, start_service(backend, tmp_path / "b") as second:
        caller = first.client()
        timestamp = caller.timestamp()
        query = {"action": "getCurrentTime", "orgId": caller.org_id, "userId": caller.user_id}
        headers = {"apim-timestamp": str(timestamp),
                   "apim-signature": caller.signature(caller.token, query, b"", timestamp)}
        replayer = EnosClient(second.base_url, caller.access_key, caller.secret_key, caller.org_id, caller.user_id,
                              _token=caller.token)

        accepted = caller.request("GET", "time", "getCurrentTime", headers=headers)
        replayed = replayer.request("GET", "time", "getCurrentTime", headers=headers)
        replayed_to_first = caller.request("GET", "time", "getCurrentTime", headers=headers)

    assert accepted.json()["code"] == 0
    for answer in (replayed, replayed_to_first):
        assert answer.status_code == 401 and "replayed" in answer.json()["msg"]


def test_a_key_revoked_elsewhere_stops_its_tokens_at_the_next_call(service: Service, client: EnosClient) -> None:
    # The server remembers a token's secret between calls; whether the token is still live is
    # asked again on every call, so a revocation by another process (`batchd admin keys revoke`,
    # here a transaction of the test's own) is seen at once, by reads and writes alike.
    assert ok(client.call("GET", "time", "getCurrentTime")) > 0
    assert ok(client.call("POST", "flows", "search", body={})) == []

    service.in_transaction(lambda conn: identity.revoke_service_account(conn, client.access_key))

    for method, resource, action in (("GET", "time", "getCurrentTime"), ("POST", "flows", "search")):
        refused = client.request(method, resource, action, body={} if method == "POST" else None)
        assert refused.status_code == 401
        assert "revoked" in refused.json()["msg"]


def test_a_refreshed_token_stops_working_on_every_server(backend: Backend, tmp_path: Path) -> None:
    with start_service(backend, tmp_path / "a") as first, start_service(backend, tmp_path / "b") as second:
        caller = first.client()
        elsewhere = EnosClient(second.base_url, caller.access_key, caller.secret_key, caller.org_id, caller.user_id,
                               _token=caller.token)
        assert ok(elsewhere.call("GET", "time", "getCurrentTime")) > 0  # the second server knows the token now

        renewed = caller.token_request("refresh", accessToken=caller.token)
        refused = elsewhere.request("GET", "time", "getCurrentTime")

    assert renewed["status"] == 0
    assert refused.status_code == 401 and "unknown access token" in refused.json()["msg"]
