from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from anyllm_cli.errors import ErrorKind, InvalidInput
from anyllm_cli.translate.streams.accumulate import accumulate
from anyllm_cli.translate.streams.messages_via_converse import MessagesViaConverseStream
from anyllm_cli.translate.streams.pump import SSEPump
from anyllm_cli.translate.streams.sse import SSEDecoder, encode_anthropic

EVENT = TypeAdapter(RawMessageStreamEvent)
MODEL = "claude-x"
TOOL_TURN: list[dict[str, Any]] = [
    {"messageStart": {"role": "assistant"}},
    {
        "contentBlockDelta": {
            "contentBlockIndex": 0,
            "delta": {"reasoningContent": {"text": "Think"}},
        }
    },
    {
        "contentBlockDelta": {
            "contentBlockIndex": 0,
            "delta": {"reasoningContent": {"text": "ing."}},
        }
    },
    {
        "contentBlockDelta": {
            "contentBlockIndex": 0,
            "delta": {"reasoningContent": {"signature": "sig"}},
        }
    },
    {"contentBlockStop": {"contentBlockIndex": 0}},
    {"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"text": "Héllo "}}},
    {"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"text": "there."}}},
    {"contentBlockStop": {"contentBlockIndex": 1}},
    {
        "contentBlockStart": {
            "contentBlockIndex": 2,
            "start": {"toolUse": {"toolUseId": "tu_1", "name": "get"}},
        }
    },
    {"contentBlockDelta": {"contentBlockIndex": 2, "delta": {"toolUse": {"input": '{"a":'}}}},
    {"contentBlockDelta": {"contentBlockIndex": 2, "delta": {"toolUse": {"input": "1}"}}}},
    {"contentBlockStop": {"contentBlockIndex": 2}},
    {"messageStop": {"stopReason": "tool_use"}},
    {
        "metadata": {
            "usage": {"inputTokens": 7, "outputTokens": 11, "cacheReadInputTokens": 2},
            "metrics": {"latencyMs": 5},
        }
    },
]


def run(
    events: list[dict[str, Any]], **kwargs: Any
) -> tuple[list[dict[str, Any]], MessagesViaConverseStream]:
    translator = MessagesViaConverseStream(requested_model=MODEL, **kwargs)
    out = [e for event in events for e in translator.feed(event)]
    return out + translator.finish(), translator


def sdk_accumulate(events: list[dict[str, Any]]) -> dict[str, Any]:
    snapshot = None
    bufs: dict[int, bytes] = {}
    for event in events:
        snapshot = accumulate_event(
            event=EVENT.validate_python(event), current_snapshot=snapshot, json_bufs=bufs
        )
    assert snapshot is not None
    return Message.model_validate(snapshot.to_dict()).model_dump(mode="json", exclude_none=True)


def test_a_tool_turn_folds_into_the_same_message_as_the_sdk_does(
    snapshot: SnapshotAssertion,
) -> None:
    events, translator = run(TOOL_TURN, message_id="msg_1", input_tokens=3)
    for event in events:
        EVENT.validate_python(event)
    ours = accumulate(events)
    assert Message.model_validate(ours).model_dump(
        mode="json", exclude_none=True
    ) == sdk_accumulate(events)
    assert ours["content"] == [
        {"type": "thinking", "thinking": "Thinking.", "signature": "sig"},
        {"type": "text", "text": "Héllo there."},
        {"type": "tool_use", "id": "tu_1", "name": "get", "input": {"a": 1}},
    ]
    assert ours["stop_reason"] == "tool_use"
    assert ours["usage"]["input_tokens"] == 7 and ours["usage"]["cache_read_input_tokens"] == 2
    assert translator.degradations == []
    assert events == snapshot.use_extension(JSONSnapshotExtension)


def test_blocks_open_implicitly_and_never_interleave() -> None:
    events, _ = run(
        [
            {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "a"}}},
            {"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"text": "b"}}},
            {
                "contentBlockDelta": {
                    "contentBlockIndex": 2,
                    "delta": {"reasoningContent": {"redactedContent": "eA=="}},
                }
            },
            {"messageStop": {"stopReason": "max_tokens"}},
            {"metadata": {"usage": {"inputTokens": 1, "outputTokens": 1}}},
        ]
    )
    starts = [e["index"] for e in events if e["type"] == "content_block_start"]
    stops = [e["index"] for e in events if e["type"] == "content_block_stop"]
    assert starts == stops == [0, 1, 2]
    assert accumulate(events)["stop_reason"] == "max_tokens"


@pytest.mark.parametrize(
    ("name", "etype"),
    [
        ("throttlingException", "rate_limit_error"),
        ("serviceUnavailableException", "overloaded_error"),
        ("validationException", "invalid_request_error"),
        ("modelStreamErrorException", "api_error"),
        ("modelTimeoutException", "timeout_error"),
        ("brandNewException", "api_error"),
    ],
)
def test_exceptions_end_the_stream_with_an_error_event(name: str, etype: str) -> None:
    events, translator = run(
        [TOOL_TURN[0], TOOL_TURN[5], {name: {"message": "nope"}}, TOOL_TURN[6]]
    )
    assert events[-1] == {"type": "error", "error": {"type": etype, "message": f"{name}: nope"}}
    assert "message_stop" not in [e["type"] for e in events]
    assert translator.finish() == []


def test_fail_and_a_cut_stream() -> None:
    translator = MessagesViaConverseStream(requested_model=MODEL)
    translator.feed(TOOL_TURN[5])
    assert translator.fail(ErrorKind.TIMEOUT, "idle")[0]["error"]["type"] == "timeout_error"
    events, cut = run(TOOL_TURN[:7], input_tokens=5)  # no messageStop: cut short
    assert events[-1] == {
        "type": "error",
        "error": {"type": "api_error", "message": "upstream stream ended before it finished"},
    }
    assert "message_stop" not in [e["type"] for e in events]
    assert [d.code for d in cut.degradations] == ["stream_ended_without_stop"]
    assert cut.done and cut.finish() == []


def test_unknown_stop_reasons_and_bad_events() -> None:
    events, translator = run(
        [{"messageStop": {"stopReason": "malformed_tool_use"}}, {"metadata": {}}]
    )
    assert accumulate(events)["stop_reason"] == "end_turn"
    assert "stop_reason_unmapped" in [d.code for d in translator.degradations]
    with pytest.raises(InvalidInput):
        MessagesViaConverseStream(requested_model=MODEL).feed({"a": {}, "b": {}})


def sse_bytes(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n".encode() for e in events)


def pumped(chunks: list[bytes]) -> bytes:
    pump = SSEPump(
        MessagesViaConverseStream(requested_model=MODEL, message_id="m"), encode_anthropic
    )
    return b"".join(pump.feed(c) for c in chunks) + pump.finish()


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_rechunking_the_sse_bytes_never_changes_the_output(data: st.DataObject) -> None:
    whole = sse_bytes(TOOL_TURN)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(whole)), max_size=10)))
    chunks = [whole[a:b] for a, b in zip([0, *cuts], [*cuts, len(whole)], strict=True)]
    assert pumped(chunks) == pumped([whole])
    decoder = SSEDecoder()
    assert len(decoder.decode(pumped(chunks)) + decoder.flush()) > 10


def test_message_stop_without_metadata_is_complete() -> None:
    events, translator = run(TOOL_TURN[:-1], input_tokens=5)  # messageStop, then the end
    assert [e["type"] for e in events][-2:] == ["message_delta", "message_stop"]
    assert [d.code for d in translator.degradations] == ["usage_missing"]
    assert accumulate(events)["stop_reason"] == "tool_use"
