"""Fixtures shared by every test: database backends, a running batchd, and EnOS-style clients.

Black-box API tests need four names (keep them stable; other areas' tests use them):

- `backend` — parametrised over `"sqlite"` and `"postgres"`: a `Backend(name, database_url)` with
  a fresh, empty database per test (a new SQLite file; a new PostgreSQL database, dropped after).
  PostgreSQL comes from `BATCHD_TEST_POSTGRES_URL` (exported by `scripts/services`, which
  `scripts/dev test` sources); if unset, this file runs `scripts/services` itself. Postgres tests
  never skip: no server means they fail.
- `service` — a real batchd (uvicorn on a free 127.0.0.1 port, in a thread) on a fresh home and
  the `backend` database, with one organisation, user and service account bootstrapped.
  A `Service` has `base_url`, `settings`, `credentials` (`org_id`, `user_id`, `access_key`,
  `secret_key`), `client(...)` to build more clients, and `in_transaction(work)` to run
  `async work(conn)` on the service's database (for arranging or checking rows directly).
- `client` — an `EnosClient` for the bootstrapped user. It fetches a token from the token service
  and signs every call exactly as EnOS clients do:
      envelope = client.call("POST", "flows", "import", query={...}, body={...})  # -> dict
      response = client.request("GET", "flows", "get", query={"flowId": 1})       # -> httpx.Response
  `userId`/`orgId` are added to the query (pass `query={"userId": None}` to leave one out).
- `make_user` — `make_user(user_id=None, *, name=None, locked=False) -> EnosClient`: adds a user to
  the service's organisation and returns a client calling as that user (same service account).
- `other_org_client` — an `EnosClient` for a user of a second organisation with its own key.

Helpers live in tests/servicekit.py (`from servicekit import EnosClient, Service, start_service`);
tests that need an insecure server or other settings use `start_service(backend, home, ...)`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from servicekit import Backend, EnosClient, Service, fresh_postgres_database, start_service

from batchd.store import identity


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'batchd.db'}")
    else:
        with fresh_postgres_database() as url:
            yield Backend("postgres", url)


@pytest.fixture
def service(backend: Backend, tmp_path: Path) -> Iterator[Service]:
    with start_service(backend, tmp_path / "home") as running:
        yield running


@pytest.fixture
def client(service: Service) -> EnosClient:
    return service.client()


@pytest.fixture
def make_user(service: Service) -> Callable[..., EnosClient]:
    def make(user_id: str | None = None, *, name: str | None = None, locked: bool = False) -> EnosClient:
        new_id = user_id or f"u-{uuid.uuid4().hex[:8]}"
        org_id = service.credentials.org_id
        service.in_transaction(
            lambda conn: identity.add_user(conn, org_id=org_id, user_id=new_id, name=name or new_id, locked=locked)
        )
        return service.client().as_user(new_id)

    return make


@pytest.fixture
def other_org_client(service: Service) -> EnosClient:
    return service.client(service.bootstrap("o-other", "u-other", "other tester"))
