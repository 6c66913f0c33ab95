"""The upstream hops bound to a backend: settings into options, paths, parse failures."""

from __future__ import annotations

from typing import Any

import pytest

from anyllm_cli.errors import ErrorKind, UpstreamError
from anyllm_cli.models.anthropic import MessagesRequest
from anyllm_cli.pipeline.hops import ROUTES, Target, parse_upstream
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
