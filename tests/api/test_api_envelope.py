"""What a client gets back when things go wrong, and the service's own endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from servicekit import HTTP, Backend, EnosClient, Service, newest_schema_revision, start_service

from batchd.store import identity

pytestmark = pytest.mark.usefixtures("probe")


def assert_error_envelope(answer: dict, code: int, *fragments: str) -> None:
    assert answer["code"] == code, answer
    assert answer["data"] is None
    assert len(answer["requestId"]) == 36
    for fragment in fragments:
        assert fragment in answer["msg"], answer["msg"]


def test_success_envelope_has_code_msg_data_and_a_request_id(client: EnosClient) -> None:
    first = client.call("GET", "time", "getCurrentTime")
    second = client.call("GET", "time", "getCurrentTime")

    assert list(first) == ["code", "msg", "data", "requestId"]
    assert (first["code"], first["msg"]) == (0, "OK")
    assert first["requestId"] != second["requestId"]


def test_unknown_action_is_62102_listing_the_valid_ones(client: EnosClient) -> None:
    answer = client.call("GET", "time", "getTime")

    assert_error_envelope(answer, 62102, "'getTime'", "getCurrentTime, getTimeZone")


def test_missing_action_is_62102(client: EnosClient) -> None:
    assert_error_envelope(client.call("GET", "time", None), 62102, "action cannot be empty", "getCurrentTime")


def test_action_on_the_wrong_method_says_which_method(client: EnosClient) -> None:
    answer = client.call("POST", "time", "getCurrentTime")

    assert_error_envelope(answer, 62102, "is a GET operation, not POST")


def test_unknown_resource_is_62102_listing_resources(client: EnosClient) -> None:
    assert_error_envelope(client.call("GET", "flowz", "get"), 62102, "'flowz'", "flows", "time")


def test_malformed_json_is_62102_naming_line_and_column(client: EnosClient) -> None:
    answer = client.call("POST", "probe", "writeThenFail", raw_body=b'{\n  "flowId": 1,\n  oops\n}')

    assert_error_envelope(answer, 62102, "Malformed JSON body", "line 3, column 3")


def test_body_over_the_limit_is_413_with_the_limit_named(backend: Backend, tmp_path: Path) -> None:
    with start_service(backend, tmp_path / "home", max_body_bytes=1000) as small:
        client = small.client()
        response = client.request("POST", "probe", "writeThenFail", raw_body=b"[" + b"1," * 600 + b"1]")
        within = client.request("POST", "probe", "writeThenFail", raw_body=b"[" + b"1," * 400 + b"1]")

    assert response.status_code == 413
    assert_error_envelope(response.json(), 62102, "1000 bytes")
    assert within.json()["msg"] == "probe: failing after a write"


def test_unexpected_exception_is_62109_in_an_envelope_not_a_500(client: EnosClient, capsys) -> None:
    response = client.request("GET", "probe", "explode")

    assert response.status_code == 200
    assert_error_envelope(response.json(), 62109)
    assert response.json()["msg"] == "Internal server exception"
    assert "something nobody expected" not in response.text  # internals stay in the log
    assert "RuntimeError: probe: something nobody expected" in capsys.readouterr().out


def test_a_failed_call_changes_nothing(service: Service, client: EnosClient) -> None:
    answer = client.call("POST", "probe", "writeThenFail", body={})

    assert_error_envelope(answer, 62102, "failing after a write")
    assert not service.in_transaction(lambda conn: identity.org_exists(conn, "o-written-then-rolled-back"))


def test_data_that_cannot_be_sent_is_62109_and_changes_nothing(service: Service, client: EnosClient) -> None:
    answer = client.call("POST", "probe", "writeThenReturnTheUnsendable")

    assert_error_envelope(answer, 62109, "Internal server exception")
    assert not service.in_transaction(lambda conn: identity.org_exists(conn, "o-written-then-rolled-back"))


def test_unknown_path_answers_with_an_envelope(service: Service) -> None:
    response = HTTP.get(service.base_url + "/no/such/path")

    assert response.status_code == 404
    assert response.json()["code"] == 404


def test_each_request_is_logged_as_one_json_line(client: EnosClient, capsys) -> None:
    import json

    capsys.readouterr()
    client.call("GET", "time", "getTime")

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"request"' in line]
    logged = [line for line in lines if line.get("path", "").endswith("/time")]
    assert len(logged) == 1
    assert {k: logged[0][k] for k in ("method", "action", "status", "code")} == {
        "method": "GET", "action": "getTime", "status": 200, "code": 62102,
    }
    assert logged[0]["duration_ms"] >= 0


def test_healthz_and_readyz(service: Service) -> None:
    assert HTTP.get(service.base_url + "/healthz").json() == {"status": "ok"}
    ready = HTTP.get(service.base_url + "/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "schema": newest_schema_revision()}


def test_readyz_is_503_when_the_schema_is_not_at_head(service: Service) -> None:
    service.in_transaction(lambda conn: conn.execute(sa.text("UPDATE alembic_version SET version_num = '0000'")))

    ready = HTTP.get(service.base_url + "/readyz")

    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable",
                            "reason": f"database schema at 0000, batchd needs {newest_schema_revision()}"}
    assert HTTP.get(service.base_url + "/healthz").status_code == 200


def test_openapi_documents_each_path_with_its_actions_and_the_envelope(service: Service) -> None:
    schema = HTTP.get(service.base_url + "/openapi.json").json()

    time_get = schema["paths"]["/batch-processing-service/v2.1/time"]["get"]
    action = next(p for p in time_get["parameters"] if p["name"] == "action")
    assert action["schema"]["enum"] == ["getCurrentTime", "getTimeZone"]
    components = schema["components"]["schemas"]
    success, error = time_get["responses"]["200"]["content"]["application/json"]["schema"]["oneOf"]
    assert error == {"$ref": "#/components/schemas/ErrorEnvelope"}
    assert success["properties"]["code"] == {"const": 0}
    for envelope in (success, components["ErrorEnvelope"], components["Unauthorized"], components["BodyTooLarge"],
                     components["Envelope"]):
        assert envelope["required"] == ["code", "msg", "data", "requestId"]
        assert envelope["additionalProperties"] is False
    assert time_get["responses"]["401"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Unauthorized"
    }
    assert "/apim-token-service/v2.0/token/get" in schema["paths"]
    assert HTTP.get(service.base_url + "/docs").status_code == 200


# --- insecure mode ---------------------------------------------------------------------------


def test_insecure_mode_needs_no_signature_but_still_checks_the_user(backend: Backend, tmp_path: Path) -> None:
    with start_service(backend, tmp_path / "home", insecure=True) as open_service:
        client = open_service.client()
        me = client.call("GET", "probe", "whoami", sign=False)
        stranger = client.as_user("nobody").call("GET", "probe", "whoami", sign=False)
        wrong_org = client.call("GET", "probe", "whoami", query={"orgId": "o-nowhere"}, sign=False)

    assert me["code"] == 0
    assert me["data"]["userId"] == client.user_id
    assert stranger["code"] == 62101
    assert wrong_org["code"] == 62101
