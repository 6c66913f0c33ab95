"""Senders: to a URL (httpx on a MockTransport) and through an in-process Pipeline; failures are
results (status, kind), never exceptions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from anyllm_cli.backends import build_backend
from anyllm_cli.pipeline import Pipeline
from anyllm_cli.pipeline.seams import Usage
from anyllm_cli.replay.cassette import Exchange
from anyllm_cli.replay.client import HTTPSender, Outcomes, PipelineSender
from anyllm_cli.routing import StaticRouter
from tests.conftest import MockChat, backend_settings, chat_chunk, chat_response, sse

ANTHROPIC = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 10,
    "messages": [{"role": "user", "content": "hi"}],
}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


@asynccontextmanager
async def http_sender(handler: object, key: str | None = "k") -> AsyncIterator[HTTPSender]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:  # type: ignore[arg-type]
        yield HTTPSender("http://proxy.test/v1/", client, api_key=key)


@pytest.mark.anyio
async def test_each_api_goes_to_its_route_with_its_key_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=chat_response())

    async with http_sender(handler) as sender:
        headers = {"anthropic-version": "2023-06-01", "user-agent": "x"}
        await sender.send(Exchange(api="messages", body=ANTHROPIC, headers=headers))
        await sender.send(Exchange(api="chat", body=CHAT))
        sent = await sender.send(
            Exchange(api="gemini", body={"contents": []}, model="gemini-2.5-pro")
        )
    assert [r.url.path for r in seen] == [
        "/v1/messages",
        "/v1/chat/completions",
        "/v1beta/models/gemini-2.5-pro:generateContent",
    ]
    assert (
        seen[0].headers["x-api-key"] == "k" and seen[0].headers["anthropic-version"] == "2023-06-01"
    )
    assert "user-agent" not in seen[0].headers or seen[0].headers["user-agent"] != "x"
    assert seen[1].headers["authorization"] == "Bearer k"
    assert seen[2].headers["x-goog-api-key"] == "k"
    assert json.loads(seen[1].content) == CHAT
    assert (
        sent.ok and sent.status == 200 and sent.response == chat_response() and sent.ttft_s is None
    )


@pytest.mark.anyio
async def test_a_stream_is_timed_and_folded() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = sse(chat_chunk({"content": "he"}), chat_chunk({"content": "y"}, "stop"), "[DONE]")
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    async with http_sender(handler) as sender:
        sent = await sender.send(Exchange(api="chat", body={**CHAT, "stream": True}, stream=True))
    assert sent.ok and sent.ttft_s is not None and sent.ttft_s <= sent.latency_s
    assert sent.response is not None and sent.response["choices"][0]["message"]["content"] == "hey"


@pytest.mark.anyio
async def test_failures_are_results() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        model = json.loads(request.content)["model"]
        if model == "limited":
            return httpx.Response(
                429,
                json={
                    "type": "error",
                    "error": {"type": "rate_limit_error", "message": "slow down"},
                },
            )
        if model == "cut":  # a 200 stream that stops without [DONE]
            return httpx.Response(200, content=sse(chat_chunk({"content": "pa"})))
        if model == "midway":
            body = sse(
                chat_chunk({"content": "pa"}),
                {"error": {"type": "server_error", "message": "gone"}},
            )
            return httpx.Response(200, content=body)
        raise httpx.ConnectError("refused")

    async with http_sender(handler) as sender:
        limited = await sender.send(
            Exchange(api="messages", body={**ANTHROPIC, "model": "limited"})
        )
        midway = await sender.send(
            Exchange(api="chat", body={**CHAT, "model": "midway"}, stream=True)
        )
        refused = await sender.send(Exchange(api="chat", body={**CHAT, "model": "down"}))
        cut = await sender.send(Exchange(api="chat", body={**CHAT, "model": "cut"}, stream=True))
    assert (limited.status, limited.error, limited.error_message) == (
        429,
        "rate_limit",
        "slow down",
    )
    assert (midway.status, midway.error) == (200, "api_error")
    assert midway.response is not None  # what arrived before the error is kept
    assert (refused.status, refused.error) == (0, "connection")
    assert (cut.status, cut.error) == (200, "incomplete_stream") and cut.response is not None


class HalfCent:
    def price(self, backend: str, model: str, usage: Usage) -> float | None:
        return 0.005 if backend == "mock" else None


@pytest.mark.anyio
async def test_in_process_through_echo_and_a_chat_upstream() -> None:
    upstream = MockChat()
    async with httpx.AsyncClient(transport=upstream.transport()) as client:
        settings = {
            "echo": backend_settings("echo", kind="echo", base_url="", api_key=None),
            "mock": backend_settings("mock", model_map={"claude-sonnet-4-6": "up-model"}),
        }
        backends = {name: build_backend(b, client) for name, b in settings.items()}
        outcomes = Outcomes()
        pipeline = Pipeline(
            backends,
            router=StaticRouter(settings, "mock"),
            observers=[outcomes],
            pricer=HalfCent(),
        )
        echo = PipelineSender(pipeline, backend="echo", name="echo", outcomes=outcomes)
        by_record = PipelineSender(pipeline, backend=None, name="mock", outcomes=outcomes)
        plain = await echo.send(Exchange(api="messages", body=ANTHROPIC))
        streamed = await echo.send(Exchange(api="chat", body={**CHAT, "stream": True}, stream=True))
        mocked = await by_record.send(
            Exchange(
                api="messages", body={**ANTHROPIC, "stream": True}, stream=True, backend="gone"
            )
        )
        recorded_backend = await by_record.send(Exchange(api="chat", body=CHAT, backend="echo"))
        bad = await by_record.send(Exchange(api="messages", body={"model": "x"}))
    assert plain.ok and plain.response is not None and plain.response["content"][0]["text"] == "hi"
    assert plain.cost_usd is None  # echo has no price
    assert plain.tokens is not None and plain.tokens[1] > 0  # as the pipeline metered it
    assert streamed.ok and streamed.ttft_s is not None
    assert streamed.response is not None
    assert streamed.response["choices"][0]["message"]["content"] == "hi"
    assert mocked.ok and mocked.response is not None and mocked.cost_usd == 0.005
    assert [b["text"] for b in mocked.response["content"]] == ["streamed"]
    assert upstream.bodies()[0]["model"] == "up-model"
    assert recorded_backend.ok and len(upstream.requests) == 1  # the recorded backend, echo
    assert (bad.status, bad.error) == (400, "invalid_request")
    assert outcomes.pop("anything") is None  # every outcome was taken by its sender


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("api", "events", "error"),
    [
        (
            "messages",
            [{"type": "message_start", "message": {"id": "m", "content": []}}],
            "incomplete_stream",
        ),
        (
            "messages",
            [
                {"type": "message_start", "message": {"id": "m", "content": []}},
                {"type": "message_stop"},
            ],
            None,
        ),
        (
            "gemini",
            [{"candidates": [{"content": {"parts": [{"text": "a"}]}}]}],
            "incomplete_stream",
        ),
        (
            "gemini",
            [{"candidates": [{"content": {"parts": [{"text": "a"}]}, "finishReason": "STOP"}]}],
            None,
        ),
    ],
)
async def test_each_api_s_end_mark(
    api: str, events: list[dict[str, object]], error: str | None
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=sse(*events))

    async with http_sender(handler) as sender:
        sent = await sender.send(Exchange(api=api, body={"contents": []}, model="g", stream=True))
    assert sent.error == error
