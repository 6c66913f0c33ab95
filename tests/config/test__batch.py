"""The [batch] table: defaults, values, and refusals that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from anyllm_cli.batch.engine import EngineSettings
from anyllm_cli.config import BatchSettings, load_settings
from anyllm_cli.errors import ConfigError


def _settings(tmp_path: Path, toml: str) -> BatchSettings:
    (tmp_path / "anyllm.toml").write_text('default_backend = "echo"\n' + toml)
    return load_settings({}, {"ANYLLM_HOME": str(tmp_path)}, cwd=tmp_path).batch


def test_defaults_and_values(tmp_path: Path) -> None:
    assert _settings(tmp_path, "") == BatchSettings(64, 64, 29.0, 60.0)
    got = _settings(
        tmp_path,
        "[batch]\nconcurrency = 8\nper_batch = 4\nretention_days = 1.5\nlease_seconds = 5\n",
    )
    assert got == BatchSettings(8, 4, 1.5, 5.0)
    engine = EngineSettings.of(got, concurrency=None, lease_s=2.0)
    assert (engine.concurrency, engine.per_batch, engine.lease_s, engine.retention_s) == (
        8,
        4,
        2.0,
        1.5 * 86400,
    )


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("concurrency = 0", "batch.concurrency"),
        ("lease_seconds = 0.5", "batch.lease_seconds"),
        ("speed = 1", "speed"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, toml: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        _settings(tmp_path, f"[batch]\n{toml}\n")


def test_native_poll_settings(tmp_path: Path) -> None:
    got = _settings(tmp_path, "[batch]\nnative_poll_seconds = 0.5\nnative_poll_max_seconds = 2\n")
    assert (got.native_poll_seconds, got.native_poll_max_seconds) == (0.5, 2.0)
    assert (
        _settings(tmp_path, "[batch]\nnative_poll_seconds = 600\n").native_poll_max_seconds == 600
    )
    with pytest.raises(ConfigError, match=r"batch\.native_poll_max_seconds"):
        _settings(tmp_path, "[batch]\nnative_poll_seconds = 5\nnative_poll_max_seconds = 1\n")
