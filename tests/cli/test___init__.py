"""The `anyllm` app: the commands it lists work, it starts without the heavy imports, and the
committed shell completion scripts match what the app generates."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner

from anyllm_cli.cli import EXIT_CODES, app, exit_code
from anyllm_cli.errors import AnyllmError, ConfigError, InvalidInput, LossyTranslation

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def commands(help_text: str) -> list[str]:
    lines = help_text.split("Commands:", 1)[1].splitlines() if "Commands:" in help_text else []
    return [line.split()[0] for line in lines if line.startswith("  ") and line.strip()]


def test_help_lists_only_commands_that_work() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    listed = commands(result.output)
    assert "translate" in listed
    for name in listed:
        sub = runner.invoke(app, [name, "--help"])
        assert sub.exit_code == 0, (name, sub.output)
        assert f"Usage: anyllm {name}" in sub.output
        assert (ROOT / "anyllm_cli" / "cli" / f"{name}.py").exists(), f"{name} has no module"


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("anyllm ")


def test_startup_does_not_import_pydantic_or_rich() -> None:
    """`anyllm --help` stays instant: command modules import their heavy parts when they run."""
    code = "import sys, anyllm_cli.cli; print(sorted({'pydantic', 'rich', 'httpx'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (LossyTranslation(["top_k_dropped"]), 1),
        (InvalidInput("bad", "messages[0]"), 2),
        (ConfigError("no"), 2),
        (AnyllmError("other"), 1),
    ],
)
def test_exit_codes(error: AnyllmError, code: int) -> None:
    assert exit_code(error) == code
    assert len(EXIT_CODES) == 4


# -- shell completion --------------------------------------------------------------------------------


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate", ROOT / "completions" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_completion_scripts_are_fresh() -> None:
    stale = load_generator().stale()
    assert not stale, (
        f"stale completion scripts {[p.name for p in stale]}: run `python completions/generate.py`"
    )


def complete(shell: str, words: str) -> str:
    """Ask the app for completions the way the generated scripts do."""
    env = {**os.environ, "_ANYLLM_COMPLETE": f"complete_{shell}"}
    if shell == "bash":
        env |= {"COMP_WORDS": words, "COMP_CWORD": str(len(words.split(" ")) - 1)}
    else:
        env |= {"_TYPER_COMPLETE_ARGS": words, "_TYPER_COMPLETE_FISH_ACTION": "get-args"}
    code = "import sys; from anyllm_cli.cli import main; sys.argv[0] = 'anyllm'; main()"
    out = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_scripts_protocol_is_served_by_the_app(shell: str) -> None:
    assert "translate" in complete(shell, "anyllm tr")
    assert "--model-map" in complete(shell, "anyllm translate --mod")
    kinds = complete(shell, "anyllm translate --kind ")
    assert all(kind in kinds for kind in ("request", "response", "stream"))


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_backend_names_complete(shell: str) -> None:
    from anyllm_cli.config import backend_names

    names = complete(shell, "anyllm serve --backend ")
    assert all(name in names for name in backend_names())
    assert "echo" in names


@pytest.mark.parametrize("args", [["-h"], ["serve", "-h"], ["translate", "-h"]])
def test_short_help_is_accepted(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
