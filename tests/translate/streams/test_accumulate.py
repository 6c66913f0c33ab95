from __future__ import annotations

from typing import Any

import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from anyllm_cli.errors import ErrorKind, InvalidInput, UpstreamError
from anyllm_cli.translate.streams.accumulate import accumulate

EVENT = TypeAdapter(RawMessageStreamEvent)
CITATION = {
    "type": "char_location",
    "cited_text": "The sky is blue.",
    "document_index": 0,
    "document_title": "Facts",
    "start_char_index": 0,
    "end_char_index": 16,
}


def start(**usage: int) -> dict[str, Any]:
    counts = {"input_tokens": 25, "output_tokens": 1, **usage}
    message = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": counts,
    }
    return {"type": "message_start", "message": message}


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def delta(index: int, **d: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": d}


def stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def message_delta(reason: str | None, **usage: Any) -> dict[str, Any]:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": reason, "stop_sequence": None},
        "usage": usage,
    }


END = {"type": "message_stop"}

# Everything a stream can hold: thinking with a signature, text with citations and a ping in it,
# a tool call with fragments, a no-argument tool call, a server tool call, cumulative usage.
FULL = [
    start(cache_read_input_tokens=100),
    block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
    delta(0, type="thinking_delta", thinking="Let me "),
    delta(0, type="thinking_delta", thinking="reason."),
    delta(0, type="signature_delta", signature="EqQBCgIYAhIM"),
    stop(0),
    block_start(1, {"type": "text", "text": ""}),
    {"type": "ping"},
    delta(1, type="text_delta", text="The sky"),
    delta(1, type="citations_delta", citation=CITATION),
    delta(1, type="text_delta", text=" is blue."),
    delta(1, type="citations_delta", citation={**CITATION, "cited_text": "Blue."}),
    stop(1),
    block_start(2, {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}),
    delta(2, type="input_json_delta", partial_json=""),
    delta(2, type="input_json_delta", partial_json='{"city": "Par'),
    delta(2, type="input_json_delta", partial_json='is"}'),
    stop(2),
    block_start(3, {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}}),
    delta(3, type="input_json_delta", partial_json=""),
    stop(3),
    block_start(
        4, {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}
    ),
    delta(4, type="input_json_delta", partial_json='{"query": "sky"}'),
    stop(4),
    message_delta(None, output_tokens=10),
    message_delta("tool_use", output_tokens=96, input_tokens=30, cache_read_input_tokens=None),
    END,
]


def sdk(events: list[dict[str, Any]]) -> dict[str, Any]:
    snapshot = None
    bufs: dict[int, bytes] = {}
    for event in events:
        if event["type"] == "ping":
            continue
        snapshot = accumulate_event(
            event=EVENT.validate_python(event), current_snapshot=snapshot, json_bufs=bufs
        )
    assert snapshot is not None
    return normal(snapshot.to_dict())


def normal(message: dict[str, Any]) -> dict[str, Any]:
    return Message.model_validate(message).model_dump(mode="json", exclude_none=True)


def test_folds_every_kind_of_delta() -> None:
    message = accumulate(FULL)
    assert message["content"] == [
        {"type": "thinking", "thinking": "Let me reason.", "signature": "EqQBCgIYAhIM"},
        {
            "type": "text",
            "text": "The sky is blue.",
            "citations": [CITATION, {**CITATION, "cited_text": "Blue."}],
        },
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}},
        {
            "type": "server_tool_use",
            "id": "srvtoolu_1",
            "name": "web_search",
            "input": {"query": "sky"},
        },
    ]
    assert message["stop_reason"] == "tool_use"
    # cumulative: the last counts win, never summed; a null keeps the earlier value
    assert message["usage"] == {
        "input_tokens": 30,
        "output_tokens": 96,
        "cache_read_input_tokens": 100,
    }


def test_agrees_with_the_sdk_accumulator() -> None:
    assert normal(accumulate(FULL)) == sdk(FULL)


def test_does_not_touch_its_input() -> None:
    events = [start(), block_start(0, {"type": "text", "text": "", "citations": []}),
              delta(0, type="citations_delta", citation=CITATION), stop(0), END]  # fmt: skip
    accumulate(events)
    assert events[1]["content_block"] == {"type": "text", "text": "", "citations": []}
    assert events[0]["message"]["content"] == []


def test_signature_is_replaced_not_appended() -> None:
    events = [
        start(),
        block_start(0, {"type": "thinking", "thinking": "", "signature": "old"}),
        delta(0, type="signature_delta", signature="a"),
        delta(0, type="signature_delta", signature="b"),
        stop(0),
    ]
    assert accumulate(events)["content"][0]["signature"] == "b"


def test_a_stream_without_message_stop_returns_what_arrived() -> None:
    events = [
        start(),
        block_start(0, {"type": "text", "text": ""}),
        delta(0, type="text_delta", text="cut"),
    ]
    message = accumulate(events)
    assert message["content"] == [{"type": "text", "text": "cut"}]
    assert message["stop_reason"] is None


def test_tool_input_that_is_not_an_object_is_kept_whole() -> None:
    events = [
        start(),
        block_start(0, {"type": "tool_use", "id": "t", "name": "f", "input": {}}),
        delta(0, type="input_json_delta", partial_json='{"a": '),
        stop(0),
    ]
    assert accumulate(events)["content"][0]["input"] == {"_raw": '{"a": '}


def test_unknown_events_and_delta_types_are_ignored() -> None:
    events = [
        start(),
        {"type": "brand_new_event", "x": 1},
        block_start(0, {"type": "text", "text": ""}),
        delta(0, type="brand_new_delta", stuff=1),
        stop(0),
        END,
    ]
    assert accumulate(events)["content"] == [{"type": "text", "text": ""}]


@pytest.mark.parametrize(
    ("etype", "kind"),
    [
        ("overloaded_error", ErrorKind.OVERLOADED),
        ("rate_limit_error", ErrorKind.RATE_LIMIT),
        ("api_error", ErrorKind.API_ERROR),
        ("something_new", ErrorKind.API_ERROR),
    ],
)
def test_an_error_event_raises_upstream_error(etype: str, kind: ErrorKind) -> None:
    events = [start(), {"type": "error", "error": {"type": etype, "message": "Overloaded"}}]
    with pytest.raises(UpstreamError) as caught:
        accumulate(events)
    assert caught.value.kind is kind
    assert caught.value.message == "Overloaded"


@pytest.mark.parametrize(
    ("events", "position"),
    [
        ([], "events"),
        ([block_start(0, {"type": "text", "text": ""})], "events[0]"),
        ([start(), start()], "events[1]"),
        ([start(), delta(0, type="text_delta", text="x")], "events[1]"),
        ([start(), stop(3)], "events[1]"),
        ([start(), block_start(0, {"type": "text", "text": ""}), block_start(0, {"type": "text"})], "events[2]"),
        ([start(), block_start(0, {"type": "text", "text": ""}), delta(0, type="thinking_delta", thinking="x")], "events[2]"),
        ([start(), block_start(0, {"type": "text", "text": ""}), delta(0, type="signature_delta", signature="x")], "events[2]"),
        ([start(), block_start(0, {"type": "thinking", "thinking": ""}), delta(0, type="citations_delta", citation={})], "events[2]"),
        ([start(), block_start(0, {"type": "text", "text": ""}), delta(0, type="text_delta", text=5)], "events[2]"),
        ([start(), {"type": "content_block_start"}], "events[1]"),
        ([start(), {"type": "content_block_start", "index": [], "content_block": {}}], "events[1]"),
        ([{"type": "message_start", "message": "no"}], "events[0]"),
        ([start(), {"type": "message_delta", "delta": "no"}], "events[1]"),
        ([start(), "not an event"], "events[1]"),
        ([{"no": "type"}], "events[0]"),
    ],
)  # fmt: skip
def test_malformed_streams_are_invalid_input(events: list[Any], position: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        accumulate(events)
    assert caught.value.path == position
