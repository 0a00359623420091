"""Regressions for what tests/api/test_schemathesis.py found, as signed calls like real clients.

Each was an unexpected exception answered with 62109 "Internal server exception"; each is now a
62102 naming the field, and the OpenAPI description says what every answer looks like.
"""

from __future__ import annotations

import pytest
from servicekit import HTTP, EnosClient, Service

from batchd.api.context import OPERATIONS
from batchd.api.openapi import ACTION_DOCS

TOO_BIG = "8864439950020925456384"  # past 2**63 - 1: SQLite and PostgreSQL BIGINT both refuse it


@pytest.mark.parametrize("action", ["get", "export", "loadForEdit", "delete"])
def test_a_flow_id_past_64_bits_is_62102(client: EnosClient, action: str) -> None:
    answer = client.call("GET", "flows", action, query={"flowId": TOO_BIG})
    assert answer["code"] == 62102, answer
    assert answer["msg"] == f'flowId: "{TOO_BIG}" is outside the 64-bit integer range'


def test_a_version_past_64_bits_is_62102(client: EnosClient) -> None:
    answer = client.call("GET", "flows", "get", query={"flowId": 1, "version": "9" * 5000})
    assert answer["code"] == 62102, answer
    assert answer["msg"].startswith("version: ") and answer["msg"].endswith("is outside the 64-bit integer range")


def test_json_numbers_python_cannot_read_are_62102(client: EnosClient) -> None:
    answer = client.call("POST", "flows", "search", raw_body=b'{"expression": ' + b"1" * 5000 + b"}")
    assert answer["code"] == 62102, answer
    assert answer["msg"].startswith("Malformed JSON body: Exceeds the limit")


def test_json_nested_too_deeply_is_62102(client: EnosClient) -> None:
    answer = client.call("POST", "flows", "search", raw_body=b"[" * 100_000 + b"]" * 100_000)
    assert answer == {**answer, "code": 62102, "msg": "Malformed JSON body: nested too deeply"}


def test_token_service_refuses_json_nested_too_deeply(service: Service) -> None:
    response = HTTP.post(f"{service.base_url}/apim-token-service/v2.0/token/get", content=b"[" * 100_000)
    assert response.status_code == 200
    assert response.json()["status"] == 1004


def test_a_page_past_64_bits_of_rows_is_62102(client: EnosClient) -> None:
    big = 2**62
    answer = client.call("POST", "flows", "search", body={"pagination": {"pageNo": big, "pageSize": big}})
    assert answer["code"] == 62102, answer
    assert answer["msg"].startswith("pagination: page ")


def test_description_covers_every_operation() -> None:
    """Every EnOS operation batchd serves (catalogue, time, runs, instances) has its `data` (and
    query/body) in openapi.ACTION_DOCS; only test-only operations registered by tests are left out."""
    import batchd.api.app  # noqa: F401 - registers every operation

    registered = {(op.resource, op.method, op.action) for op in OPERATIONS.all()
                  if op.handler.__module__.startswith("batchd.api.routes.")}
    assert len(registered) == 22  # the spec's 22 operations
    assert registered == set(ACTION_DOCS)


def test_nul_in_a_query_value_is_62102(client: EnosClient) -> None:
    """PostgreSQL text cannot hold NUL: a userId with one crashed the identity lookup there."""
    answer = client.call("GET", "flows", "getMyFlow", query={"userId": "u\x00x"})
    assert answer["code"] == 62102, answer
    assert answer["msg"] == "param: 'userId' has NUL characters, which are not allowed"


def test_nul_in_a_body_string_is_62102_naming_the_field(client: EnosClient) -> None:
    answer = client.call("POST", "directories", "create", body={"dirName": "d", "parentId": "p\x00"})
    assert answer["code"] == 62102, answer
    assert answer["msg"] == "parentId: NUL characters (\\u0000) are not allowed"
    nested = client.call("POST", "flows", "import", body={"flowJson": {"tasks": [{"cmd": "a\x00"}]}})
    assert nested["msg"] == "flowJson.tasks[0].cmd: NUL characters (\\u0000) are not allowed"


def test_token_service_refuses_nul(service: Service) -> None:
    body = {"appKey": "k\x00", "timestamp": 1, "encryption": "x"}
    response = HTTP.post(f"{service.base_url}/apim-token-service/v2.0/token/get", json=body)
    assert response.json()["status"] == 1004
    assert "NUL" in response.json()["msg"]


def test_readyz_documents_its_503(service: Service) -> None:
    """/readyz answers 503 when the database is gone or behind; the description says so."""
    schema = HTTP.get(service.base_url + "/openapi.json").json()
    responses = schema["paths"]["/readyz"]["get"]["responses"]
    assert set(responses) == {"200", "503"}
    assert responses["503"]["content"]["application/json"]["schema"]["required"] == ["status", "reason"]
