from __future__ import annotations

import json
from pathlib import Path

import pytest

from anyllm_cli.errors import InvalidInput
from anyllm_cli.models.anthropic import MessagesRequest, MessagesResponse, UnknownBlock

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_claude_code_request_round_trips() -> None:
    raw = json.loads((FIXTURES / "anthropic" / "claude_code_subagent.request.json").read_text())
    assert MessagesRequest.parse(raw).dump() == raw


def test_absent_stays_absent_and_null_stays_null() -> None:
    raw = {
        "model": "m",
        "max_tokens": 1,
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": None,
    }
    assert MessagesRequest.parse(raw).dump() == raw


ALL_BLOCKS = [
    {"type": "text", "text": "t", "cache_control": {"type": "ephemeral"}},
    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
    {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
    {"type": "document", "source": {"type": "url", "url": "https://x/y.pdf"}},
    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}},
    {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "c"}]}},
    {"type": "document", "source": {"type": "file", "file_id": "file_1"}, "title": "T"},
    {
        "type": "search_result",
        "source": "s",
        "title": "t",
        "content": [{"type": "text", "text": "x"}],
    },
    {"type": "container_upload", "file_id": "file_2"},
    {"type": "redacted_thinking", "data": "opaque"},
    {"type": "thinking", "thinking": "hm", "signature": "sig"},
    {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
    {
        "type": "web_search_tool_result",
        "tool_use_id": "srvtoolu_1",
        "content": [
            {"type": "web_search_result", "url": "u", "title": "t", "encrypted_content": "e"}
        ],
    },
    {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
    {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": [{"type": "text", "text": "ok"}, {"type": "tool_reference", "tool_name": "x"}],
        "is_error": False,
    },
    {"type": "brand_new_block", "whatever": [1, 2]},
]


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=lambda b: b["type"])
def test_every_block_type_parses_and_round_trips(block: dict[str, object]) -> None:
    raw = {"model": "m", "max_tokens": 1, "messages": [{"role": "assistant", "content": [block]}]}
    assert MessagesRequest.parse(raw).dump() == raw


def test_unknown_block_is_kept_whole() -> None:
    req = MessagesRequest.parse(
        {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [ALL_BLOCKS[-1]]}]}
    )
    block = req.messages[0].content[0]  # type: ignore[index]
    assert isinstance(block, UnknownBlock)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"model": "m", "messages": []}, "max_tokens: Field required"),
        (
            {
                "model": "m",
                "max_tokens": 1,
                "messages": [{"role": "user", "content": [{"type": "text"}]}],
            },
            "messages[0].content[0].text: Field required",
        ),
        (
            {"model": "m", "max_tokens": 1, "messages": [{"role": "robot", "content": "x"}]},
            "messages[0].role:",
        ),
        ("{not json", "invalid JSON"),
    ],
)
def test_errors_name_the_json_path(raw: object, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        MessagesRequest.parse(raw)
    assert str(err.value).startswith(message)


def test_response_parses() -> None:
    raw = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [{"type": "text", "text": "hi", "citations": None}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 2, "cache_read_input_tokens": 0},
    }
    assert MessagesResponse.parse(raw).dump() == raw
