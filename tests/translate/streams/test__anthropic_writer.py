"""The writing side of the Anthropic grammar: indices in order, the same event shapes, one end."""

from __future__ import annotations

from typing import Any

from anyllm_cli.translate.streams._anthropic_writer import AnthropicEventWriter, message_start


def test_blocks_get_indices_in_order_and_the_end_is_one_pair() -> None:
    writer = AnthropicEventWriter()
    out: list[dict[str, Any]] = []
    first = writer._start_block({"type": "text", "text": ""}, out)
    writer._stop_block(first, out)
    second = writer._start_block({"type": "tool_use", "id": "t", "name": "f", "input": {}}, out)
    writer._stop_block(second, out)
    writer._end_message(
        {"stop_reason": "tool_use", "stop_sequence": None}, {"output_tokens": 3}, out
    )
    assert (first, second) == (0, 1)
    assert [(e["type"], e.get("index")) for e in out] == [
        ("content_block_start", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_stop", 1),
        ("message_delta", None),
        ("message_stop", None),
    ]


def test_message_start_announces_the_estimate() -> None:
    event = message_start("msg_1", "claude-x", 42)
    assert event["type"] == "message_start"
    assert event["message"]["usage"]["input_tokens"] == 42
    assert (event["message"]["content"], event["message"]["stop_reason"]) == ([], None)
