"""The missed-fire policy setting: environment > batchd.toml > `latest`, and bad values refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchd.config import Settings, SettingsError


def test_missed_fires_default_env_and_file(tmp_path: Path) -> None:
    assert Settings.load(home=tmp_path, environ={}).scheduler_missed_fires == "latest"
    (tmp_path / "batchd.toml").write_text('scheduler_missed_fires = "all"\n')
    assert Settings.load(home=tmp_path, environ={}).scheduler_missed_fires == "all"
    env = {"BATCHD_SCHEDULER_MISSED_FIRES": "None"}
    assert Settings.load(home=tmp_path, environ=env).scheduler_missed_fires == "none"


def test_an_unknown_missed_fire_policy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="scheduler_missed_fires: 'some' must be one of latest, none, all"):
        Settings.load(home=tmp_path, environ={"BATCHD_SCHEDULER_MISSED_FIRES": "some"})
