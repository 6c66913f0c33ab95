"""`kind = "anthropic"` end to end: the SDKs, `anyllm serve`, and a loopback Anthropic upstream.

Anthropic clients get the upstream's messages and events as sent (signatures included); the proxy
adds its auth, model mapping and the upstream's key; OpenAI clients reach the same upstream through
the reverse route.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.e2e.conftest import PROXY_KEY, ProxyProcess
from tests.e2e.mock_anthropic import COUNT, SIGNATURE, MockAnthropic

pytestmark = pytest.mark.e2e

UPSTREAM_KEY = "sk-ant-upstream-key"
TOOL: Any = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[MockAnthropic]:
    mock = MockAnthropic()
    mock.start()
    yield mock
    mock.stop()


@pytest.fixture(scope="module")
def proxy(
    upstream: MockAnthropic, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    config = f"""
default_backend = "claude"

[server]
proxy_api_keys = ["{PROXY_KEY}"]

[backends.claude]
kind = "anthropic"
base_url = "{upstream.url}"
api_key = "{UPSTREAM_KEY}"
max_retries = 0
model_map = {{ "claude-sonnet-4-6" = "claude-upstream-x" }}
"""
    process = ProxyProcess.start(tmp_path_factory.mktemp("anthropic"), config)
    yield process
    assert process.stop() == 0, "\n".join(process.lines[-30:])


@pytest.fixture
def client(proxy: ProxyProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=proxy.url, api_key=PROXY_KEY, max_retries=0, timeout=10
    ) as client:
        yield client


def test_create_is_relayed_with_our_key_and_the_mapped_model(
    client: anthropic.Anthropic, upstream: MockAnthropic
) -> None:
    message = client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=64,
        messages=[{"role": "user", "content": "Hello"}],
        extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"},
    )
    assert message.model == "claude-upstream-x"
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[1].text == "claude says: Hello"  # type: ignore[union-attr]
    assert message.usage.cache_read_input_tokens == 5
    sent = upstream.last("/v1/messages")
    assert sent.body["model"] == "claude-upstream-x"
    headers = {k.lower(): v for k, v in sent.headers.items()}
    assert headers["x-api-key"] == UPSTREAM_KEY
    assert PROXY_KEY not in " ".join(headers.values())
    assert headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert headers["anthropic-version"] == client.default_headers["anthropic-version"]


def test_stream_delivers_the_upstreams_events(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start"
    assert "thinking" in kinds and "signature" in kinds
    assert final.content[0].signature == SIGNATURE  # type: ignore[union-attr]
    assert final.content[1].text == "claude says: Hi"  # type: ignore[union-attr]
    assert final.usage.output_tokens == 9


def test_tool_round_trip_keeps_the_thinking_signature(
    client: anthropic.Anthropic, upstream: MockAnthropic
) -> None:
    first = client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=256,
        tools=[TOOL],
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    )
    assert first.stop_reason == "tool_use"
    call = first.content[-1]
    assert call.type == "tool_use"
    second = client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=256,
        tools=[TOOL],
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},  # type: ignore[misc]
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}],
            },
        ],
    )
    assert second.content[-1].text == "tool said: sunny"  # type: ignore[union-attr]
    replayed = upstream.last("/v1/messages").body["messages"][1]["content"][0]
    assert replayed == {"type": "thinking", "thinking": "Let me think.", "signature": SIGNATURE}


def test_count_tokens_asks_the_upstream(client: anthropic.Anthropic) -> None:
    count = client.messages.count_tokens(
        model="claude-sonnet-4-6", messages=[{"role": "user", "content": "Hello"}]
    )
    assert count.input_tokens == COUNT


def test_upstream_errors_keep_their_status(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(
            model="mock-429", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.response.headers["retry-after"] == "3"
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(
            model="mock-529", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )


def test_openai_clients_use_the_reverse_route(proxy: ProxyProcess, tmp_path: Path) -> None:
    with openai.OpenAI(
        base_url=f"{proxy.url}/v1", api_key=PROXY_KEY, max_retries=0, timeout=10
    ) as client:
        reply = client.chat.completions.create(
            model="claude-sonnet-4-6", messages=[{"role": "user", "content": "Hey"}]
        )
        assert reply.choices[0].message.content == "claude says: Hey"
        chunks = list(
            client.chat.completions.create(
                model="claude-sonnet-4-6",
                messages=[{"role": "user", "content": "Yo"}],
                stream=True,
            )
        )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "claude says: Yo"


def test_the_stream_is_relayed_byte_for_byte(proxy: ProxyProcess) -> None:
    import httpx

    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": "Bytes"}],
    }
    headers = {"x-api-key": PROXY_KEY, "anthropic-version": "2023-06-01"}
    with httpx.stream("POST", f"{proxy.url}/v1/messages", json=body, headers=headers) as r:
        data = r.read()
    # the mock writes json.dumps' default ", " and ": " separators; a re-encoded event would not
    assert (
        b'event: message_start\ndata: {"type": "message_start", "message": {"id": "msg_01Mock"'
        in data
    )
    assert data.endswith(b'event: message_stop\ndata: {"type": "message_stop"}\n\n')
