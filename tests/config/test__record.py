"""`[record]` and the `--record*` flags: off by default, flags win, mistakes named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from anyllm_cli.config import RecordSettings, load_settings
from anyllm_cli.errors import ConfigError


def settings(tmp_path: Path, toml: str = "", **flags: Any) -> Any:
    config = tmp_path / "anyllm.toml"
    config.write_text('[backends.e]\nkind = "echo"\n' + toml)
    env = {"ANYLLM_HOME": str(tmp_path / "home")}
    return load_settings({"config": str(config), **flags}, env, cwd=tmp_path)


def test_off_unless_a_path_is_given(tmp_path: Path) -> None:
    assert settings(tmp_path).record is None


def test_the_table_then_the_flags(tmp_path: Path) -> None:
    table = '[record]\npath = "recs"\nbodies = "requests"\nsample = 0.5\nmax_bytes = 2048\n'
    assert settings(tmp_path, table).record == RecordSettings(
        tmp_path / "recs", "requests", 0.5, 2048
    )
    got = settings(tmp_path, table, record="/abs/x.jsonl", record_bodies="none", record_sample=0.1)
    assert got.record == RecordSettings(Path("/abs/x.jsonl"), "none", 0.1, 2048)
    assert settings(tmp_path, record="r.jsonl").record == RecordSettings(tmp_path / "r.jsonl")
    assert settings(tmp_path, record="dir", workers=2).record == RecordSettings(tmp_path / "dir")


@pytest.mark.parametrize(
    ("toml", "flags", "message"),
    [
        ('[record]\nbodies = "all"\n', {}, "record.path: required"),
        ("", {"record_sample": 0.5}, "--record: a path is needed"),
        (
            "",
            {"record": "x", "record_sample": 1.5},
            r"--record-sample: expected a share in \(0, 1\]",
        ),
        (
            "",
            {"record": "x", "record_bodies": "some"},
            "--record-bodies: expected one of none, requests, all",
        ),
        ('[record]\npath = "x"\nwhat = 1\n', {}, "record.what: unknown key"),
        ('[record]\npath = "x"\nsample = 0\n', {}, "record.sample: expected a share"),
        (
            "",
            {"record": "r.jsonl", "workers": 2},
            "--record: with several workers, record to a directory",
        ),
        ('[record]\npath = "r.jsonl"\n', {"workers": 2}, "record.path: with several workers"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, toml: str, flags: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings(tmp_path, toml, **flags)
