"""The official `anthropic` SDK against the real `anyllm serve` in front of the mock upstream."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from tests.e2e.conftest import PROXY_KEY, Closing, ProxyProcess
from tests.e2e.mock_upstream import UPSTREAM_KEY, MockUpstream

pytestmark = pytest.mark.e2e

# A 1x1 PNG.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4e90000000049454e44ae426082"
    )
).decode()
WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
def client(proxy: ProxyProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=proxy.url, api_key=PROXY_KEY, max_retries=0, timeout=10
    ) as client:
        yield client


def test_create_maps_the_model_and_translates_the_reply(
    client: anthropic.Anthropic, upstream: MockUpstream
) -> None:
    message = client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=256,
        messages=[{"role": "user", "content": "hello create"}],
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "mock reply: hello create"
    assert message.model == "claude-sonnet-4-6"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 11
    assert message.usage.output_tokens == 7
    sent = upstream.bodies("mock-model")[-1]
    assert sent["messages"][-1]["content"] in (
        "hello create",
        [{"type": "text", "text": "hello create"}],
    )


def test_client_credentials_never_reach_the_upstream(
    client: anthropic.Anthropic, upstream: MockUpstream
) -> None:
    client.messages.create(
        model="mock-creds", max_tokens=16, messages=[{"role": "user", "content": "creds"}]
    )
    recorded = next(r for r in upstream.requests if r.body.get("model") == "mock-creds")
    headers = {k.lower(): v for k, v in recorded.headers.items()}
    assert headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert PROXY_KEY not in " ".join(headers.values())
    assert "x-api-key" not in headers


def test_stream_delivers_every_event_and_usage(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="mock-stream",
        max_tokens=64,
        messages=[{"role": "user", "content": "stream me please"}],
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    assert kinds.count("content_block_delta") > 3
    assert final.content[0].type == "text"
    assert final.content[0].text == "mock reply: stream me please"
    assert final.usage.output_tokens == 7


def test_message_start_carries_an_input_estimate(proxy: ProxyProcess) -> None:
    body = {
        "model": "mock-estimate",
        "max_tokens": 16,
        "stream": True,
        "messages": [{"role": "user", "content": "how many tokens is this request " * 20}],
    }
    headers = {"x-api-key": PROXY_KEY, "anthropic-version": "2023-06-01"}
    with httpx.stream("POST", f"{proxy.url}/v1/messages", json=body, headers=headers) as r:
        lines = r.iter_lines()
        first, second = next(lines), next(lines)
    assert first == "event: message_start"
    assert '"input_tokens":' in second
    assert '"input_tokens":0' not in second


def test_tool_use_round_trip(client: anthropic.Anthropic, upstream: MockUpstream) -> None:
    question: Any = {"role": "user", "content": "weather in Paris?"}
    first = client.messages.create(
        model="mock-tools", max_tokens=256, tools=[WEATHER_TOOL], messages=[question]
    )
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather"
    assert call.input == {"city": "Paris"}
    follow_up: Any = [
        question,
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C"}],
        },
    ]
    second = client.messages.create(
        model="mock-tools", max_tokens=256, tools=[WEATHER_TOOL], messages=follow_up
    )
    assert second.content[0].type == "text"
    assert second.content[0].text == "tool said: 18C"
    sent = upstream.bodies("mock-tools")[-1]["messages"]
    assert sent[-2]["tool_calls"][0]["id"] == call.id
    assert sent[-1] == {"role": "tool", "tool_call_id": call.id, "content": "18C"}


def test_streamed_tool_call_arrives_whole(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="mock-tools",
        max_tokens=256,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "weather?"}],
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    block = final.content[-1]
    assert block.type == "tool_use"
    assert block.input == {"city": "Paris"}


def test_reasoning_becomes_a_thinking_block(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="mock-reasoning", max_tokens=256, messages=[{"role": "user", "content": "think"}]
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "Let me think about this."  # type: ignore[union-attr]


def test_images_reach_the_upstream(client: anthropic.Anthropic, upstream: MockUpstream) -> None:
    image: Any = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
    }
    client.messages.create(
        model="mock-image",
        max_tokens=32,
        messages=[{"role": "user", "content": [image, {"type": "text", "text": "what is this?"}]}],
    )
    parts = upstream.bodies("mock-image")[-1]["messages"][-1]["content"]
    urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert urls == [f"data:image/png;base64,{PNG}"]


def test_count_tokens_is_answered_locally(
    client: anthropic.Anthropic, upstream: MockUpstream
) -> None:
    before = len(upstream.requests)
    result = client.messages.count_tokens(
        model="claude-sonnet-4-6",
        messages=[{"role": "user", "content": "Count the tokens in this sentence, please."}],
    )
    assert 8 <= result.input_tokens <= 40
    assert len(upstream.requests) == before


def test_models_list_offers_claude_ids(client: anthropic.Anthropic) -> None:
    ids = [m.id for m in client.models.list()]
    assert "claude-sonnet-4-6" in ids
    assert "claude-haiku-4-5-20251001" in ids
    assert "mock-model" not in ids  # upstream names are not offered; the mapped client names are


def test_ratelimit_headers_are_derived(proxy: ProxyProcess) -> None:
    body = {"model": "mock-rl", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}
    headers = {"x-api-key": PROXY_KEY, "anthropic-version": "2023-06-01"}
    r = httpx.post(f"{proxy.url}/v1/messages", json=body, headers=headers)
    assert r.status_code == 200
    assert r.headers["anthropic-ratelimit-requests-limit"] == "100"
    assert r.headers["anthropic-ratelimit-tokens-remaining"] == "9000"
    assert r.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
    assert r.headers["x-request-id"]
    assert float(r.headers["x-anyllm-overhead-ms"]) >= 0


# -- typed errors ------------------------------------------------------------------------------------


def test_upstream_400_is_a_bad_request(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(
            model="mock-400", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert "upstream says 400" in str(info.value)


def test_wrong_key_is_401(proxy: ProxyProcess, closing: Closing) -> None:
    bad = closing(anthropic.Anthropic(base_url=proxy.url, api_key="wrong", max_retries=0))
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "x"}])


def test_body_over_the_limit_is_413(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.ContentTooLargeError):
        client.messages.create(
            model="mock-big", max_tokens=8, messages=[{"role": "user", "content": "x" * 300_000}]
        )


def test_upstream_429_keeps_status_and_retry_after(proxy: ProxyProcess, closing: Closing) -> None:
    client = closing(
        anthropic.Anthropic(base_url=f"{proxy.url}/noretry", api_key=PROXY_KEY, max_retries=0)
    )
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(
            model="mock-429", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.response.headers["retry-after"] == "7"


def test_upstream_503_stays_503(proxy: ProxyProcess, closing: Closing) -> None:
    client = closing(
        anthropic.Anthropic(base_url=f"{proxy.url}/noretry", api_key=PROXY_KEY, max_retries=0)
    )
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(
            model="mock-503", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.status_code == 503


def test_streamed_upstream_error_before_the_first_byte_is_an_http_error(
    client: anthropic.Anthropic,
) -> None:
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(
            model="mock-500", max_tokens=8, stream=True, messages=[{"role": "user", "content": "x"}]
        )
