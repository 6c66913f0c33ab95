"""`anyllm keys` on the local store: every command, --json, plain tables when piped, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anyllm_cli.cli import app

runner = CliRunner()


@pytest.fixture
def keys(tmp_path: Path) -> Callable[..., str]:
    env = {"ANYLLM_HOME": str(tmp_path), "ANYLLM_DB": "", "ANYLLM_CONFIG": ""}

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, ["keys", *args], env=env)
        assert result.exit_code == code, result.output
        return result.output

    return run


def test_create_prints_the_key_once_and_stores_only_its_hash(
    keys: Callable[..., str], tmp_path: Path
) -> None:
    made = json.loads(
        keys("create", "ci", "--rpm", "10", "--budget", "5", "--period", "month", "--json")
    )
    secret = made["key"]
    assert secret.startswith("sk-anyllm-") and len(secret) == len("sk-anyllm-") + 43
    assert made["rpm"] == 10 and made["budget_usd"] == 5.0 and made["period"] == "month"
    assert made["spent_usd"] == 0.0 and made["status"] == "active"
    assert made["prefix"] == secret[:14]
    shown = json.loads(keys("show", "ci", "--json"))
    assert "key" not in shown and secret not in json.dumps(shown)
    for path in tmp_path.glob("anyllm.db*"):
        assert secret.encode() not in path.read_bytes()
        assert secret[14:].encode() not in path.read_bytes()


def test_plain_create_prints_the_secret_alone_on_stdout(keys: Callable[..., str]) -> None:
    out = keys("create", "dev")
    assert out.splitlines()[0].startswith("sk-anyllm-")


def test_list_update_revoke_rotate_delete(keys: Callable[..., str]) -> None:
    first = json.loads(
        keys("create", "a", "--models", "claude-*,gpt-4.1", "--expires", "30d", "--json")
    )
    keys("create", "b", "--tpm", "1000", "--max-parallel", "2")
    table = keys("list")
    assert table.splitlines()[0].split("\t") == [
        "id", "name", "prefix", "limits", "budget", "expires", "status",
    ]  # fmt: skip
    assert "1000 tpm, 2 parallel" in table
    updated = json.loads(keys("update", "a", "--rpm", "5", "--expires", "never", "--json"))
    assert updated["rpm"] == 5 and updated["expires"] is None
    assert updated["models"] == ["claude-*", "gpt-4.1"]
    cleared = json.loads(keys("update", first["id"], "--rpm", "none", "--json"))
    assert cleared["rpm"] is None
    assert "revoked a" in keys("revoke", "a")
    assert [k["name"] for k in json.loads(keys("list", "--json"))] == ["b"]
    everything = json.loads(keys("list", "--all", "--json"))
    assert [k["status"] for k in everything] == ["revoked", "active"]
    rotated = json.loads(keys("rotate", "b", "--json"))
    assert rotated["key"].startswith("sk-anyllm-") and rotated["tpm"] == 1000
    assert "deleted b" in keys("delete", "b", "--yes")
    keys("show", "b", code=1)


def test_spend_is_empty_at_first(keys: Callable[..., str]) -> None:
    assert json.loads(keys("spend", "--json")) == []
    assert keys("spend", "--by", "model").splitlines() == ["model\trequests\tinput\toutput\tcost"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "nope"], "no key with id or name 'nope'"),
        (["create", "x", "--rpm", "ten"], "--rpm 'ten': expected a whole number"),
        (["create", "x", "--rpm", "0"], "expected a positive number"),
        (["create", "x", "--period", "year"], "period 'year': expected one of day, week"),
        (["create", "x", "--expires", "soon"], "--expires 'soon': expected 30d"),
        (["create", "x", "--metadata", "[1]"], "--metadata: expected a JSON object"),
        (["spend", "--by", "hour"], "--by hour: expected key, model, backend or day"),
        (["spend", "--since", "yesterday"], "--since 'yesterday'"),
        (["list", "--db", "mysql://x"], "expected sqlite:///PATH or postgresql"),
        (["list", "--url", "http://127.0.0.1:9"], "set ANYLLM_MASTER_KEY"),
    ],
)
def test_mistakes_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "anyllm_cli", "keys", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "ANYLLM_HOME": str(tmp_path)},
        check=False,
    )
    assert out.returncode in (1, 2), out
    assert message in out.stderr and "Traceback" not in out.stderr
