"""`anyllm batch`: the in-process `run` (resumable), and the pieces the remote commands share."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anyllm_cli.cli import app
from anyllm_cli.cli.batch import _created, _path, _submit_body
from anyllm_cli.errors import InvalidInput

PARAMS = {"model": "claude-x", "max_tokens": 20, "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANYLLM_HOME", str(tmp_path / "home"))
    for var in ("ANYLLM_DB", "ANYLLM_CONFIG", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_run_executes_a_file_and_a_second_run_reuses_its_results(home: Path) -> None:
    rows = [
        {
            "custom_id": f"r{i}",
            "params": {**PARAMS, "messages": [{"role": "user", "content": f"hi {i}"}]},
        }
        for i in range(6)
    ]
    (home / "in.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    first = CliRunner().invoke(
        app, ["batch", "run", "in.jsonl", "--backend", "echo", "-o", "out.jsonl"]
    )
    assert first.exit_code == 0, first.output
    lines = [json.loads(x) for x in (home / "out.jsonl").read_text().splitlines()]
    assert [x["custom_id"] for x in lines] == [f"r{i}" for i in range(6)]
    assert lines[3]["result"]["message"]["content"][0]["text"] == "hi 3"
    again = CliRunner().invoke(
        app, ["batch", "run", "in.jsonl", "--backend", "echo", "-o", "again.jsonl"]
    )
    assert again.exit_code == 0, again.output
    assert (home / "again.jsonl").read_text() == (home / "out.jsonl").read_text()


def test_run_refuses_a_bad_file_by_line(home: Path) -> None:
    (home / "in.jsonl").write_text(json.dumps({"custom_id": "a", "params": PARAMS}) + "\n{oops\n")
    result = CliRunner().invoke(app, ["batch", "run", "in.jsonl", "--backend", "echo"])
    assert result.exit_code != 0
    assert isinstance(result.exception, InvalidInput) and "line 2" in str(result.exception)


def test_run_refuses_an_embeddings_batch_on_a_backend_without_the_openai_api(home: Path) -> None:
    line = {
        "custom_id": "e",
        "method": "POST",
        "url": "/v1/embeddings",
        "body": {"model": "emb", "input": "x"},
    }
    (home / "in.jsonl").write_text(json.dumps(line) + "\n")
    result = CliRunner().invoke(app, ["batch", "run", "in.jsonl", "--backend", "echo"])
    assert result.exit_code != 0
    assert isinstance(result.exception, InvalidInput)
    assert "backend 'echo' (kind echo) cannot serve /v1/embeddings" in str(result.exception)


def test_ids_pick_their_api_and_model_overrides_apply() -> None:
    assert _path("msgbatch_1") == "/v1/messages/batches/msgbatch_1"
    assert _path("batch_1") == "/v1/batches/batch_1"
    with pytest.raises(InvalidInput):
        _path("file-1")
    job, rows = _submit_body(json.dumps({"custom_id": "a", "params": PARAMS}).encode(), "", "other")
    assert job.format == "anthropic" and rows == [
        {"custom_id": "a", "params": {**PARAMS, "model": "other"}}
    ]
    assert _created({"created_at": 5}) == 5.0
    assert _created({"created_at": "1970-01-01T00:00:10Z"}) == 10.0
