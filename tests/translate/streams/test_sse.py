from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anyllm_cli.translate.streams.sse import (
    SSEDecoder,
    SSEEvent,
    anthropic_frame,
    encode,
    encode_anthropic,
    encode_openai,
    openai_frame,
)

SAMPLE = (
    b'event: message_start\ndata: {"a":1}\n\n'
    b": keepalive\n\n"
    b'data:{"nospace":true}\r\n\r\n'
    b"event: x\r\ndata: line1\r\ndata: line2\r\n\r\n"
    b"data: caf\xc3\xa9 \xe2\x80\xa8 sep\n\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    SSEEvent("message_start", '{"a":1}'),
    SSEEvent(None, '{"nospace":true}'),
    SSEEvent("x", "line1\nline2"),
    SSEEvent(None, "café \u2028 sep"),
    SSEEvent(None, "[DONE]"),
]


def decode_all(chunks: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    out: list[SSEEvent] = []
    for chunk in chunks:
        out += decoder.decode(chunk)
    return out + decoder.flush()


def test_decodes_every_framing() -> None:
    assert decode_all([SAMPLE]) == EXPECTED


def test_last_event_without_blank_line_still_counts() -> None:
    assert decode_all([b"data: tail"]) == [SSEEvent(None, "tail")]


def test_bare_cr_line_endings() -> None:
    assert decode_all([b"event: e\rdata: x\r\r"]) == [SSEEvent("e", "x")]


@given(st.lists(st.integers(min_value=0, max_value=len(SAMPLE)), max_size=20))
def test_rechunking_never_changes_the_events(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [SAMPLE[a:b] for a, b in zip([0, *points], [*points, len(SAMPLE)], strict=True)]
    assert decode_all(chunks) == EXPECTED


def test_encode_round_trips_multiline_data() -> None:
    frame = encode("a\nb", "e")
    assert frame == b"event: e\ndata: a\ndata: b\n\n"
    assert decode_all([frame]) == [SSEEvent("e", "a\nb")]


def test_encode_anthropic_names_the_event() -> None:
    assert encode_anthropic({"type": "ping"}) == b'event: ping\ndata: {"type":"ping"}\n\n'


@pytest.mark.parametrize(
    "event",
    [
        {"type": "content_block_delta", "delta": {"text": "a\nb data: x"}},
        {"type": "odd\nname"},
        {"type": "message_stop"},
    ],
)
def test_a_frame_of_json_already_made_is_the_frame_encoded(event: dict[str, Any]) -> None:
    data = json.dumps(event, separators=(",", ":")).encode()
    assert anthropic_frame(event, data) == encode_anthropic(event)
    assert openai_frame(event, data) == encode_openai(event)
