"""The pure hop table, the stream translators that relay or join, and the wire shaping beside it."""

from __future__ import annotations

from typing import Any

from anyllm_cli.errors import ErrorKind
from anyllm_cli.models.anthropic import CountTokensRequest
from anyllm_cli.translate.hops import (
    HOPS,
    ChainedStream,
    HopOptions,
    PassThrough,
    clamp_chat_body,
    gemini_count_body,
)
from anyllm_cli.translate.streams.chat_via_messages import ChatViaMessagesStream
from anyllm_cli.translate.streams.messages_via_chat import MessagesViaChatStream


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "up",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def test_every_upstream_api_has_a_hop() -> None:
    assert set(HOPS) == {"chat", "responses", "gemini", "converse"}


def test_chained_streams_translate_twice_and_gather_degradations() -> None:
    chain = ChainedStream(
        MessagesViaChatStream(requested_model="claude-x", input_tokens=3),
        ChatViaMessagesStream(requested_model="gpt-x", created=5, include_usage=True),
    )
    out = []
    for chunk in (
        _chunk({"role": "assistant", "content": "Hel"}),
        _chunk({"content": "lo"}),
        _chunk({}, "stop"),
    ):
        out += chain.feed(chunk)
    out += chain.finish()
    assert out[-1] is None  # [DONE]
    text = "".join(
        (c["choices"][0]["delta"].get("content") or "") for c in out[:-1] if c and c["choices"]
    )
    assert text == "Hello"
    assert out[-2]["usage"]["prompt_tokens"] >= 3
    assert all(c["model"] == "gpt-x" for c in out[:-1] if c)
    assert isinstance(chain.degradations, list)


def test_a_chained_failure_is_in_the_clients_shape() -> None:
    chain = ChainedStream(
        MessagesViaChatStream(requested_model="claude-x"),
        ChatViaMessagesStream(requested_model="gpt-x", created=5),
    )
    chain.feed(_chunk({"role": "assistant", "content": "Hi"}))
    failure = chain.fail(ErrorKind.TIMEOUT, "upstream went quiet")
    assert failure[0] is not None and "error" in failure[0]


def test_a_passthrough_relays_and_fails_in_the_anthropic_shape() -> None:
    relay = PassThrough()
    assert relay.feed({"type": "ping"}) == [{"type": "ping"}]
    assert relay.finish() == []
    failed = relay.fail(ErrorKind.OVERLOADED, "busy")
    assert failed == [{"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}]


def test_a_relayed_chat_body_is_clamped_to_the_models_limit() -> None:
    body: dict[str, Any] = {"max_tokens": 5000, "max_completion_tokens": 50}
    found = clamp_chat_body(body, 100, "up-x")
    assert body == {"max_tokens": 100, "max_completion_tokens": 50}
    assert [(d.code, d.path) for d in found] == [("max_tokens_clamped", "max_tokens")]
    assert clamp_chat_body(body, None, "up-x") == []


def test_the_gemini_count_body_is_the_request_without_its_config() -> None:
    req = CountTokensRequest.parse(
        {"model": "m", "system": "be brief", "messages": [{"role": "user", "content": "hi"}]}
    )
    body = gemini_count_body(req, HopOptions(), "gemini-2.5-flash")
    inner = body["generateContentRequest"]
    assert inner["model"] == "models/gemini-2.5-flash"
    assert inner["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert "generationConfig" not in inner
