"""Test kit: database backends, a batchd running in a thread, and an EnOS-style client.

The fixtures in tests/conftest.py are built from these; import them for types and for
`start_service` (e.g. an insecure server): `from servicekit import EnosClient, Service`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest
import sqlalchemy as sa
import uvicorn
from sqlalchemy.ext.asyncio import AsyncConnection

from batchd.api.app import create_app
from batchd.config import Settings
from batchd.store import identity
from batchd.store.database import run_once
from batchd.store.identity import Credentials

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
API = "/batch-processing-service/v2.1"
TOKEN_SERVICE = "/apim-token-service/v2.0/token"
# One HTTP client for the whole run: a new one per request costs ~20 ms of TLS context set-up.
HTTP = httpx.Client(timeout=30)


# --- database backends -----------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    name: str  # "sqlite" or "postgres"
    database_url: str


_postgres_url: str | None = None


def postgres_server_url() -> str:
    """URL of the test PostgreSQL server (its `postgres` database), starting it when needed."""
    global _postgres_url
    if _postgres_url is None:
        url = os.environ.get("BATCHD_TEST_POSTGRES_URL")
        if not url:
            started = subprocess.run(
                ["bash", str(ROOT / "scripts" / "services")], capture_output=True, text=True, timeout=600
            )
            if started.returncode != 0 or not started.stdout.strip():
                pytest.fail(f"PostgreSQL is not available and scripts/services failed:\n{started.stderr}")
            url = started.stdout.strip().splitlines()[-1]
        _postgres_url = url
    return _postgres_url


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test; dropped (connections and all) afterwards."""
    name = f"batchd_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(_maintenance_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = sa.make_url(postgres_server_url()).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        drop_postgres_database(url)


def drop_postgres_database(url: str) -> None:
    """Drop the database of `url` now, cutting off whoever is connected (e.g. a running batchd)."""
    name = sa.make_url(url).database
    with psycopg.connect(_maintenance_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _maintenance_url() -> str:
    # psycopg's own URL form: the server's `postgres` database, without SQLAlchemy's driver suffix.
    return sa.make_url(postgres_server_url()).set(drivername="postgresql").render_as_string(hide_password=False)


def run_in_transaction(settings: Settings, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run `async work(conn)` in one transaction on `settings`' database (migrated first)."""
    return asyncio.run(run_once(settings, work))


# --- an EnOS client ----------------------------------------------------------------------------


@dataclass
class EnosClient:
    """Calls batchd the way EnOS applications do: token service, then signed requests.

    Written from the spec (§6), independently of the server's code, so it checks the server.
    """

    base_url: str
    access_key: str
    secret_key: str
    org_id: str
    user_id: str
    _token: str | None = field(default=None, repr=False)
    _last_timestamp: int = field(default=0, repr=False)

    def timestamp(self) -> int:
        """Now in epoch ms, strictly increasing: two identical calls in one millisecond would
        otherwise carry the same signature and the second would be refused as a replay."""
        self._last_timestamp = max(time.time_ns() // 1_000_000, self._last_timestamp + 1)
        return self._last_timestamp

    def encryption(self, timestamp: int | str) -> str:
        return hashlib.sha256(f"{self.access_key}{timestamp}{self.secret_key}".encode()).hexdigest()

    def token_request(self, operation: str = "get", **fields: Any) -> dict[str, Any]:
        """POST to the token service (`get` or `refresh`); `fields` override or extend the body."""
        timestamp = self.timestamp()
        body = {"appKey": self.access_key, "encryption": self.encryption(timestamp), "timestamp": timestamp, **fields}
        response = HTTP.post(f"{self.base_url}{TOKEN_SERVICE}/{operation}", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    @property
    def token(self) -> str:
        if self._token is None:
            answer = self.token_request("get")
            assert answer["status"] == 0, answer
            self._token = answer["data"]["accessToken"]
        return self._token

    def signature(self, token: str, query: dict[str, str], body: bytes, timestamp: int | str) -> str:
        params = "".join(f"{name}{query[name]}" for name in sorted(query))
        return hashlib.sha256(token.encode() + params.encode() + body + f"{timestamp}{self.secret_key}".encode()).hexdigest()

    def request(
        self,
        method: str,
        resource: str,
        action: str | None = None,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        raw_body: bytes | None = None,
        headers: dict[str, str] | None = None,
        sign: bool = True,
    ) -> httpx.Response:
        """One call; `headers` override the signing headers (to test rejections)."""
        full_query: dict[str, Any] = {"userId": self.user_id, "orgId": self.org_id}
        if action is not None:
            full_query["action"] = action
        full_query.update(query or {})
        params = {name: str(value) for name, value in full_query.items() if value is not None}
        content = raw_body if raw_body is not None else (b"" if body is None else json.dumps(body).encode())
        sent_headers = {"Content-Type": "application/json;charset=UTF-8"}
        if sign:
            timestamp = self.timestamp()
            sent_headers |= {
                "apim-accesstoken": self.token,
                "apim-timestamp": str(timestamp),
                "apim-signature": self.signature(self.token, params, content, timestamp),
            }
        sent_headers |= headers or {}
        return HTTP.request(method, f"{self.base_url}{API}/{resource}", params=params, content=content, headers=sent_headers)

    def call(self, method: str, resource: str, action: str, **options: Any) -> dict[str, Any]:
        """One call whose answer must be an HTTP 200 envelope; returns the envelope."""
        response = self.request(method, resource, action, **options)
        assert response.status_code == 200, f"HTTP {response.status_code}: {response.text}"
        return response.json()

    def as_user(self, user_id: str) -> EnosClient:
        """The same service account, calling on behalf of another user."""
        return EnosClient(self.base_url, self.access_key, self.secret_key, self.org_id, user_id)


# --- a running service -------------------------------------------------------------------------


@dataclass
class Service:
    base_url: str
    settings: Settings
    credentials: Credentials

    def client(self, credentials: Credentials | None = None) -> EnosClient:
        c = credentials or self.credentials
        return EnosClient(self.base_url, c.access_key, c.secret_key, c.org_id, c.user_id)

    def in_transaction(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        return run_in_transaction(self.settings, work)

    def bootstrap(self, org_id: str, user_id: str, user_name: str | None = None) -> Credentials:
        return self.in_transaction(
            lambda conn: identity.bootstrap(conn, org_id=org_id, user_id=user_id, user_name=user_name or user_id)
        )


@contextmanager
def start_service(backend: Backend, home: Path, *, insecure: bool = False, **settings: Any) -> Iterator[Service]:
    """Run batchd in a thread on a free loopback port until the block ends."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = Settings.load(
        home=home, database_url=backend.database_url, host="127.0.0.1", port=port, insecure=insecure,
        environ={}, **settings,
    )
    credentials = run_in_transaction(
        config, lambda conn: identity.bootstrap(conn, org_id="o-test", user_id="u-test", user_name="tester")
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), log_config=None, access_log=False, lifespan="on", log_level="warning")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("batchd did not start (see captured output)")
        time.sleep(0.005)
    try:
        yield Service(f"http://127.0.0.1:{port}", config, credentials)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def newest_schema_revision() -> str:
    """The head of batchd's migrations, which a migrated database reports on /readyz."""
    from importlib import resources

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(resources.files("batchd.store") / "migrations"))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


async def bootstrap_root(conn: AsyncConnection, caller: Any) -> str:
    """`caller`'s organisation and user created (idempotently) straight on the tables; the key of
    its root directory, where engine scenarios import their workflows."""
    from batchd.catalog import directories
    from batchd.store import identity

    await identity.bootstrap(conn, org_id=caller.org_id, user_id=caller.user_id, user_name=caller.user_name)
    return (await directories.list_directories(conn, caller))[0]["key"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_process(home: Path, database_url: str, port: int, *, parallelism: int | None = None,
                  launcher: list[str] | None = None, env: dict[str, str] | None = None
                  ) -> Iterator[subprocess.Popen[bytes]]:
    """A real `batchd serve --insecure` process on loopback `port` (`python -m batchd`, or
    `python <launcher...>` with batchd's arguments after it), once it accepts connections;
    terminated afterwards. Its stderr goes to `<home>/server-<port>.err`. Without `parallelism`,
    the slots batchd would choose itself."""
    environment = {**os.environ, "BATCHD_DATABASE_URL": database_url, "BATCHD_TIMEZONE": "UTC", **(env or {})}
    if parallelism is not None:
        environment["BATCHD_PARALLELISM"] = str(parallelism)
    start = [sys.executable, *(launcher or ["-m", "batchd"])]
    errors = home / f"server-{port}.err"
    process = subprocess.Popen(
        [*start, "serve", "--insecure", "--host", "127.0.0.1", "--port", str(port), "--home", str(home)],
        env=environment, stdout=subprocess.DEVNULL, stderr=open(errors, "wb"),  # noqa: SIM115
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                assert process.poll() is None, errors.read_text()
                assert time.monotonic() < deadline, "batchd serve did not start"
                time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def insecure_call(client: EnosClient, method: str, resource: str, action: str, **options: Any) -> Any:
    """One unsigned call to a server started `--insecure`; its `data`, the envelope's code
    asserted 0."""
    envelope = client.call(method, resource, action, sign=False, **options)
    assert envelope["code"] == 0, envelope
    return envelope["data"]


class IdleExecutor:
    """An executor for scenarios that drive the engine's steps by hand: nothing may run on it."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, *_: object) -> None:
        raise AssertionError("nothing runs in this scenario")


async def claim_single_task(database: Any, org_id: str, flow_name: str, *, owner: Any, now: int, lease_ms: int,
                            cache: Any, log_of: Callable[[str, str], Path]) -> Any:
    """A one-task workflow (`sleep 600`, retryLimit 1) imported, triggered and its task claimed
    by `owner` at `now`, straight on the engine's tables (no server): the start of the crash
    and lease scenarios. Returns the `progress.Claim`."""
    from batchd.api.context import Caller
    from batchd.catalog import flows
    from batchd.engine import progress
    from batchd.engine.instances import create_flow_instance

    caller = Caller(org_id=org_id, user_id=f"u-{org_id}", user_name="tester")
    async with database.transaction() as conn:
        root = await bootstrap_root(conn, caller)
        flow_id = (await flows.import_flow(conn, caller, {"flowName": flow_name, "dirId": root, "flowJson": {
            "type": 0, "cycle": "D", "cron": "",
            "tasks": [{"name": "t", "type": "COMMAND", "cmd": "sleep 600", "retryLimit": 1}]}}))["flowId"]
        await create_flow_instance(conn, flow_id=flow_id, trigger_time_ms=0, origin="manual")
    async with database.transaction() as conn:
        await conn.run_sync(progress.schedule_pass, now, cache)
        (claim,) = await conn.run_sync(progress.claim_ready, owner, 1, now, lease_ms, cache, log_of)
    return claim


async def flow_status_once_done(database: Any, instance_id: str, *, tries: int, pause_s: float,
                                each_try: Callable[[], None] | None = None) -> int:
    """The status of flow instance `instance_id`, read every `pause_s` until it is SUCCESS or
    `tries` reads were made (then the last one read); `each_try` runs before every read."""
    from batchd.engine.status import Status
    from batchd.store.tables import flow_instances

    status = None
    for _ in range(tries):
        if each_try is not None:
            each_try()
        async with database.read_transaction() as conn:
            status = (await conn.execute(sa.select(flow_instances.c.status).where(
                flow_instances.c.instance_id == instance_id))).scalar_one()
        if status == Status.SUCCESS:
            break
        await asyncio.sleep(pause_s)
    assert status is not None
    return status
