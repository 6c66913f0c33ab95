"""OpenAI Chat wire models: parse, keep unknown fields, dump without inventing nulls."""

from __future__ import annotations

import pytest

from anyllm_cli.errors import InvalidInput
from anyllm_cli.models.openai_chat import ChatRequest, ChatResponse


def test_a_request_round_trips_with_unknown_fields_kept() -> None:
    body = {
        "model": "gpt-x",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        ],
        "seed": 3,
        "some_new_field": {"kept": True},
    }
    assert ChatRequest.parse(body).dump() == body


def test_a_bad_request_names_the_field() -> None:
    with pytest.raises(InvalidInput) as info:
        ChatRequest.parse({"messages": []})
    assert info.value.path == "model"


def test_a_response_parses() -> None:
    body = {
        "id": "c1",
        "object": "chat.completion",
        "created": 1,
        "model": "up",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
    }
    resp = ChatResponse.parse(body)
    assert resp.choices[0].message.content == "hi"
    assert resp.dump() == body
