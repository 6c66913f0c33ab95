"""Readers: recorded JSONL (file and directory), plain JSONL of bodies, HAR filtered to LLM calls."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from anyllm_cli.errors import InvalidInput
from anyllm_cli.replay.cassette import Exchange, Skipped, read

ANTHROPIC = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 10,
    "system": "s",
    "messages": [{"role": "user", "content": "hi"}],
}
CHAT = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}


def _write(path: Path, docs: list[Any]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


def _read(path: Path, **kw: Any) -> tuple[list[Exchange], Skipped]:
    skipped = Skipped()
    return list(read(path, skipped, **kw)), skipped


def test_recorded_lines_read_back_and_unrecorded_bodies_are_skipped(tmp_path: Path) -> None:
    line = {
        "v": 1,
        "id": "req_1",
        "api": "messages",
        "headers": {"anthropic-version": "2023-06-01"},
        "body": ANTHROPIC,
        "backend": "mock",
        "model": "claude-sonnet-4-6",
        "stream": False,
        "response": {"type": "message", "content": []},
        "status": 200,
        "usage": {"input_tokens": 3, "output_tokens": 4},
        "cost_usd": 0.5,
        "duration_s": 0.1,
    }
    path = _write(tmp_path / "r.jsonl", [line, {**line, "body": None}])
    exchanges, skipped = _read(path)
    assert skipped.reasons == {"body not recorded": 1}
    (ex,) = exchanges
    assert (ex.api, ex.id, ex.backend, ex.status, ex.cost_usd, ex.line) == (
        "messages",
        "req_1",
        "mock",
        200,
        0.5,
        1,
    )
    assert ex.usage == {"input_tokens": 3, "output_tokens": 4}
    request = ex.to_request()
    assert request.api == "messages" and json.loads(request.body) == ANTHROPIC
    assert request.headers == {"anthropic-version": "2023-06-01"} and request.backend == "mock"
    assert ex.path() == "/v1/messages"


def test_a_directory_is_read_in_name_order(tmp_path: Path) -> None:
    for name, ident in (("b.0001.jsonl", "2"), ("b.jsonl", "3"), ("a.jsonl", "1"), ("x.txt", "no")):
        _write(tmp_path / name, [{"v": 1, "id": ident, "api": "chat", "body": CHAT}])
    exchanges, _ = _read(tmp_path)
    assert [e.id for e in exchanges] == ["1", "2", "3"]


def test_plain_bodies_are_told_apart_by_api(tmp_path: Path) -> None:
    gemini = {"model": "gemini-2.5-flash", "contents": [{"role": "user", "parts": [{"text": "x"}]}]}
    exchanges, _ = _read(_write(tmp_path / "b.jsonl", [ANTHROPIC, CHAT, gemini]))
    assert [(e.api, e.stream) for e in exchanges] == [
        ("messages", False),
        ("chat", True),
        ("gemini", False),
    ]
    assert exchanges[2].path() == "/v1beta/models/gemini-2.5-flash:generateContent"
    ambiguous = {  # a mark of each API: Anthropic's top-level system, OpenAI's stop
        "model": "m",
        "system": "s",
        "stop": ["x"],
        "messages": [{"role": "user", "content": "x"}],
    }
    with pytest.raises(InvalidInput, match="pass --api"):
        _read(_write(tmp_path / "c.jsonl", [ambiguous]))
    exchanges, _ = _read(tmp_path / "c.jsonl", api="chat")
    assert exchanges[0].api == "chat"


def test_bad_lines_name_the_line(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text(json.dumps(CHAT) + "\n[1]\n")
    with pytest.raises(InvalidInput, match="line 2"):
        _read(tmp_path / "bad.jsonl")
    with pytest.raises(InvalidInput, match="no such file"):
        _read(tmp_path / "missing.jsonl")


def test_with_model_rewrites_the_body_or_gemini_url() -> None:
    ex = Exchange(api="chat", body=dict(CHAT), model="gpt-4o").with_model("other")
    assert ex.body["model"] == "other" and ex.model == "other"
    gem = Exchange(api="gemini", body={"contents": []}, model="a", stream=True).with_model("b")
    assert gem.path() == "/v1beta/models/b:streamGenerateContent?alt=sse"
    assert gem.to_request().model == "b" and gem.to_request().stream is True


def _entry(url: str, body: Any, response: dict[str, Any], method: str = "POST") -> dict[str, Any]:
    return {
        "startedDateTime": "2026-12-07T00:00:00Z",
        "time": 250,
        "request": {
            "method": method,
            "url": url,
            "headers": [
                {"name": "x-api-key", "value": "sk-ant-api03-secretsecretsecret"},
                {"name": "anthropic-version", "value": "2023-06-01"},
                {"name": ":authority", "value": "api.anthropic.com"},
            ],
            "postData": {"mimeType": "application/json", "text": json.dumps(body)},
        },
        "response": {"status": 200, "content": response},
    }


def test_har_keeps_llm_calls_folds_streams_and_redacts(tmp_path: Path) -> None:
    sse = (
        'data: {"id":"c","choices":[{"index":0,"delta":{"content":"he"}}]}\n\n'
        'data: {"id":"c","choices":[{"index":0,"delta":{"content":"y"},"finish_reason":"stop"}]}\n\n'
        "data: [DONE]\n\n"
    )
    secret_body = {
        **ANTHROPIC,
        "messages": [{"role": "user", "content": "key sk-ant-api03-secretsecretsecret"}],
    }
    message = {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "ok"}],
        "stop_reason": "end_turn",
    }
    har = {
        "log": {
            "entries": [
                _entry(
                    "https://api.anthropic.com/v1/messages",
                    secret_body,
                    {"mimeType": "application/json", "text": json.dumps(message)},
                ),
                _entry(
                    "https://api.openai.com/v1/chat/completions",
                    CHAT,
                    {"mimeType": "text/event-stream", "text": sse},
                ),
                _entry("https://example.com/app.js", {}, {}, method="GET"),
                _entry("https://example.com/track", {"a": 1}, {}),
                _entry(
                    "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
                    {"contents": [{"role": "user", "parts": [{"text": "x"}]}]},
                    {
                        "mimeType": "application/json",
                        "encoding": "base64",
                        "text": base64.b64encode(b'{"candidates": []}').decode(),
                    },
                ),
            ]
        }
    }
    path = tmp_path / "session.har"
    path.write_text(json.dumps(har, indent=2))
    exchanges, skipped = _read(path)
    assert skipped.reasons == {"not an LLM API call": 2}
    first, second, third = exchanges
    assert first.api == "messages" and first.response == message and first.duration_s == 0.25
    assert first.headers["x-api-key"] == "[REDACTED]" and ":authority" not in first.headers
    assert "secret" not in json.dumps(first.body)
    assert second.api == "chat" and second.stream
    assert second.response is not None
    assert second.response["choices"][0]["message"]["content"] == "hey"
    assert (third.api, third.model, third.stream, third.response) == (
        "gemini",
        "gemini-2.5-pro",
        True,
        {"candidates": []},
    )


def test_a_json_document_without_entries_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{\n "a": 1\n}\n')
    with pytest.raises(InvalidInput, match="not a HAR file"):
        _read(path)
