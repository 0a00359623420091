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

from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import CheckContext
from schemathesis.core.failures import Failure
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from servicekit import Backend, Service, start_service

from batchd.errors import InternalError

MAX_EXAMPLES = 40


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
]


def fuzz(operation: schemathesis.APIOperation, mode: schemathesis.GenerationMode, caller: dict[str, str]) -> None:
    """Call `operation` with up to MAX_EXAMPLES generated requests of `mode`; raise on the first failure.

    Valid requests run as the bootstrapped user (`caller`), so they get past the identity check
    into the handlers; invalid ones keep whatever identity was generated.
    """

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],  # report the first failure, unshrunk
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        if mode is schemathesis.GenerationMode.POSITIVE and case.query is not None and "userId" in case.query:
            case.query.update(caller)
        case.call_and_validate(checks=CHECKS)

    run()


def test_every_operation_answers_as_documented(api_schema: schemathesis.BaseSchema, insecure_service: Service) -> None:
    """Every operation, valid and invalid requests; all failures are reported together."""
    ids = insecure_service.credentials
    caller = {"userId": ids.user_id, "orgId": ids.org_id}
    failures: list[str] = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()  # an invalid description fails here
        operations += 1
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            try:
                fuzz(operation, mode, caller)
            except hypothesis.errors.Unsatisfiable:
                pass  # nothing to make invalid (no parameters, no body): the positive run covers it
            except Exception as exc:  # noqa: BLE001 - collected, then reported together
                failures.append(f"--- {operation.label} ({mode.value}) ---\n{exc}")
    assert operations >= 8, f"only {operations} operations in the description"
    assert not failures, "\n\n".join(failures)
