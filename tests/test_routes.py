"""The per-API routes the pipeline drives, and chained stream translators."""

from __future__ import annotations

from typing import Any

import pytest

from anyllm_cli.errors import UNFINISHED, ErrorKind, UpstreamError
from anyllm_cli.models.anthropic import MessagesRequest
from anyllm_cli.routes import ROUTES, ChainedStream, PassThrough, Target, parse_upstream
from anyllm_cli.translate.streams.chat_via_messages import ChatViaMessagesStream
from anyllm_cli.translate.streams.messages_via_chat import MessagesViaChatStream
from tests.conftest import backend_settings


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "up",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def test_chat_route_binds_the_backend_settings() -> None:
    settings = backend_settings(max_output_tokens={"up": 100})
    target = Target(settings, "up", session_id="sess-1")
    req = MessagesRequest.parse(
        {"model": "up", "max_tokens": 64000, "messages": [{"role": "user", "content": "hi"}]}
    )
    route = ROUTES["chat"]
    body = route.request(req, target).body
    assert (body["max_tokens"], body["prompt_cache_key"]) == (100, "sess-1")
    assert route.path(target, stream=True) == "/chat/completions"


def test_an_upstream_reply_that_does_not_parse_is_a_502() -> None:
    with pytest.raises(UpstreamError) as info:
        parse_upstream(MessagesRequest.parse, {"nonsense": True})
    assert (info.value.status, info.value.kind) == (502, ErrorKind.API_ERROR)


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


def test_a_chain_cut_short_ends_in_the_clients_error_and_no_done() -> None:
    chain = ChainedStream(
        MessagesViaChatStream(requested_model="claude-x"),
        ChatViaMessagesStream(requested_model="gpt-x", created=5),
    )
    chain.feed(_chunk({"role": "assistant", "content": "Hi"}))
    out = chain.finish()
    assert None not in out  # no [DONE]
    last = out[-1]
    assert last is not None and last["error"]["message"] == UNFINISHED
    assert chain.done and chain.finish() == []


MESSAGE_STOP = {"type": "message_stop"}


def test_a_relay_without_message_stop_ends_in_an_error_event() -> None:
    relay = PassThrough()
    assert relay.feed({"type": "message_start", "message": {}}) == [
        {"type": "message_start", "message": {}}
    ]
    assert relay.finish() == [
        {"type": "error", "error": {"type": "api_error", "message": UNFINISHED}}
    ]
    assert relay.done and relay.finish() == [] and relay.fail(ErrorKind.API_ERROR, "x") == []


def test_a_relay_is_done_at_message_stop_and_after_an_error_event() -> None:
    relay = PassThrough()
    relay.feed(MESSAGE_STOP)
    assert relay.done and relay.finish() == [] and relay.feed({"type": "ping"}) == []
    assert relay.fail(ErrorKind.API_ERROR, "late") == []
    failed = PassThrough()
    failed.feed({"type": "error", "error": {"type": "overloaded_error", "message": "o"}})
    assert failed.done and failed.finish() == []


def test_a_relay_whose_signal_is_not_last_waits_for_the_end() -> None:
    relay = PassThrough(finished=lambda e: bool(e.get("finishReason")), final=False)
    relay.feed({"finishReason": "STOP"})
    assert not relay.done  # a usage chunk may follow
    assert relay.feed({"usage": 1}) == [{"usage": 1}]
    assert relay.finish() == [] and relay.done


def _thinking_request(**thinking: Any) -> MessagesRequest:
    return MessagesRequest.parse(
        {
            "model": "m",
            "max_tokens": 32000,
            "temperature": 0.5,
            "thinking": {"type": "enabled", **thinking},
            "system": "be brief",
            "messages": [{"role": "user", "content": "hi"}],
        }
    )


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("effort", {"reasoning_effort": "medium"}),
        ("openrouter", {"reasoning": {"max_tokens": 10000}}),
        ("glm", {"thinking": {"type": "enabled"}}),
        (
            "google",
            {
                "extra_body": {
                    "google": {
                        "thinking_config": {"thinking_budget": 10000, "include_thoughts": True}
                    }
                }
            },
        ),
    ],
)
def test_thinking_is_asked_for_in_the_providers_own_field(
    style: str, expected: dict[str, Any]
) -> None:
    target = Target(backend_settings(thinking_style=style), "m")
    body = ROUTES["chat"].request(_thinking_request(budget_tokens=10000), target).body
    for key in ("reasoning_effort", "reasoning", "thinking", "extra_body"):
        assert body.get(key) == expected.get(key)


def test_o_series_models_are_checked_by_upstream_name() -> None:
    settings = backend_settings(reasoning_models=("o3", "gpt-5"))
    req = _thinking_request(budget_tokens=2048)
    reasoning = ROUTES["chat"].request(req, Target(settings, "o3-mini")).body
    assert "max_completion_tokens" in reasoning and "temperature" not in reasoning
    assert reasoning["messages"][0]["role"] == "developer"
    plain = ROUTES["chat"].request(req, Target(settings, "gpt-4.1")).body
    assert "max_tokens" in plain and plain["temperature"] == 0.5


def test_each_converse_stream_gets_its_own_message_id() -> None:
    target = Target(backend_settings(), "amazon.nova-pro-v1:0")
    ids = set()
    for _ in range(3):
        translator = ROUTES["bedrock"].stream(target, requested_model="m", input_tokens=1)
        start = translator.feed({"messageStart": {"role": "assistant"}})[0]
        assert isinstance(start, dict)
        ids.add(start["message"]["id"])
    assert len(ids) == 3 and all(i.startswith("msg_bdrk_") for i in ids)


def test_bedrock_claude_bodies_name_what_they_drop() -> None:
    target = Target(
        backend_settings(), "us.anthropic.claude-sonnet-4-6", betas=("effort-2025-11-24",)
    )
    req = MessagesRequest.parse(
        {
            "model": "claude-sonnet-4-6",
            "max_tokens": 64,
            "metadata": {"user_id": "u"},
            "messages": [{"role": "user", "content": "hi"}],
        }
    )
    out = ROUTES["bedrock"].request(req, target)
    assert "metadata" not in out.body and "anthropic_beta" not in out.body
    assert [d.code for d in out.degradations] == ["metadata_dropped", "beta_dropped"]


def test_gemini_streams_without_a_response_id_get_their_own_message_id() -> None:
    target = Target(backend_settings(), "gemini-3-pro")
    chunk = {"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}}]}
    ids = set()
    for _ in range(2):
        start = ROUTES["gemini"].stream(target, requested_model="m", input_tokens=1).feed(chunk)[0]
        assert isinstance(start, dict)
        ids.add(start["message"]["id"])
    assert len(ids) == 2
    with_id = ROUTES["gemini"].stream(target, requested_model="m", input_tokens=1)
    start = with_id.feed({**chunk, "responseId": "r1"})[0]
    assert isinstance(start, dict) and start["message"]["id"] == "msg_r1"
