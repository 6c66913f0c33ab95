"""Bearer tokens from a command: cached, refreshed before expiry, failures named, never shown."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from anyllm_cli.backends.tokens import REFRESH_EARLY_S, TokenSource
from anyllm_cli.errors import ConfigError, UpstreamError

pytestmark = pytest.mark.anyio


def _command(tmp_path: Path, body: str) -> str:
    """A command that prints `body` and counts its runs in runs.txt."""
    script = tmp_path / "print_token.py"
    script.write_text(
        "import pathlib, sys\n"
        f"runs = pathlib.Path({str(tmp_path / 'runs.txt')!r})\n"
        "runs.write_text(runs.read_text() + 'x' if runs.exists() else 'x')\n"
        f"sys.stdout.write({body!r})\n"
    )
    return f"{sys.executable} {script}"


def _runs(tmp_path: Path) -> int:
    return len((tmp_path / "runs.txt").read_text())


async def test_plain_token_is_cached_until_near_its_ttl(tmp_path: Path) -> None:
    now = [1000.0]
    source = TokenSource(_command(tmp_path, "tok-1\n"), ttl=3600, clock=lambda: now[0])
    assert await source.token() == "tok-1"
    now[0] += 3600 - REFRESH_EARLY_S - 1
    assert await source.token() == "tok-1"
    assert _runs(tmp_path) == 1
    now[0] += 2
    assert await source.token() == "tok-1"
    assert _runs(tmp_path) == 2


async def test_json_output_gives_the_lifetime(tmp_path: Path) -> None:
    now = [0.0]
    body = json.dumps({"access_token": "tok-json", "expires_in": 600})
    source = TokenSource(_command(tmp_path, body), clock=lambda: now[0])
    assert await source.token() == "tok-json"
    now[0] = 600 - REFRESH_EARLY_S + 1
    await source.token()
    assert _runs(tmp_path) == 2


async def test_a_failing_command_is_a_502_naming_it(tmp_path: Path) -> None:
    script = tmp_path / "fail.py"
    script.write_text("import sys\nsys.stderr.write('not logged in\\n')\nsys.exit(3)\n")
    source = TokenSource(f"{sys.executable} {script}")
    with pytest.raises(UpstreamError) as info:
        await source.token()
    assert info.value.status == 502
    assert "fail.py" in info.value.message and "not logged in" in info.value.message


def test_a_missing_program_is_a_startup_error() -> None:
    with pytest.raises(ConfigError, match="no-such-gcloud"):
        TokenSource("no-such-gcloud auth print-access-token")
