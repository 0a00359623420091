"""Many clients at once: no "database is locked", no lost or doubled writes, on either backend."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from servicekit import (
    HTTP,
    Backend,
    EnosClient,
    Service,
    drop_postgres_database,
    fresh_postgres_database,
    start_service,
)

pytestmark = pytest.mark.usefixtures("probe")


def test_parallel_signed_calls_all_succeed(service: Service) -> None:
    # Each call writes (its signature) and reads (its token and user): SQLite must queue them.
    clients = [service.client() for _ in range(8)]
    for each in clients:
        each.token  # noqa: B018 - tokens first, so the burst below is only API calls

    def three_calls(client: EnosClient) -> list[int]:
        return [client.call("GET", "probe", "whoami")["code"] for _ in range(3)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = [code for result in pool.map(three_calls, clients) for code in result]

    assert codes == [0] * 24


def test_readyz_is_503_when_the_database_is_gone(tmp_path: Path) -> None:
    with fresh_postgres_database() as url, start_service(Backend("postgres", url), tmp_path / "home") as running:
        assert HTTP.get(running.base_url + "/readyz").status_code == 200
        drop_postgres_database(url)

        ready = HTTP.get(running.base_url + "/readyz")
        alive = HTTP.get(running.base_url + "/healthz")

    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert "database unreachable" in ready.json()["reason"]
    assert alive.status_code == 200
