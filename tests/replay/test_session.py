"""A whole run in-process: settings-built backends, results file, comparisons, bad plans refused."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from anyllm_cli.config import StoreSettings
from anyllm_cli.errors import ConfigError, InvalidInput
from anyllm_cli.replay.session import Plan, count_lines, needs_settings, run
from tests.conftest import backend_settings, make_settings

ANTHROPIC = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 10,
    "messages": [{"role": "user", "content": "hello world"}],
}
SETTINGS = make_settings(
    backend_settings("echo", kind="echo", base_url="", api_key=None),
    backend_settings("echo2", kind="echo", base_url="", api_key=None),
)


def recording(tmp_path: Path) -> Path:
    recorded = {
        "type": "message",
        "content": [{"type": "text", "text": "something else"}],
        "stop_reason": "end_turn",
    }
    lines = [
        {
            "v": 1,
            "id": "a",
            "api": "messages",
            "body": ANTHROPIC,
            "status": 200,
            "response": recorded,
        },
        {
            "v": 1,
            "id": "b",
            "api": "chat",
            "body": {
                "model": "gpt-4o",
                "stream": True,
                "messages": [{"role": "user", "content": "x"}],
            },
            "stream": True,
        },
        {"v": 1, "id": "c", "api": "messages", "body": None},
    ]
    path = tmp_path / "rec.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_which_plans_build_backends() -> None:
    assert needs_settings(Plan(Path("x")))
    assert not needs_settings(Plan(Path("x"), url="http://p"))
    assert not needs_settings(Plan(Path("x"), url="http://p", compare="recorded"))
    assert needs_settings(Plan(Path("x"), url="http://p", compare="echo"))


@pytest.mark.anyio
async def test_a_run_writes_results_and_compares_with_the_recording(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    plan = Plan(
        recording(tmp_path), backend="echo", compare="recorded", output=out, settings=SETTINGS
    )
    summary = await run(plan)
    assert (summary["count"], summary["errors"], summary["skipped"]) == (
        2,
        0,
        {"body not recorded": 1},
    )
    assert summary["target"] == "echo" and summary["ttft_s"] is not None
    assert summary["compare"]["compared"] == 1
    assert summary["compare"]["text_similarity"]["mean"] == 0.0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(line["id"] for line in lines) == ["a", "b"]


@pytest.mark.anyio
async def test_two_backends_side_by_side_with_a_filter_and_model(tmp_path: Path) -> None:
    plan = Plan(
        recording(tmp_path),
        backend="echo",
        compare="echo2",
        filters=("api=messages",),
        model="claude-haiku-4-5",
        settings=SETTINGS,
    )
    summary = await run(plan)
    assert summary["count"] == 1 and summary["compare_with"] == "echo2"
    assert summary["compare"]["compared"] == 1 and summary["compare"]["changed"] == []


@pytest.mark.anyio
async def test_gemini_requests_replay_in_process_both_ways(tmp_path: Path) -> None:
    contents = {"contents": [{"role": "user", "parts": [{"text": "hola"}]}]}
    lines = [
        {"v": 1, "id": "g1", "api": "gemini", "model": "gemini-2.5-flash", "body": contents},
        {
            "v": 1,
            "id": "g2",
            "api": "gemini",
            "model": "gemini-2.5-flash",
            "stream": True,
            "body": contents,
        },
    ]
    path = tmp_path / "g.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "out.jsonl"
    summary = await run(Plan(path, backend="echo", output=out, settings=SETTINGS))
    assert (summary["count"], summary["errors"]) == (2, 0), summary["errors_by_type"]
    results = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    for ident in ("g1", "g2"):
        parts = results[ident]["response"]["candidates"][0]["content"]["parts"]
        assert "".join(p.get("text", "") for p in parts) == "hola"
    assert results["g2"]["ttft_s"] is not None


@pytest.mark.anyio
async def test_bad_plans_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="exclusive"):
        await run(Plan(recording(tmp_path), backend="echo", url="http://x", settings=SETTINGS))
    with pytest.raises(ConfigError, match="no backend named 'nope'"):
        await run(Plan(recording(tmp_path), backend="nope", settings=SETTINGS))


def test_count_lines(tmp_path: Path) -> None:
    assert count_lines(recording(tmp_path)) == 3
    assert count_lines(tmp_path) == 3
    (tmp_path / "x.har").write_text("{}")
    assert count_lines(tmp_path / "x.har") == 0


@pytest.mark.anyio
async def test_an_in_process_replay_prices_its_calls_as_serve_does(tmp_path: Path) -> None:
    """The price table serve uses: a local backend costs 0, a `[prices]` override is applied."""
    free = await run(Plan(recording(tmp_path), backend="echo", settings=SETTINGS))
    assert free["cost_usd"] == 0.0
    rates = {"claude-sonnet-4-6": {"input": 1_000_000.0, "output": 1_000_000.0}}
    priced = replace(SETTINGS, store=StoreSettings(url="sqlite:///unused.db", prices=rates))
    summary = await run(Plan(recording(tmp_path), backend="echo", settings=priced))
    tokens = summary["tokens"]
    # only the Anthropic request is for the priced model: a dollar per token in and out
    assert (
        summary["cost_usd"] is not None
        and 0 < summary["cost_usd"] <= tokens["input"] + tokens["output"]
    )
