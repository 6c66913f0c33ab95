from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from anyllm_cli.errors import InvalidInput
from anyllm_cli.models.openai_responses import (
    FunctionCallItem,
    InputMessage,
    OutputMessage,
    OutputText,
    ReasoningItem,
    Refusal,
    ResponsesRequest,
    ResponsesResponse,
    UnknownItem,
    UnknownPart,
)

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "messages_via_responses"
REPLIES = sorted(CORPUS.glob("*.response.json"))


@pytest.mark.parametrize("path", REPLIES, ids=lambda p: p.name)
def test_every_reply_fixture_round_trips(path: Path) -> None:
    raw = json.loads(path.read_text())
    assert ResponsesResponse.parse(raw).dump() == raw


def test_output_items_are_typed_and_unknown_ones_kept_whole() -> None:
    raw = json.loads((CORPUS / "reasoning_text_and_call.response.json").read_text())
    reasoning, message, call = ResponsesResponse.parse(raw).output
    assert isinstance(reasoning, ReasoningItem) and reasoning.encrypted_content
    assert isinstance(message, OutputMessage) and isinstance(message.content[0], OutputText)
    assert isinstance(call, FunctionCallItem) and call.call_id.startswith("call_")
    odd = ResponsesResponse.parse(
        {
            "output": [
                {"type": "web_search_call", "id": "ws_1", "action": {"type": "search"}},
                {
                    "type": "message",
                    "content": [{"type": "refusal", "refusal": "no"}, {"type": "x"}],
                },
            ]
        }
    )
    assert isinstance(odd.output[0], UnknownItem) and odd.output[0].model_extra == {
        "id": "ws_1",
        "action": {"type": "search"},
    }
    parts = odd.output[1].content  # type: ignore[union-attr]
    assert isinstance(parts[0], Refusal) and isinstance(parts[1], UnknownPart)


def test_usage_details_parse() -> None:
    raw = json.loads((CORPUS / "text_with_cache_write.response.json").read_text())
    found = ResponsesResponse.parse(raw).usage
    assert found is not None and found.input_tokens_details is not None
    assert found.input_tokens_details.cached_tokens == 2048
    assert found.input_tokens_details.cache_write_tokens == 512
    assert found.output_tokens_details is not None
    assert found.output_tokens_details.reasoning_tokens == 0


REQUEST: dict[str, Any] = {
    "model": "gpt-5",
    "instructions": "Be brief.",
    "input": [
        {"role": "user", "content": "hi"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]},
        {"type": "reasoning", "summary": [], "encrypted_content": "gAAA"},
        {"type": "message", "role": "assistant", "content": "ok"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "done"},
        {"type": "item_reference", "id": "msg_1"},
    ],
    "tools": [
        {"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": False},
        {"type": "web_search"},
    ],
    "tool_choice": {"type": "function", "name": "f"},
    "reasoning": {"effort": "low", "summary": "auto"},
    "include": ["reasoning.encrypted_content"],
    "store": False,
    "max_output_tokens": 100,
    "temperature": None,
}


def test_requests_round_trip_without_inventing_nulls() -> None:
    req = ResponsesRequest.parse(REQUEST)
    assert req.dump() == REQUEST
    assert isinstance(req.input, list)
    assert isinstance(req.input[0], InputMessage) and req.input[0].type is None
    assert isinstance(req.input[6], UnknownItem)
    assert ResponsesRequest.parse({"model": "m", "input": "hi"}).dump() == {
        "model": "m",
        "input": "hi",
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"input": "hi"}, "model: Field required"),
        ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0]"),
        (
            {"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f"}]},
            "input[0].arguments: Field required",
        ),
        ("{nope", "invalid JSON"),
    ],
)
def test_errors_name_the_json_path(raw: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        ResponsesRequest.parse(raw)
    assert str(caught.value).startswith(message)


def test_a_reply_that_is_not_an_object_is_invalid() -> None:
    with pytest.raises(InvalidInput):
        ResponsesResponse.parse({"output": "nope"})
