"""The offline echo backend: exact text back, real SSE with usage, tool calls on request."""

from __future__ import annotations

import json
from typing import Any

import pytest

from anyllm_cli.backends.echo import EchoBackend, count
from anyllm_cli.config import BackendSettings
from anyllm_cli.errors import ErrorKind, UpstreamError
from anyllm_cli.translate.streams.sse import SSEDecoder

pytestmark = pytest.mark.anyio

SETTINGS = BackendSettings(name="echo", kind="echo", base_url="echo://offline")
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]


def echo() -> EchoBackend:
    ids = iter(f"id{n}" for n in range(100))
    return EchoBackend(SETTINGS, clock=lambda: 1700000000.5, new_id=lambda: next(ids))


def request(text: Any, **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": text},
        ],
        **extra,
    }


async def frames(backend: EchoBackend, body: dict[str, Any]) -> list[Any]:
    decoder = SSEDecoder()
    events = []
    async with backend.stream("/chat/completions", body) as stream:
        assert stream.status == 200
        assert stream.headers["content-type"] == "text/event-stream"
        async for chunk in stream:
            events.extend(decoder.decode(chunk))
    events.extend(decoder.flush())
    return [None if e.data == "[DONE]" else json.loads(e.data) for e in events]


async def test_send_returns_the_last_user_text_exactly() -> None:
    reply = await echo().send("/chat/completions", request("Hello, world!"))
    body = reply.body
    assert reply.status == 200
    assert body["object"] == "chat.completion"
    assert body["id"] == "chatcmpl-id0"
    assert (body["created"], body["model"]) == (1700000000, "claude-sonnet-4-5")
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Hello, world!"}
    assert choice["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == 4  # Hello , world !
    assert body["usage"]["prompt_tokens"] > count("be brief first ok Hello, world!")  # framing
    assert body["usage"]["total_tokens"] == 4 + body["usage"]["prompt_tokens"]


ANTHROPIC_REQUESTS = [
    {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "Hello"}]},
    {
        "model": "m",
        "max_tokens": 9,
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": [{"type": "text", "text": "and the second?"}]},
        ],
    },
    {
        "model": "m",
        "max_tokens": 9,
        "tools": [
            {
                "name": "get_weather",
                "description": "The weather in a city.",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
    },
]


@pytest.mark.parametrize("anthropic_request", ANTHROPIC_REQUESTS)
async def test_prompt_tokens_equal_count_tokens_for_the_same_request(
    anthropic_request: dict[str, Any],
) -> None:
    from anyllm_cli.models.anthropic import CountTokensRequest, MessagesRequest
    from anyllm_cli.tokens import count_tokens
    from anyllm_cli.translate import messages_via_chat

    chat = messages_via_chat.request(MessagesRequest.parse(anthropic_request)).body
    reply = await echo().send("/chat/completions", chat)
    expected = count_tokens(CountTokensRequest.parse(anthropic_request))
    assert reply.body["usage"]["prompt_tokens"] == expected


async def test_text_parts_are_joined() -> None:
    parts = [
        {"type": "text", "text": "a"},
        {"type": "image_url", "image_url": {"url": "x"}},
        {"type": "text", "text": "b"},
    ]
    reply = await echo().send("/chat/completions", request(parts))
    assert reply.body["choices"][0]["message"]["content"] == "a\nb"


async def test_stream_is_several_chunks_with_usage_and_done() -> None:
    text = "The quick brown fox jumps."
    events = await frames(
        echo(), request(text, stream=True, stream_options={"include_usage": True})
    )
    assert events[-1] is None
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    content = [c["choices"][0]["delta"].get("content") for c in chunks[1:-2]]
    assert len(content) >= 5
    assert "".join(content) == text
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    usage = chunks[-1]
    assert usage["choices"] == []
    assert usage["usage"]["completion_tokens"] == count(text) > 0
    assert {c["id"] for c in chunks} == {"chatcmpl-id0"}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)


async def test_stream_without_include_usage_has_no_usage_chunk() -> None:
    events = await frames(echo(), request("hi there", stream=True))
    assert events[-1] is None
    assert all("usage" not in e and e["choices"] for e in events[:-1])
    assert events[-2]["choices"][0]["finish_reason"] == "stop"


async def test_tool_call_on_request() -> None:
    body = request('/tool get_weather {"city": "Paris"}', tools=TOOLS)
    reply = await echo().send("/chat/completions", body)
    choice = reply.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert call["id"].startswith("call_")


async def test_tool_call_streams_arguments_in_pieces() -> None:
    body = request('/tool get_weather {"city": "Paris", "unit": "celsius"}', tools=TOOLS)
    events = await frames(echo(), {**body, "stream_options": {"include_usage": True}})
    deltas = [c["choices"][0]["delta"] for c in events[:-1] if c["choices"]]
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert calls[0]["function"]["name"] == "get_weather"
    assert len(calls) > 2
    arguments = "".join(c["function"]["arguments"] for c in calls)
    assert json.loads(arguments) == {"city": "Paris", "unit": "celsius"}
    assert events[-3]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    "body",
    [
        request("/tool get_weather {}"),  # no tools offered
        request("/tool other {}", tools=TOOLS),  # not an offered tool
        request("/tool get_weather {not json", tools=TOOLS),
    ],
)
async def test_tool_syntax_otherwise_echoes(body: dict[str, Any]) -> None:
    reply = await echo().send("/chat/completions", body)
    message = reply.body["choices"][0]["message"]
    assert message["content"] == body["messages"][-1]["content"]


async def test_errors() -> None:
    with pytest.raises(UpstreamError) as info:
        await echo().send("/embeddings", request("x"))
    assert (info.value.kind, info.value.status) == (ErrorKind.NOT_FOUND, 404)
    with pytest.raises(UpstreamError) as info:
        await echo().send("/chat/completions", {"messages": "nope"})
    assert (info.value.kind, info.value.status) == (ErrorKind.INVALID_REQUEST, 400)
    with pytest.raises(UpstreamError) as info:
        async with echo().forward("POST", "/embeddings", b"{}", {}):
            pytest.fail("entered")
    assert info.value.status == 404
    with pytest.raises(UpstreamError):
        async with echo().stream("/chat/completions", {}):
            pytest.fail("entered")


async def test_no_user_message_echoes_empty_text() -> None:
    reply = await echo().send("/chat/completions", {"messages": []})
    assert reply.body["choices"][0]["message"]["content"] == ""
    assert reply.body["model"] == "echo"
    await echo().aclose()
