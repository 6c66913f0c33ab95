"""`anyllm serve`: flags reach the settings, and the banner ends with the machine-readable line."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from anyllm_cli.cli import app
from anyllm_cli.cli.serve import announce, client_env
from anyllm_cli.config import Settings
from tests.conftest import make_settings


def test_flags_reach_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[Settings] = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANYLLM_HOME", str(tmp_path))
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "PROXY_API_KEYS", "BIG_MODEL", "SMALL_MODEL"):
        monkeypatch.delenv(var, raising=False)

    def fake_run(settings: Settings, announce: Any) -> None:
        seen.append(settings)

    monkeypatch.setattr("anyllm_cli.server.runner.run", fake_run)
    result = CliRunner().invoke(
        app,
        [
            "serve",
            "--backend",
            "echo",
            "--port",
            "0",
            "--model-map",
            "a=b",
            "--model-map",
            "c=d",
            "--log-format",
            "json",
            "--workers",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    settings = seen[0]
    assert settings.port == 0
    assert settings.workers == 2
    assert settings.log_format == "json"
    default = settings.backends[settings.default_backend]
    assert default.kind == "echo"
    assert dict(default.model_map) == {"a": "b", "c": "d"}


def test_help_lists_the_flags() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for flag in (
        "--backend",
        "--base-url",
        "--host",
        "--port",
        "--config",
        "--env-file",
        "--big-model",
        "--small-model",
        "--model-map",
        "--workers",
        "--log-level",
        "--log-format",
        "--open",
    ):
        assert flag in result.output


def test_client_env_lines() -> None:
    open_lines = client_env(make_settings(), "http://127.0.0.1:3000")
    assert open_lines == [
        "ANTHROPIC_BASE_URL=http://127.0.0.1:3000",
        "ANTHROPIC_API_KEY=anyllm",
        "OPENAI_BASE_URL=http://127.0.0.1:3000/v1",
        "OPENAI_API_KEY=anyllm",
        "GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:3000",
        "GEMINI_API_KEY=anyllm",
    ]
    keyed = client_env(make_settings(proxy_api_keys=("secret",)), "http://0.0.0.0:8080")
    assert keyed[0] == "ANTHROPIC_BASE_URL=http://127.0.0.1:8080"
    assert keyed[1].startswith("ANTHROPIC_AUTH_TOKEN=")
    assert "secret" not in " ".join(keyed)
    stored = client_env(make_settings(store_keys=2), "http://127.0.0.1:3000")
    assert stored[1] == "ANTHROPIC_AUTH_TOKEN=<a key from `anyllm keys create`>"
    assert stored[3] == "OPENAI_API_KEY=<a key from `anyllm keys create`>"
    assert (
        "anyllm keys create"
        in client_env(make_settings(store_keys=1, proxy_api_keys=("s",)), "http://127.0.0.1:3000")[
            1
        ]
    )


def test_banner_ends_with_the_listening_line(capsys: pytest.CaptureFixture[str]) -> None:
    announce(make_settings(), "http://127.0.0.1:4321")
    err = capsys.readouterr().err
    assert err.rstrip().splitlines()[-1] == "listening on http://127.0.0.1:4321"
    assert "ANTHROPIC_BASE_URL=http://127.0.0.1:4321" in err
    assert "mock" in err


def test_help_shows_plain_metavars_and_every_backend_name() -> None:
    from anyllm_cli.config import backend_names

    result = CliRunner().invoke(app, ["serve", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "<str>" not in result.output
    assert "<list" not in result.output
    assert "<int>" not in result.output
    flat = " ".join(result.output.split())
    for name in backend_names():
        assert f" {name}" in flat, name


def test_translate_help_names_every_api() -> None:
    result = CliRunner().invoke(app, ["translate", "--help"], terminal_width=200)
    flat = " ".join(result.output.split())
    for api in ("anthropic", "openai", "responses", "gemini", "bedrock"):
        assert api in flat
    assert "the other API" not in flat


def test_banner_names_the_config_and_env_files(capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(config_file=Path("/c/anyllm.toml"), env_file=Path("/w/.anyllm.env"))
    announce(settings, "http://127.0.0.1:4321")
    err = capsys.readouterr().err
    assert "Config file: /c/anyllm.toml" in err
    assert "Env file: /w/.anyllm.env" in err
    announce(make_settings(), "http://127.0.0.1:4321")
    assert "Config file: none" in capsys.readouterr().err


def test_json_log_format_writes_one_json_record_and_no_banner(
    capsys: pytest.CaptureFixture[str],
) -> None:
    announce(make_settings(log_format="json"), "http://127.0.0.1:4321")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == "listening"
    assert record["url"] == "http://127.0.0.1:4321"
    assert record["message"] == "listening on http://127.0.0.1:4321"


def test_a_startup_error_under_json_logs_is_one_json_record(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANYLLM_HOME", str(tmp_path))
    args = ["serve", "--backend", "echo", "--log-format", "json", "--config", "missing.toml"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == "startup_failed"
    assert record["level"] == "error"
    assert "--config missing.toml: no such file" in record["message"]


def test_record_flags_reach_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from anyllm_cli.config import RecordSettings

    seen: list[Settings] = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANYLLM_HOME", str(tmp_path))
    monkeypatch.setattr("anyllm_cli.server.runner.run", lambda s, a: seen.append(s))
    args = ["serve", "--backend", "echo", "--record", "recs", "--record-bodies", "requests"]
    result = CliRunner().invoke(app, [*args, "--record-sample", "0.25"])
    assert result.exit_code == 0, result.output
    assert seen[0].record == RecordSettings(tmp_path / "recs", "requests", 0.25)


def test_banner_says_what_is_recorded(capsys: pytest.CaptureFixture[str]) -> None:
    from anyllm_cli.config import RecordSettings

    settings = make_settings(record=RecordSettings(Path("/r/recs"), "requests", 0.25))
    announce(settings, "http://127.0.0.1:4321")
    assert "Recording: /r/recs (request bodies, 25% of calls)" in capsys.readouterr().err
    announce(replace(settings, log_format="json"), "http://127.0.0.1:4321")
    record = json.loads(capsys.readouterr().err)
    assert record["record"] == {"path": "/r/recs", "bodies": "requests", "sample": 0.25}
    announce(make_settings(log_format="json"), "http://127.0.0.1:4321")
    assert json.loads(capsys.readouterr().err)["record"] is None
