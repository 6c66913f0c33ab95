"""Faults through the real server: retries, streams that die or stall, disconnects, limits, bad input."""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import Any

import anthropic
import httpx
import pytest

from tests.e2e.conftest import PROXY_KEY, Closing, ProxyProcess
from tests.e2e.mock_upstream import MockUpstream

pytestmark = pytest.mark.e2e

HEADERS = {"x-api-key": PROXY_KEY, "anthropic-version": "2023-06-01"}


def _body(model: str, text: str = "x", stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": 32,
        "messages": [{"role": "user", "content": text}],
    }
    if stream:
        body["stream"] = True
    return body


def _events(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for frame in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line)
        if "event" in lines:
            out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_upstream_429_then_success_is_retried(
    proxy: ProxyProcess, upstream: MockUpstream, closing: Closing
) -> None:
    client = closing(anthropic.Anthropic(base_url=proxy.url, api_key=PROXY_KEY, max_retries=0))
    message = client.messages.create(**_body("mock-429-once-a", "retry me"))
    assert message.content[0].text == "mock reply: retry me"  # type: ignore[union-attr]
    assert len(upstream.bodies("mock-429-once-a")) == 2


def test_upstream_dying_mid_stream_ends_with_an_error_event(proxy: ProxyProcess) -> None:
    r = httpx.post(f"{proxy.url}/v1/messages", json=_body("mock-die", stream=True), headers=HEADERS)
    assert r.status_code == 200
    events = _events(r.text)
    names = [name for name, _ in events]
    assert names[0] == "message_start"
    assert "content_block_delta" in names
    assert names[-1] == "error"
    assert "message_stop" not in names
    assert events[-1][1]["error"]["type"] == "api_error"


def test_sdk_raises_on_the_in_stream_error(proxy: ProxyProcess, closing: Closing) -> None:
    client = closing(anthropic.Anthropic(base_url=proxy.url, api_key=PROXY_KEY, max_retries=0))
    with (
        pytest.raises(anthropic.APIStatusError),
        client.messages.stream(**_body("mock-die")) as stream,
    ):
        for _ in stream:
            pass


def test_stalled_upstream_gets_pings_then_a_timeout_error(
    proxy: ProxyProcess, upstream: MockUpstream
) -> None:
    r = httpx.post(
        f"{proxy.url}/v1/messages",
        json=_body("mock-stall", "stall-1", stream=True),
        headers=HEADERS,
        timeout=10,
    )
    names = [name for name, _ in _events(r.text)]
    assert names[0] == "message_start"
    assert names.count("ping") >= 2  # ping_interval 0.2 s, read_timeout 1 s
    assert names[-1] == "error"
    assert _events(r.text)[-1][1]["error"]["type"] == "timeout_error"
    assert upstream.wait_closed("stall-1")


def test_client_disconnect_closes_the_upstream_request(
    proxy: ProxyProcess, upstream: MockUpstream
) -> None:
    with httpx.stream(
        "POST", f"{proxy.url}/v1/messages", json=_body("mock-slow", "disc-1", True), headers=HEADERS
    ) as r:
        lines = r.iter_lines()
        assert next(lines) == "event: message_start"
        for line in lines:
            if "tick 2" in line:
                break
    assert upstream.wait_closed("disc-1", timeout=3)


def test_concurrency_limit_answers_529(
    proxy: ProxyProcess, upstream: MockUpstream, closing: Closing
) -> None:
    tags = [f"hold-{n}" for n in range(6)]
    with ExitStack() as stack, httpx.Client(timeout=10) as http:
        for tag in tags:
            r = stack.enter_context(
                http.stream(
                    "POST",
                    f"{proxy.url}/v1/messages",
                    json=_body("mock-slow", tag, True),
                    headers=HEADERS,
                )
            )
            assert r.status_code == 200
        client = closing(anthropic.Anthropic(base_url=proxy.url, api_key=PROXY_KEY, max_retries=0))
        with pytest.raises(anthropic.OverloadedError):
            client.messages.create(**_body("mock-model"))
        health = http.get(f"{proxy.url}/health")
        assert health.status_code == 200
    for tag in tags:
        assert upstream.wait_closed(tag)


def test_body_limit_without_content_length(proxy: ProxyProcess) -> None:
    def chunks() -> Any:
        for _ in range(40):
            yield b"x" * 10_000

    r = httpx.post(f"{proxy.url}/v1/messages", content=chunks(), headers=HEADERS)
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "request_too_large"


def test_bad_json_is_a_400(proxy: ProxyProcess) -> None:
    r = httpx.post(f"{proxy.url}/v1/messages", content=b'{"model": ', headers=HEADERS)
    assert r.status_code == 400
    assert r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert "JSON" in r.json()["error"]["message"]


def test_schema_error_names_the_field(proxy: ProxyProcess) -> None:
    body = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": 5}]}
    r = httpx.post(f"{proxy.url}/v1/messages", json=body, headers=HEADERS)
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith("messages[0].content")


def test_unknown_route_is_404_in_the_client_format(proxy: ProxyProcess) -> None:
    anthropic_style = httpx.get(f"{proxy.url}/v1/messages/nope", headers=HEADERS)
    assert anthropic_style.status_code == 404
    assert anthropic_style.json()["error"]["type"] == "not_found_error"
    openai_style = httpx.post(
        f"{proxy.url}/v1/nothing-here", headers={"authorization": f"Bearer {PROXY_KEY}"}
    )
    assert openai_style.status_code == 404
    assert set(openai_style.json()["error"]) == {"message", "type", "param", "code"}


def test_no_secret_reaches_the_log(proxy: ProxyProcess) -> None:
    httpx.post(f"{proxy.url}/v1/messages", json=_body("mock-model"), headers=HEADERS)
    line = proxy.wait_for_line('"path": "/v1/messages"')
    record = json.loads(line)
    assert {"method", "status", "latency_ms", "request_id", "backend", "tokens_in"} <= set(record)
    text = "\n".join(proxy.lines)
    assert PROXY_KEY not in text
    assert "upstream-secret-key" not in text
