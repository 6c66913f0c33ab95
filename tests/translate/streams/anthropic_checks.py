"""Checks shared by the tests of every stream route that emits Anthropic events.

`events_of` decodes SSE bytes (event names must match `type`s), `check_grammar` asserts the event
order every Anthropic client relies on, and `sdk_accumulate` folds events the way the official
`anthropic` SDK does, so a route's stream can be compared with its non-stream reply.
"""

from __future__ import annotations

import json
from typing import Any

from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from anyllm_cli.translate.streams.sse import SSEDecoder

EVENT = TypeAdapter(RawMessageStreamEvent)


def events_of(sse: bytes) -> list[dict[str, Any]]:
    decoder = SSEDecoder()
    frames = decoder.decode(sse) + decoder.flush()
    events = [json.loads(frame.data) for frame in frames]
    assert [frame.event for frame in frames] == [e["type"] for e in events]
    return events


def check_grammar(events: list[dict[str, Any]]) -> None:
    """message_start first; blocks 0, 1, 2, ... each started once and stopped once, never
    interleaved, deltas only inside the open block; one message_delta, then message_stop last.
    A stream that failed ends with its one error event instead."""
    if events and events[-1]["type"] == "error":
        assert all(e["type"] != "error" for e in events[:-1])
        assert all(e["type"] not in ("message_delta", "message_stop") for e in events)
        events = events[:-1]
        if not events:
            return
    else:
        assert events[-1]["type"] == "message_stop"
        assert events[-2]["type"] == "message_delta"
        assert [e["type"] for e in events].count("message_delta") == 1
    assert events[0]["type"] == "message_start"
    assert [e["type"] for e in events].count("message_start") == 1
    open_index: int | None = None
    next_index = 0
    for event in events[1:]:
        etype = event["type"]
        if etype == "content_block_start":
            assert open_index is None and event["index"] == next_index
            open_index, next_index = event["index"], next_index + 1
        elif etype == "content_block_delta":
            assert event["index"] == open_index
        elif etype == "content_block_stop":
            assert event["index"] == open_index
            open_index = None
        else:
            assert open_index is None


def sdk_accumulate(events: list[dict[str, Any]]) -> dict[str, Any]:
    snapshot = None
    bufs: dict[int, bytes] = {}
    for event in events:
        snapshot = accumulate_event(
            event=EVENT.validate_python(event), current_snapshot=snapshot, json_bufs=bufs
        )
    assert snapshot is not None
    return normal(snapshot.to_dict())


def normal(message: dict[str, Any]) -> dict[str, Any]:
    return Message.model_validate(message).model_dump(mode="json", exclude_none=True)
