"""Settings of one batchd installation, read once at start-up.

A value comes from the first of: an explicit argument (the CLI's options), the environment
(`BATCHD_*`), the config file `<home>/batchd.toml`, the default. Everything else in batchd takes a
`Settings` and never reads the environment itself, so tests build one and get exactly that.

`insecure` is deliberately not readable from the environment or the file: turning
authentication off must be visible on the command line that starts the server.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from batchd.errors import InvalidParameter

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
CONFIG_FILE_NAME = "batchd.toml"

# Keys accepted in batchd.toml; anything else is a typo we would rather report than ignore.
_FILE_KEYS = frozenset({"database_url", "host", "port", "timezone", "max_body_bytes", "parallelism",
                        "scheduler_missed_fires"})


class SettingsError(InvalidParameter):
    """A setting is malformed or contradicts another (e.g. --insecure on a public address).

    The CLI reports it and exits with code 2 (misuse), before anything is started.
    """


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Where batchd keeps its data, where it listens, and how it behaves."""

    home: Path
    database_url: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    insecure: bool = False
    timezone: str = "UTC"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    parallelism: int = field(default_factory=lambda: os.cpu_count() or 1)  # attempts running at once
    # What the scheduler creates for fires missed by downtime or a disabled spell: "latest" (the
    # newest one), "none" or "all" (capped); docs/decisions.md "Scheduler: missed fires".
    scheduler_missed_fires: str = "latest"
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"timezone: {self.timezone!r} is not an IANA time zone name") from None
        object.__setattr__(self, "zone", zone)
        if not 0 < self.port < 65536:
            raise SettingsError(f"port: {self.port} is out of range 1-65535")
        if self.parallelism < 1:
            raise SettingsError(f"parallelism: {self.parallelism} must be at least 1")
        if self.scheduler_missed_fires not in ("latest", "none", "all"):
            raise SettingsError(
                f"scheduler_missed_fires: {self.scheduler_missed_fires!r} must be one of latest, none, all"
            )
        if self.max_body_bytes <= 0:
            raise SettingsError(f"max_body_bytes: {self.max_body_bytes} must be positive")
        if self.insecure and not is_loopback(self.host):
            raise SettingsError(
                f"--insecure disables authentication, so it is only allowed on a loopback address "
                f"(127.0.0.1, ::1, localhost); refusing to listen on {self.host!r}"
            )

    @classmethod
    def load(
        cls,
        *,
        home: str | Path | None = None,
        database_url: str | None = None,
        host: str | None = None,
        port: int | None = None,
        insecure: bool = False,
        timezone: str | None = None,
        max_body_bytes: int | None = None,
        parallelism: int | None = None,
        scheduler_missed_fires: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Resolve every setting: arguments > `BATCHD_*` environment > `<home>/batchd.toml` > defaults."""
        env = os.environ if environ is None else environ
        home_path = Path(home or env.get("BATCHD_HOME") or Path.home() / ".batchd").expanduser().resolve()
        file = _read_config_file(home_path / CONFIG_FILE_NAME)

        def pick(argument: Any, env_name: str, file_key: str, default: Any) -> Any:
            # An explicit 0 or "" is a value to validate, not a reason to fall back.
            if argument is not None:
                return argument
            if env.get(env_name):
                return env[env_name]
            found = file.get(file_key)
            return default if found is None else found

        return cls(
            home=home_path,
            database_url=pick(
                database_url, "BATCHD_DATABASE_URL", "database_url", f"sqlite+aiosqlite:///{home_path / 'batchd.db'}"
            ),
            host=pick(host, "BATCHD_HOST", "host", DEFAULT_HOST),
            port=_as_int("port", pick(port, "BATCHD_PORT", "port", DEFAULT_PORT)),
            insecure=insecure,
            timezone=pick(timezone, "BATCHD_TIMEZONE", "timezone", None) or machine_timezone(),
            max_body_bytes=_as_int(
                "max_body_bytes", pick(max_body_bytes, "BATCHD_MAX_BODY_BYTES", "max_body_bytes", DEFAULT_MAX_BODY_BYTES)
            ),
            parallelism=_as_int(
                "parallelism", pick(parallelism, "BATCHD_PARALLELISM", "parallelism", os.cpu_count() or 1)
            ),
            scheduler_missed_fires=str(pick(
                scheduler_missed_fires, "BATCHD_SCHEDULER_MISSED_FIRES", "scheduler_missed_fires", "latest"
            )).strip().lower(),
        )


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach; `localhost` counts, other names do not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def machine_timezone() -> str:
    """The machine's IANA zone name (TZ, /etc/timezone, the /etc/localtime link), else UTC."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        candidates.append(Path("/etc/timezone").read_text().strip())
    except OSError:
        pass
    try:
        target = str(Path("/etc/localtime").resolve())
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    for name in candidates:
        if not name:
            continue
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        return name
    return "UTC"


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: {exc}") from None
    unknown = sorted(set(data) - _FILE_KEYS)
    if unknown:
        raise SettingsError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(_FILE_KEYS))}")
    return data


def _as_int(name: str, value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{name}: {value!r} is not an integer") from None
