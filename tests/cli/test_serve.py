"""`anyllm serve`: flags reach the settings, and the banner ends with the machine-readable line."""

from __future__ import annotations

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


def test_banner_ends_with_the_listening_line(capsys: pytest.CaptureFixture[str]) -> None:
    announce(make_settings(), "http://127.0.0.1:4321")
    err = capsys.readouterr().err
    assert err.rstrip().splitlines()[-1] == "listening on http://127.0.0.1:4321"
    assert "ANTHROPIC_BASE_URL=http://127.0.0.1:4321" in err
    assert "mock" in err
