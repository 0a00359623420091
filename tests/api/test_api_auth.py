"""Authentication as an EnOS application sees it: token service, signed calls, identity checks."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from servicekit import EnosClient, Service

from batchd.clock import now_ms
from batchd.store import identity
from batchd.store.tables import access_tokens


def current_time(client: EnosClient, **options: object) -> dict:
    return client.request("GET", "time", "getCurrentTime", **options).json()


pytestmark = pytest.mark.usefixtures("probe")


# --- token service ---------------------------------------------------------------------------


def test_token_get_answers_in_the_token_service_format(client: EnosClient) -> None:
    answer = client.token_request("get")

    assert answer["status"] == 0
    assert answer["msg"] == "SUCCESS"
    assert answer["business"] == "apim-token-service"
    assert answer["data"]["expire"] == 7200
    assert len(answer["data"]["accessToken"]) >= 32


def test_token_get_accepts_the_timestamp_as_a_string(client: EnosClient) -> None:
    timestamp = str(client.timestamp())

    answer = client.token_request("get", timestamp=timestamp, encryption=client.encryption(timestamp))

    assert answer["status"] == 0


def test_refresh_replaces_the_token(client: EnosClient) -> None:
    old = client.token

    answer = client.token_request("refresh", accessToken=old)

    assert answer["status"] == 0, answer
    new = answer["data"]["accessToken"]
    assert new != old
    client._token = new
    assert current_time(client)["code"] == 0
    client._token = old
    assert client.request("GET", "time", "getCurrentTime").status_code == 401


def test_token_service_rejections_carry_their_status_codes(service: Service, client: EnosClient) -> None:
    stranger = EnosClient(service.base_url, "00000000-0000-0000-0000-000000000000", "x", "o", "u")
    wrong_secret = EnosClient(service.base_url, client.access_key, "not-the-secret", "o", "u")
    timestamp = client.timestamp()
    replayed = {"timestamp": timestamp, "encryption": client.encryption(timestamp)}

    assert client.token_request("get", **replayed)["status"] == 0
    assert client.token_request("get", **replayed)["status"] == 1001
    assert stranger.token_request("get")["status"] == 1002
    assert wrong_secret.token_request("get")["status"] == 1003
    assert client.token_request("get", appKey="")["status"] == 1004
    stale = client.timestamp() - 10 * 60 * 1000
    answer = client.token_request("get", timestamp=stale, encryption=client.encryption(stale))
    assert answer["status"] == 1004
    assert "timestamp" in answer["msg"]
    assert client.token_request("refresh", accessToken="no-such-token")["status"] == 1204


def test_refresh_of_an_expired_token_is_1203(service: Service, client: EnosClient) -> None:
    token = client.token
    expire_all_tokens(service)

    assert client.token_request("refresh", accessToken=token)["status"] == 1203


def test_revoked_key_gets_no_token_and_its_tokens_stop_working(service: Service, client: EnosClient) -> None:
    assert current_time(client)["code"] == 0

    service.in_transaction(lambda conn: identity.revoke_service_account(conn, client.access_key))

    refused = client.request("GET", "time", "getCurrentTime")
    assert refused.status_code == 401
    assert "revoked" in refused.json()["msg"]
    assert client.token_request("get")["status"] == 1002


# --- signed calls ----------------------------------------------------------------------------


def assert_unauthorized(response, reason: str) -> None:
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == 401
    assert body["data"] is None
    assert reason in body["msg"], body["msg"]


def test_a_signed_call_with_query_and_body_is_accepted(client: EnosClient) -> None:
    # The signature covers sorted query parameters and the raw body; a body on a GET still counts.
    answer = client.call("GET", "time", "getTimeZone", query={"zz": "last", "aa": "first"}, body={"x": [1, 2]})

    assert answer["code"] == 0


def test_missing_headers_are_refused(client: EnosClient) -> None:
    assert_unauthorized(client.request("GET", "time", "getCurrentTime", sign=False), "missing header")
    assert_unauthorized(
        client.request("GET", "time", "getCurrentTime", headers={"apim-signature": ""}), "apim-signature"
    )


def test_unknown_token_is_refused(client: EnosClient) -> None:
    assert_unauthorized(
        client.request("GET", "time", "getCurrentTime", headers={"apim-accesstoken": "forged"}), "unknown access token"
    )


def test_expired_token_is_refused(service: Service, client: EnosClient) -> None:
    client.token  # noqa: B018 - fetch it before expiring it
    expire_all_tokens(service)

    assert_unauthorized(client.request("GET", "time", "getCurrentTime"), "expired")


def test_bad_signature_is_refused(client: EnosClient) -> None:
    response = client.request("GET", "time", "getCurrentTime", headers={"apim-signature": "0" * 64})

    assert_unauthorized(response, "apim-signature does not match")


def test_tampered_body_is_refused(client: EnosClient) -> None:
    timestamp = client.timestamp()
    query = {"action": "getCurrentTime", "orgId": client.org_id, "userId": client.user_id}
    signed_for_other_body = client.signature(client.token, query, b'{"a":1}', timestamp)

    response = client.request(
        "GET", "time", "getCurrentTime", body={"a": 2},
        headers={"apim-timestamp": str(timestamp), "apim-signature": signed_for_other_body},
    )

    assert_unauthorized(response, "apim-signature does not match")


def test_stale_timestamp_is_refused_even_when_correctly_signed(client: EnosClient) -> None:
    stale = client.timestamp() - 6 * 60 * 1000
    query = {"action": "getCurrentTime", "orgId": client.org_id, "userId": client.user_id}
    headers = {"apim-timestamp": str(stale), "apim-signature": client.signature(client.token, query, b"", stale)}

    assert_unauthorized(client.request("GET", "time", "getCurrentTime", headers=headers), "apim-timestamp")


def test_replayed_request_is_refused(client: EnosClient) -> None:
    timestamp = client.timestamp()
    query = {"action": "getCurrentTime", "orgId": client.org_id, "userId": client.user_id}
    headers = {"apim-timestamp": str(timestamp), "apim-signature": client.signature(client.token, query, b"", timestamp)}

    first = client.request("GET", "time", "getCurrentTime", headers=headers)
    second = client.request("GET", "time", "getCurrentTime", headers=headers)

    assert first.json()["code"] == 0
    assert_unauthorized(second, "replayed")


# --- identity: orgId/userId against the service account ---------------------------------------


def test_org_of_another_service_account_is_62101(client: EnosClient, other_org_client: EnosClient) -> None:
    answer = client.call("GET", "probe", "whoami", query={"orgId": other_org_client.org_id})

    assert answer["code"] == 62101
    assert answer["data"] is None


def test_user_of_another_org_is_62101(client: EnosClient, other_org_client: EnosClient) -> None:
    answer = client.call("GET", "probe", "whoami", query={"userId": other_org_client.user_id})

    assert answer["code"] == 62101
    assert answer["msg"].startswith("userId does not exist, or it does not match to orgId.")


def test_unknown_user_is_62101(client: EnosClient) -> None:
    assert client.as_user("nobody").call("GET", "probe", "whoami")["code"] == 62101


def test_missing_user_id_is_62102_naming_it(client: EnosClient) -> None:
    answer = client.call("GET", "probe", "whoami", query={"userId": None})

    assert answer["code"] == 62102
    assert "userId" in answer["msg"]


def test_the_handler_sees_the_calling_user(client: EnosClient) -> None:
    answer = client.call("GET", "probe", "whoami", query={"empty": "", "flowId": "7"}, body={"k": "v"})

    assert answer["code"] == 0
    assert answer["data"] == {
        "orgId": client.org_id, "userId": client.user_id, "name": "tester", "locked": False,
        "query": {"action": "whoami", "orgId": client.org_id, "userId": client.user_id, "flowId": "7"},
        "body": {"k": "v"},
    }


def test_a_second_user_of_the_org_calls_as_itself(make_user) -> None:
    answer = make_user("u-second", name="Second", locked=True).call("GET", "probe", "whoami")

    assert answer["code"] == 0
    assert (answer["data"]["userId"], answer["data"]["name"], answer["data"]["locked"]) == ("u-second", "Second", True)


def test_time_operations_need_no_user_but_need_auth(client: EnosClient) -> None:
    anonymous = client.as_user("")
    answer = anonymous.call("GET", "time", "getCurrentTime", query={"userId": None, "orgId": None})

    assert answer["code"] == 0
    assert client.request("GET", "time", "getCurrentTime", sign=False).status_code == 401


def expire_all_tokens(service: Service) -> None:
    service.in_transaction(lambda conn: conn.execute(sa.update(access_tokens).values(expires_at=now_ms() - 1)))
