"""Record real SDK traffic through `anyllm serve --record`, then `anyllm replay` it: to the echo
backend, to the mock upstream (compared with the recording), to a running proxy by URL, to two
backends where one changes a tool call; HAR import; exit codes; the --json shape; no secrets kept."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.e2e.conftest import PROXY_KEY, ProxyProcess, main_config
from tests.e2e.mock_upstream import UPSTREAM_KEY, MockUpstream

pytestmark = pytest.mark.e2e

SECRET = "sk-ant-api03-pastedbymistake0123456789"
WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
SUMMARY_KEYS = {
    "target", "compare_with", "count", "ok", "errors", "error_rate", "max_error_rate", "passed",
    "elapsed_s", "requests_per_s", "skipped", "status", "errors_by_type", "latency_s", "ttft_s",
    "tokens", "cost_usd", "recorded", "compare",
}  # fmt: skip


def drive(url: str) -> None:
    """A short session per SDK: Anthropic text, a tool loop and a stream; OpenAI text and a stream."""
    with anthropic.Anthropic(base_url=url, api_key=PROXY_KEY, max_retries=0, timeout=10) as claude:
        claude.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=64,
            messages=[{"role": "user", "content": f"hello record, my key is {SECRET}"}],
        )
        ask: Any = [{"role": "user", "content": "weather in Paris?"}]
        first = claude.messages.create(
            model="mock-tools", max_tokens=64, tools=[WEATHER_TOOL], messages=ask
        )
        use = next(b for b in first.content if b.type == "tool_use")
        result: Any = {"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}
        claude.messages.create(
            model="mock-tools",
            max_tokens=64,
            tools=[WEATHER_TOOL],
            messages=[
                *ask,
                {"role": "assistant", "content": first.content},
                {"role": "user", "content": [result]},
            ],
        )
        with claude.messages.stream(
            model="claude-sonnet-4-6",
            max_tokens=64,
            messages=[{"role": "user", "content": "stream for the record"}],
        ) as stream:
            assert stream.get_final_text() == "mock reply: stream for the record"
    with openai.OpenAI(base_url=url + "/v1", api_key=PROXY_KEY, max_retries=0, timeout=10) as gpt:
        gpt.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "openai record"}]
        )
        chunks = gpt.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "openai stream record"}],
            stream=True,
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
            "mock reply: openai stream record"
        )


@pytest.fixture(scope="module")
def recording(upstream: MockUpstream, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("record")
    target = tmp / "recordings"
    server = ProxyProcess.start(tmp, main_config(upstream.url), "--record", str(target))
    try:
        drive(server.url)
    finally:
        assert server.stop() == 0, "\n".join(server.lines[-30:])
    return target


def replay(cwd: Path, *args: str, key: str | None = None) -> tuple[int, dict[str, Any], str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "ANYLLM_HOME": str(cwd / "home"),
        **({"ANYLLM_API_KEY": key} if key else {}),
    }
    done = subprocess.run(
        [sys.executable, "-m", "anyllm_cli", "replay", *args, "--json"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    summary = json.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, summary, done.stderr


def config(tmp: Path, upstream: MockUpstream) -> Path:
    path = tmp / "replay.toml"
    path.write_text(
        main_config(upstream.url)
        + f"""
[backends.tools]
kind = "openai"
base_url = "{upstream.url}"
api_key = "{UPSTREAM_KEY}"
model_map = {{ "claude-sonnet-4-6" = "mock-tools" }}
"""
    )
    return path


def test_the_recording_holds_every_exchange_and_no_secret(recording: Path) -> None:
    files = list(recording.glob("*.jsonl"))
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    text = "".join(f.read_text() for f in files)
    for secret in (SECRET, PROXY_KEY, UPSTREAM_KEY):
        assert secret not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert [(x["api"], x["stream"], x["status"]) for x in lines] == [
        ("messages", False, 200),
        ("messages", False, 200),
        ("messages", False, 200),
        ("messages", True, 200),
        ("chat", False, 200),
        ("chat", True, 200),
    ]
    assert "[REDACTED]" in lines[0]["body"]["messages"][0]["content"]
    assert all(x["backend"] == "mock" and x["id"] and x["usage"]["output_tokens"] for x in lines)
    assert (
        lines[0]["upstream_model"] == "mock-model"
        and lines[0]["upstream_request"]["model"] == "mock-model"
    )
    assert lines[1]["response"]["stop_reason"] == "tool_use"
    assert lines[2]["response"]["content"][0]["text"] == "tool said: sunny"
    stream = lines[3]
    assert stream["response"]["content"][0]["text"] == "mock reply: stream for the record"
    assert stream["ttft_s"] is not None and stream["ttft_s"] <= stream["duration_s"]
    kinds = [e["type"] for e in stream["events"] if e["type"] != "ping"]  # as the SDK got them
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_delta" in kinds
    chat_stream = lines[5]
    assert chat_stream["events"] and chat_stream["response"]["choices"][0]["message"][
        "content"
    ] == ("mock reply: openai stream record")
    for line in lines:  # credentials never reach the recording, not even as headers
        assert {line["headers"].get(h) for h in ("authorization", "x-api-key")} <= {
            None,
            "[REDACTED]",
        }


def test_replay_to_the_echo_backend_offline(recording: Path, tmp_path: Path) -> None:
    code, summary, stderr = replay(tmp_path, str(recording), "--backend", "echo")
    assert code == 0, stderr
    assert set(summary) == SUMMARY_KEYS
    assert (summary["count"], summary["errors"], summary["status"]) == (6, 0, {"200": 6})
    assert summary["ttft_s"] is not None and summary["tokens"]["output"] > 0
    assert summary["recorded"]["count"] == 6


def test_replay_to_the_mock_upstream_matches_the_recording(
    recording: Path, tmp_path: Path, upstream: MockUpstream
) -> None:
    out = tmp_path / "results.jsonl"
    code, summary, stderr = replay(
        tmp_path, str(recording), "--config", str(config(tmp_path, upstream)), "--backend", "mock",
        "--compare", "recorded", "-o", str(out), "--concurrency", "3",
    )  # fmt: skip
    assert code == 0, stderr
    compare = summary["compare"]
    assert (compare["compared"], compare["stop_reason_changed"], compare["tool_calls_changed"]) == (
        6,
        0,
        0,
    )
    assert compare["text_similarity"] == {"mean": 1.0, "min": 1.0}
    assert compare["usage_delta"] == {"input": 0, "output": 0}
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["index"] for r in results) == list(range(6))


def test_replay_to_a_running_proxy_by_url(
    recording: Path, tmp_path: Path, proxy: ProxyProcess
) -> None:
    code, summary, stderr = replay(tmp_path, str(recording), "--url", proxy.url, key=PROXY_KEY)
    assert code == 0, stderr
    assert (summary["target"], summary["count"], summary["status"]) == (proxy.url, 6, {"200": 6})
    code, summary, _ = replay(tmp_path, str(recording), "--url", proxy.url, key="wrong")
    assert code == 1 and summary["errors_by_type"] == {"authentication": 6}


def test_two_backends_where_one_changes_a_tool_call(
    recording: Path, tmp_path: Path, upstream: MockUpstream
) -> None:
    code, summary, stderr = replay(
        tmp_path, str(recording), "--config", str(config(tmp_path, upstream)),
        "--backend", "tools", "--compare", "mock", "--model", "claude-sonnet-4-6",
        "--filter", "model=mock-tools", "--limit", "1",
    )  # fmt: skip
    assert code == 0, stderr
    compare = summary["compare"]
    assert (summary["count"], compare["compared"], compare["tool_calls_changed"]) == (1, 1, 1)
    (changed,) = compare["changed"]
    assert changed["stop_reason"] == ["tool", "end"]
    assert changed["tool_calls"] == ["call 0: get_weather gone"]
    code, summary, _ = replay(
        tmp_path, str(recording), "--config", str(config(tmp_path, upstream)),
        "--backend", "tools", "--compare", "mock", "--model", "claude-sonnet-4-6",
        "--filter", "model=mock-tools", "--limit", "1", "--fail-on-change",
    )  # fmt: skip
    assert code == 1 and summary["passed"] is False and summary["errors"] == 0


def test_exit_codes_follow_the_error_rate(
    recording: Path, tmp_path: Path, upstream: MockUpstream
) -> None:
    args = [str(recording), "--config", str(config(tmp_path, upstream)), "--backend", "noretry"]
    code, summary, _ = replay(tmp_path, *args, "--model", "mock-400")
    assert code == 1 and summary["passed"] is False
    assert summary["errors_by_type"] == {"invalid_request": 6} and summary["status"] == {"400": 6}
    code, summary, _ = replay(tmp_path, *args, "--model", "mock-400", "--max-error-rate", "1")
    assert code == 0 and summary["passed"] is True
    code, _, stderr = replay(tmp_path, *args, "--backend", "nope")
    assert code == 2 and "nope" in stderr and "Traceback" not in stderr


def test_a_har_export_replays_its_llm_calls(tmp_path: Path, proxy: ProxyProcess) -> None:
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 32,
        "messages": [{"role": "user", "content": "from a har"}],
    }

    def entry(url: str, method: str = "POST") -> dict[str, Any]:
        return {
            "time": 120,
            "request": {
                "method": method,
                "url": url,
                "headers": [{"name": "x-api-key", "value": PROXY_KEY}],
                "postData": {"mimeType": "application/json", "text": json.dumps(body)},
            },
            "response": {"status": 200, "content": {"mimeType": "application/json", "text": "{}"}},
        }

    har = {"log": {"version": "1.2", "entries": [
        entry("https://api.anthropic.com/v1/messages"),
        entry("https://example.com/index.html", "GET"),
        entry("https://example.com/collect"),
    ]}}  # fmt: skip
    (tmp_path / "browser.har").write_text(json.dumps(har, indent=2))
    code, summary, stderr = replay(tmp_path, "browser.har", "--url", proxy.url, key=PROXY_KEY)
    assert code == 0, stderr
    assert summary["count"] == 1 and summary["skipped"] == {"not an LLM API call": 2}
