"""Settings: where each value comes from, and the values refused before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchd.config import DEFAULT_MAX_BODY_BYTES, Settings, SettingsError, is_loopback, machine_timezone


def test_defaults_put_everything_under_home(tmp_path: Path) -> None:
    settings = Settings.load(home=tmp_path, environ={})

    assert settings.home == tmp_path.resolve()
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'batchd.db'}"
    assert (settings.host, settings.port, settings.insecure) == ("127.0.0.1", 8080, False)
    assert settings.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 1024 * 1024
    assert settings.timezone == machine_timezone()


def test_default_home_is_dot_batchd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))

    assert Settings.load(environ={}).home == tmp_path.resolve() / ".batchd"
    assert Settings.load(environ={"BATCHD_HOME": str(tmp_path / "h")}).home == tmp_path.resolve() / "h"


def test_arguments_beat_environment_beat_file(tmp_path: Path) -> None:
    (tmp_path / "batchd.toml").write_text(
        'port = 7000\ntimezone = "Europe/Berlin"\nhost = "::1"\ndatabase_url = "sqlite+aiosqlite:///x.db"\n'
    )
    env = {"BATCHD_PORT": "7001", "BATCHD_TIMEZONE": "Asia/Shanghai"}

    from_file = Settings.load(home=tmp_path, environ={})
    from_env = Settings.load(home=tmp_path, environ=env)
    from_args = Settings.load(home=tmp_path, environ=env, port=7002, timezone="UTC")

    assert (from_file.port, from_file.timezone, from_file.host) == (7000, "Europe/Berlin", "::1")
    assert from_file.database_url == "sqlite+aiosqlite:///x.db"
    assert (from_env.port, from_env.timezone) == (7001, "Asia/Shanghai")
    assert (from_args.port, from_args.timezone) == (7002, "UTC")


def test_database_url_from_environment(tmp_path: Path) -> None:
    url = "postgresql+psycopg://u:p@127.0.0.1:5432/batchd"

    assert Settings.load(home=tmp_path, environ={"BATCHD_DATABASE_URL": url}).database_url == url


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone: 'Mars/Olympus' is not an IANA time zone name"),
        ({"port": 70000}, "port: 70000 is out of range"),
        ({"max_body_bytes": 0}, "max_body_bytes: 0 must be positive"),
        ({"insecure": True, "host": "0.0.0.0"}, "only allowed on a loopback address"),
        ({"insecure": True, "host": "192.168.1.5"}, "refusing to listen on '192.168.1.5'"),
    ],
)
def test_bad_settings_are_refused_with_the_setting_named(tmp_path: Path, options: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.load(home=tmp_path, environ={}, **options)


def test_unknown_or_broken_config_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "batchd.toml").write_text("prot = 1\n")
    with pytest.raises(SettingsError, match="unknown setting.*prot"):
        Settings.load(home=tmp_path, environ={})
    (tmp_path / "batchd.toml").write_text("port = \n")
    with pytest.raises(SettingsError, match="batchd.toml"):
        Settings.load(home=tmp_path, environ={})


def test_insecure_is_not_taken_from_the_environment_or_file(tmp_path: Path) -> None:
    assert Settings.load(home=tmp_path, environ={"BATCHD_INSECURE": "1"}).insecure is False


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.8.0.1", True), ("::1", True),
                                                 ("[::1]", True), ("localhost", True), ("0.0.0.0", False),
                                                 ("example.org", False), ("10.0.0.1", False)])
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
