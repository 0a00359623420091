"""`batchd admin` and `batchd serve` as an operator uses them."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from servicekit import Backend, newest_schema_revision
from typer.testing import CliRunner

from batchd.cli import app

runner = CliRunner()


def batchd(backend: Backend, home: Path, *args: str) -> tuple[int, str, str]:
    """Run `batchd ARGS` on the backend: SQLite through --home, PostgreSQL via BATCHD_DATABASE_URL."""
    env = {"BATCHD_DATABASE_URL": backend.database_url, "BATCHD_HOME": str(home), "COLUMNS": "200"}
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_bootstrap_prints_exactly_the_credentials_as_json(tmp_path: Path) -> None:
    # The real console script, as an operator's provisioning script would call it.
    completed = subprocess.run(
        [sys.executable, "-m", "batchd", "admin", "bootstrap", "--home", str(tmp_path), "--org", "o1", "--user", "u1",
         "--name", "Alice", "--json"],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )

    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert len(lines) == 1
    credentials = json.loads(lines[0])
    assert list(credentials) == ["orgId", "userId", "accessKey", "secretKey"]
    assert (credentials["orgId"], credentials["userId"]) == ("o1", "u1")
    for key in ("accessKey", "secretKey"):
        assert [len(part) for part in credentials[key].split("-")] == [8, 4, 4, 4, 12]  # UUID-shaped
    assert (tmp_path / "batchd.db").exists()


def test_bootstrap_twice_returns_the_same_org_user_and_key(backend: Backend, tmp_path: Path) -> None:
    first = batchd(backend, tmp_path, "admin", "bootstrap", "--org", "o1", "--user", "u1", "--json")
    second = batchd(backend, tmp_path, "admin", "bootstrap", "--org", "o1", "--user", "u1", "--json")

    assert first[0] == second[0] == 0, first[2] + second[2]
    assert json.loads(first[1]) == json.loads(second[1])


def test_bootstrap_without_json_shows_the_credentials(backend: Backend, tmp_path: Path) -> None:
    code, out, _ = batchd(backend, tmp_path, "admin", "bootstrap", "--org", "o1", "--user", "u1")
    _, as_json, _ = batchd(backend, tmp_path, "admin", "bootstrap", "--org", "o1", "--user", "u1", "--json")

    assert code == 0
    assert json.loads(as_json)["secretKey"] in out


def test_users_add_and_duplicate_user(backend: Backend, tmp_path: Path) -> None:
    batchd(backend, tmp_path, "admin", "bootstrap", "--org", "o1", "--user", "u1")

    added = batchd(backend, tmp_path, "admin", "users", "add", "--org", "o1", "--user", "u2", "--name", "Bob", "--json")
    again = batchd(backend, tmp_path, "admin", "users", "add", "--org", "o1", "--user", "u2")
    no_org = batchd(backend, tmp_path, "admin", "users", "add", "--org", "nope", "--user", "u3")

    assert added[0] == 0
    assert json.loads(added[1]) == {"orgId": "o1", "userId": "u2", "name": "Bob", "locked": False}
    assert again[0] == 1 and "userId: 'u2' already exists" in again[2]
    assert no_org[0] == 1 and "organisation 'nope' does not exist" in no_org[2]


def test_keys_list_revoke_and_bootstrap_issues_a_new_key(backend: Backend, tmp_path: Path) -> None:
    _, out, _ = batchd(backend, tmp_path, "admin", "bootstrap", "--org", "o1", "--user", "u1", "--json")
    original = json.loads(out)

    revoked = batchd(backend, tmp_path, "admin", "keys", "revoke", original["accessKey"])
    _, listed, _ = batchd(backend, tmp_path, "admin", "keys", "list", "--json")
    _, table, _ = batchd(backend, tmp_path, "admin", "keys", "list")
    _, out, _ = batchd(backend, tmp_path, "admin", "bootstrap", "--org", "o1", "--user", "u1", "--json")
    unknown = batchd(backend, tmp_path, "admin", "keys", "revoke", "no-such-key")

    assert revoked[0] == 0 and original["accessKey"] in revoked[1]
    [key] = json.loads(listed)
    assert key["accessKey"] == original["accessKey"] and key["revokedAt"] is not None
    assert original["secretKey"] not in listed + table  # listing never shows secrets
    assert original["accessKey"] in table
    renewed = json.loads(out)
    assert renewed["accessKey"] != original["accessKey"]
    assert (renewed["orgId"], renewed["userId"]) == ("o1", "u1")
    assert unknown[0] == 1 and "does not exist" in unknown[2]


def test_keys_create_adds_a_second_key(backend: Backend, tmp_path: Path) -> None:
    batchd(backend, tmp_path, "admin", "bootstrap", "--org", "o1", "--user", "u1")

    code, out, _ = batchd(backend, tmp_path, "admin", "keys", "create", "--org", "o1", "--json")
    _, listed, _ = batchd(backend, tmp_path, "admin", "keys", "list", "--org", "o1", "--json")

    assert code == 0
    assert json.loads(out)["accessKey"] in {key["accessKey"] for key in json.loads(listed)}
    assert len(json.loads(listed)) == 2


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "example.org"])
def test_serve_insecure_off_loopback_is_refused_with_exit_2(tmp_path: Path, host: str) -> None:
    result = runner.invoke(app, ["serve", "--insecure", "--host", host, "--home", str(tmp_path)], env={"COLUMNS": "200"})

    assert result.exit_code == 2
    assert "--insecure" in result.stderr and "loopback" in result.stderr
    assert not (tmp_path / "batchd.db").exists()  # refused before anything started


def test_serve_starts_the_service_and_stops_on_sigterm(tmp_path: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = subprocess.Popen(
        [sys.executable, "-m", "batchd", "serve", "--port", str(port), "--home", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, server.stderr and server.stderr.read()
                time.sleep(0.1)
        unsigned = httpx.get(f"http://127.0.0.1:{port}/batch-processing-service/v2.1/time?action=getCurrentTime")
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)

    assert ready.json() == {"status": "ready", "schema": newest_schema_revision()}
    assert unsigned.status_code == 401  # secure by default
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status says why it stopped.
    assert server.returncode in (0, -signal.SIGTERM)
    assert f"batchd serving on http://127.0.0.1:{port}" in err
    assert '"path": "/readyz"' in out  # the JSON access log
