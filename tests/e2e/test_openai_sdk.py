"""The official `openai` SDK against the real `anyllm serve`: chat completions in and out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import PROXY_KEY, Closing, ProxyProcess
from tests.e2e.mock_upstream import MockUpstream

pytestmark = pytest.mark.e2e

TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


@pytest.fixture
def client(proxy: ProxyProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{proxy.url}/v1", api_key=PROXY_KEY, max_retries=0, timeout=10
    ) as client:
        yield client


def test_chat_completion_passes_straight_through(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    reply = client.chat.completions.create(
        model="mock-chat", messages=[{"role": "user", "content": "hello chat"}]
    )
    assert reply.choices[0].message.content == "mock reply: hello chat"
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == 11
    sent = upstream.bodies("mock-chat")[-1]
    assert sent == {"model": "mock-chat", "messages": [{"role": "user", "content": "hello chat"}]}


def test_model_map_applies_to_openai_clients(client: openai.OpenAI, upstream: MockUpstream) -> None:
    client.chat.completions.create(
        model="claude-sonnet-4-6", messages=[{"role": "user", "content": "mapped"}]
    )
    assert upstream.bodies("mock-model")[-1]["messages"][0]["content"] == "mapped"


def test_streamed_chat_completion(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="mock-chat-stream",
        messages=[{"role": "user", "content": "stream it"}],
        stream=True,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "mock reply: stream it"
    assert all(c.usage is None for c in chunks)  # not asked for, so not shown


def test_streamed_usage_when_asked(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="mock-chat-usage",
        messages=[{"role": "user", "content": "count"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 7


def test_tool_calls(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="mock-tools", messages=[{"role": "user", "content": "weather?"}], tools=TOOLS
    )
    call = reply.choices[0].message.tool_calls
    assert call is not None
    assert call[0].function.name == "get_weather"  # type: ignore[union-attr]
    assert call[0].function.arguments == '{"city": "Paris"}'  # type: ignore[union-attr]


def test_streamed_tool_calls(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="mock-tools",
        messages=[{"role": "user", "content": "weather?"}],
        tools=TOOLS,
        stream=True,
    )
    arguments = ""
    for chunk in stream:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            arguments += call.function.arguments or "" if call.function else ""
    assert arguments == '{"city": "Paris"}'


def test_openai_errors_have_openai_shape(proxy: ProxyProcess, closing: Closing) -> None:
    bad = closing(openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="wrong", max_retries=0))
    with pytest.raises(openai.AuthenticationError) as info:
        bad.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert info.value.body is not None


def test_upstream_503_stays_503_for_openai_clients(proxy: ProxyProcess, closing: Closing) -> None:
    client = closing(
        openai.OpenAI(base_url=f"{proxy.url}/noretry/v1", api_key=PROXY_KEY, max_retries=0)
    )
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(
            model="mock-503", messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.status_code == 503


def test_models_list_in_openai_shape(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "claude-sonnet-4-6" in ids


def test_embeddings_pass_through(client: openai.OpenAI, upstream: MockUpstream) -> None:
    result = client.embeddings.create(model="mock-embed", input="hi")
    assert result.data[0].embedding == [0.5, 2.0]  # decoded from the base64 the SDK asks for
    recorded = next(r for r in upstream.requests if r.path == "/v1/embeddings")
    assert PROXY_KEY not in " ".join(recorded.headers.values())


def test_echo_backend_under_its_name(proxy: ProxyProcess) -> None:
    r = httpx.post(
        f"{proxy.url}/echo/v1/chat/completions",
        json={"model": "anything", "messages": [{"role": "user", "content": "echo me"}]},
        headers={"authorization": f"Bearer {PROXY_KEY}"},
    )
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "echo me"
