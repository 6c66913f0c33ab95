"""`anyllm replay`: offline through echo, --json shape, -o, and the exit codes (0, 1, 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anyllm_cli.cli import app

GOOD = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]}
BAD = {"model": "gpt-4o", "messages": "not a list"}


@pytest.fixture
def here(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANYLLM_HOME", str(tmp_path / "home"))
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANYLLM_CONFIG", "ANYLLM_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def bodies(path: Path, good: int, bad: int) -> Path:
    path.write_text("".join(json.dumps(b) + "\n" for b in [GOOD] * good + [BAD] * bad))
    return path


def test_offline_replay_through_echo_prints_json_and_writes_results(here: Path) -> None:
    file = bodies(here / "b.jsonl", 3, 0)
    result = CliRunner().invoke(
        app,
        ["replay", str(file), "--backend", "echo", "--json", "-o", "out.jsonl", "--api", "chat"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["count"] == 3 and summary["passed"] is True and summary["status"] == {"200": 3}
    assert len((here / "out.jsonl").read_text().splitlines()) == 3


def test_a_table_without_json(here: Path) -> None:
    result = CliRunner().invoke(
        app, ["replay", str(bodies(here / "b.jsonl", 1, 0)), "--backend", "echo"]
    )
    assert result.exit_code == 0, result.output
    assert "latency p50/p95/p99" in result.stdout and "200: 1" in result.stdout


def test_exit_1_above_the_error_rate(here: Path) -> None:
    file = bodies(here / "b.jsonl", 3, 1)
    args = ["replay", str(file), "--backend", "echo", "--json", "--api", "chat"]
    failed = CliRunner().invoke(app, [*args, "--max-error-rate", "0.2"])
    assert failed.exit_code == 1, failed.output
    summary = json.loads(failed.stdout)
    assert summary["errors_by_type"] == {"invalid_request": 1} and summary["passed"] is False
    assert CliRunner().invoke(app, [*args, "--max-error-rate", "0.25"]).exit_code == 0


def test_exit_2_for_bad_input_with_one_line(here: Path) -> None:
    (here / "bad.jsonl").write_text("{not json\n")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(here), "ANYLLM_HOME": str(here / "home")}
    for args in (
        ["bad.jsonl", "--backend", "echo"],
        ["missing.jsonl"],
        ["bad.jsonl", "--filter", "x"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "anyllm_cli", "replay", *args],
            check=False,
            cwd=here,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("anyllm: error:") and "Traceback" not in done.stderr


def test_help_shows_plain_metavars() -> None:
    result = CliRunner().invoke(app, ["replay", "--help"], terminal_width=200)
    assert result.exit_code == 0
    options = result.output.split("Options:", 1)[1]  # (typer shows FILE <str> for arguments)
    for raw in ("<str>", "<int>", "<float>", "<path>", "<list"):
        assert raw not in options
    flat = " ".join(result.output.split())
    for flag in (
        "--backend NAME",
        "--url URL",
        "--compare recorded|BACKEND|URL",
        "--fail-on-change",
    ):
        assert flag in flat


def test_backend_takes_a_preset_as_serve_does(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_API_BASE", "http://127.0.0.1:9/v1")  # nothing listens on port 9
    file = bodies(here / "b.jsonl", 1, 0)
    result = CliRunner().invoke(
        app, ["replay", str(file), "--backend", "ollama", "--json", "--api", "chat"]
    )
    summary = json.loads(result.stdout)
    assert summary["target"] == "ollama" and summary["errors"] == 1, result.output
    assert result.exit_code == 1
