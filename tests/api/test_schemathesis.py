"""Schemathesis against the OpenAPI description a running batchd serves at /openapi.json.

Every operation in the description (each v2.1 path and method, the token service, health) is
called with generated requests, and every answer must be:

- no server error: no HTTP 5xx (`not_a_server_error`), and no envelope with code 62109
  "Internal server exception" either — batchd answers unexpected failures in an HTTP 200
  envelope (docs/decisions.md), so a bug would hide from an HTTP-status-only check;
- documented: status code, content type and body shape all as the description says
  (`status_code_conformance`, `content_type_conformance`, `response_schema_conformance`).

The server runs with `--insecure` (loopback only) so that generated requests are not all
stopped by the signature check; `userId`/`orgId` are the bootstrapped user's, so the calls reach
the handlers. Signed mode is what the rest of the API suite covers (the `client` fixture).
Bounded and deterministic: few examples per operation, `derandomize=True`, no example database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis
import jsonschema_rs
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import CheckContext
from schemathesis.core.failures import Failure
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from servicekit import API, HTTP, Backend, Service, start_service

from batchd.api.openapi import ACTION_DOCS, DATA_SCHEMAS
from batchd.errors import InternalError

MAX_EXAMPLES = 45  # per operation and mode: ~60 s for both backends (-n 2) with the machine at load 8


class InternalServerException(Failure):
    """An HTTP 200 envelope with code 62109: an unexpected exception inside batchd."""


@schemathesis.check
def no_internal_error_envelope(ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> bool:
    try:
        body = response.json()
    except Exception:  # noqa: BLE001 - non-JSON answers are the conformance checks' business
        return True
    if isinstance(body, dict) and body.get("code") == InternalError.code:
        raise InternalServerException(
            operation=case.operation.label,
            title="Internal server exception in an envelope",
            message=f"HTTP {response.status_code} envelope with code {InternalError.code}: {body}",
        )
    return True


class DataNotAsDocumented(Failure):
    """A successful answer whose `data` is not the documented shape of its action."""


_DATA_VALIDATORS: dict[tuple[str, str, str], jsonschema_rs.Validator] = {}


def _data_validator(key: tuple[str, str, str]) -> jsonschema_rs.Validator:
    if key not in _DATA_VALIDATORS:
        # `$ref`s point at #/components/schemas/..., so the components travel in the same document.
        document = {**ACTION_DOCS[key]["data"], "components": {"schemas": DATA_SCHEMAS}}
        _DATA_VALIDATORS[key] = jsonschema_rs.validator_for(document)
    return _DATA_VALIDATORS[key]


@schemathesis.check
def data_matches_action(ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> bool:
    """One path serves many actions, so the description's 200 schema is the union of their `data`;
    this checks the documented `data` of the very action that was called."""
    resource = case.operation.path.rsplit("/", 1)[-1]
    key = (resource, case.operation.method.upper(), str((case.query or {}).get("action")))
    try:
        body = response.json()
    except Exception:  # noqa: BLE001 - non-JSON answers are the conformance checks' business
        return True
    if key not in ACTION_DOCS or not isinstance(body, dict) or body.get("code") != 0:
        return True
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in _data_validator(key).iter_errors(body["data"])]
    if errors:
        raise DataNotAsDocumented(
            operation=case.operation.label,
            title=f"`data` of {key[1]} {key[0]}?action={key[2]} is not as documented",
            message="\n".join(errors[:10]),
        )
    return True


@pytest.fixture
def insecure_service(backend: Backend, tmp_path: Path) -> Iterator[Service]:
    with start_service(backend, tmp_path / "home", insecure=True) as running:
        yield running


@pytest.fixture
def api_schema(insecure_service: Service) -> schemathesis.BaseSchema:
    # No `servers` in the description: calls go to the host it was loaded from.
    return schemathesis.openapi.from_url(f"{insecure_service.base_url}/openapi.json")


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    no_internal_error_envelope,
    data_matches_action,
]


SEED_FLOW = json.loads((Path(__file__).parent.parent / "catalog" / "fixtures" / "seed_import_flow.json").read_text())


@dataclass(frozen=True)
class Known:
    """Real values of the running service, which generated requests may use in place of their own,
    so that valid requests reach past "does not exist" into the operations' real work."""

    caller: dict[str, str]
    dir_id: str
    flow_ids: tuple[int, ...]

    @classmethod
    def seed(cls, service: Service) -> Known:
        ids = service.credentials
        caller = {"userId": ids.user_id, "orgId": ids.org_id}

        def call(method: str, resource: str, action: str, body: Any = None, **query: Any) -> Any:
            response = HTTP.request(method, f"{service.base_url}{API}/{resource}",
                                    params={"action": action, **caller, **query}, json=body)
            assert response.status_code == 200 and response.json()["code"] == 0, response.text
            return response.json()["data"]

        dir_id = call("GET", "directories", "listWorkFlowDirs")[0]["key"]
        flow_ids = []
        for n in range(8):
            body = {**SEED_FLOW, "dirId": dir_id, "flowName": f"seed-{n}"}
            flow_ids.append(call("POST", "flows", "import", body)["flowId"])
        return cls(caller, dir_id, tuple(flow_ids))

    def ground(self, case: schemathesis.Case, data: st.DataObject) -> None:
        """Swap some generated ids and documents for real ones (drawn, so runs stay deterministic)."""
        if case.query is not None and "userId" in case.query:
            case.query.update(self.caller)
        takes_flow_id = case.query is not None and case.query.get("action") in ("get", "loadForEdit", "export", "delete")
        if case.query is not None and ("flowId" in case.query or takes_flow_id) and data.draw(st.booleans()):
            case.query["flowId"] = data.draw(st.sampled_from(self.flow_ids))
            case.query.pop("version", None) if data.draw(st.booleans()) else None
        if isinstance(case.body, dict):
            for name in ("flowId", "id"):
                if name in case.body and data.draw(st.booleans()):
                    case.body[name] = data.draw(st.sampled_from(self.flow_ids))
            for name in ("dirId", "parentId"):
                if name in case.body and data.draw(st.booleans()):
                    case.body[name] = self.dir_id
            if "flowJson" in case.body and data.draw(st.booleans()):
                case.body["flowJson"] = SEED_FLOW["flowJson"]


def fuzz(operation: schemathesis.APIOperation, mode: schemathesis.GenerationMode, known: Known) -> None:
    """Call `operation` with up to MAX_EXAMPLES generated requests of `mode`; raise on the first failure.

    Valid requests run as the bootstrapped user and may use the service's real ids (`known`),
    so they get past the identity and existence checks into the handlers; invalid ones are sent
    as generated.
    """

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],  # report the first failure, unshrunk
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def run(case: schemathesis.Case, data: st.DataObject) -> None:
        if mode is schemathesis.GenerationMode.POSITIVE:
            known.ground(case, data)
        case.call_and_validate(checks=CHECKS)

    run()


def test_every_operation_answers_as_documented(api_schema: schemathesis.BaseSchema, insecure_service: Service) -> None:
    """Every operation, valid and invalid requests; all failures are reported together."""
    known = Known.seed(insecure_service)
    failures: list[str] = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()  # an invalid description fails here
        operations += 1
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            try:
                fuzz(operation, mode, known)
            except hypothesis.errors.Unsatisfiable:
                pass  # nothing to make invalid (no parameters, no body): the positive run covers it
            except Exception as exc:  # noqa: BLE001 - collected, then reported together
                failures.append(f"--- {operation.label} ({mode.value}) ---\n{exc}")
    assert operations >= 8, f"only {operations} operations in the description"
    assert not failures, "\n\n".join(failures)
