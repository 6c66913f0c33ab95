from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from anyllm_cli.errors import ErrorKind, InvalidInput
from anyllm_cli.models.anthropic import MessagesResponse
from anyllm_cli.translate.chat_via_messages import response
from anyllm_cli.translate.streams.accumulate import accumulate
from anyllm_cli.translate.streams.chat_via_messages import ChatViaMessagesStream
from anyllm_cli.translate.streams.pump import SSEPump, decode_event
from anyllm_cli.translate.streams.sse import SSEDecoder, encode_openai

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "streams" / "chat_via_messages"
STREAMS = sorted(FIXTURES.glob("*.sse"))
INCOMPLETE = {"mid_stream_error", "truncated"}  # no message_stop: nothing to compare against
CREATED = 1_700_000_000


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


def _translator(include_usage: bool = True) -> ChatViaMessagesStream:
    return ChatViaMessagesStream(
        requested_model="gpt-4o", created=CREATED, include_usage=include_usage
    )


def pump(chunks: list[bytes], include_usage: bool = True) -> tuple[bytes, ChatViaMessagesStream]:
    translator = _translator(include_usage)
    sse = SSEPump(translator, encode_openai)
    out = b"".join(sse.feed(c) for c in chunks) + sse.finish()
    return out, translator


def decode(out: bytes) -> list[dict[str, Any] | None]:
    decoder = SSEDecoder()
    events = decoder.decode(out) + decoder.flush()
    return [None if e.data == "[DONE]" else json.loads(e.data) for e in events]


def anthropic_events(path: Path) -> list[dict[str, Any]]:
    decoder = SSEDecoder()
    events = decoder.decode(path.read_bytes()) + decoder.flush()
    return [decode_event(e, n) for n, e in enumerate(events, 1)]


def sdk_final(chunks: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Feed our chunks to the OpenAI SDK's own accumulator; return what a client would end with."""
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for chunk in chunks:
        if chunk is not None:
            list(state.handle_chunk(ChatCompletionChunk.model_validate(chunk)))
    # (get_final_completion() refuses finish_reason "length"; the snapshot is the same object)
    return state.current_completion_snapshot.model_dump(mode="json", exclude_none=True)


def _comparable(completion: dict[str, Any]) -> dict[str, Any]:
    choice = completion["choices"][0]
    message = choice["message"]
    calls = [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in message.get("tool_calls") or []
    ]
    return {
        "content": message.get("content") or "",
        "reasoning_content": message.get("reasoning_content"),
        "tool_calls": calls,
        "finish_reason": choice["finish_reason"],
        "usage": completion.get("usage"),
        "id": completion["id"],
    }


# -- fixtures ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", STREAMS, ids=lambda p: p.stem)
def test_stream_fixture(path: Path, snapshot_json: SnapshotAssertion) -> None:
    out, translator = pump([path.read_bytes()])
    chunks = decode(out)
    for chunk in chunks:
        if chunk is not None and "error" not in chunk:
            ChatCompletionChunk.model_validate(chunk)
    assert {
        "chunks": ["[DONE]" if c is None else c for c in chunks],
        "degradations": [dataclasses.asdict(d) for d in translator.degradations],
    } == snapshot_json
    if path.stem not in INCOMPLETE:
        expected = response(
            MessagesResponse.parse(accumulate(anthropic_events(path))),
            requested_model="gpt-4o",
            created=CREATED,
        )
        assert _comparable(sdk_final(chunks)) == _comparable(expected.body)


@pytest.mark.parametrize("path", STREAMS, ids=lambda p: p.stem)
def test_without_include_usage_only_the_usage_chunk_goes(path: Path) -> None:
    with_usage = decode(pump([path.read_bytes()], include_usage=True)[0])
    without = decode(pump([path.read_bytes()], include_usage=False)[0])
    assert without == [c for c in with_usage if c is None or c.get("choices") != []]
    assert all(c is None or "usage" not in c for c in without)


def test_a_stream_ends_in_done_unless_it_failed() -> None:
    for path in STREAMS:
        chunks = decode(pump([path.read_bytes()])[0])
        if path.stem == "mid_stream_error":
            assert chunks[-1] == {
                "error": {
                    "message": "Overloaded",
                    "type": "server_error",
                    "param": None,
                    "code": "overloaded",
                }
            }
            assert None not in chunks
        else:
            assert chunks[-1] is None
            assert chunks.count(None) == 1


# -- the state machine directly ----------------------------------------------------------------------


def test_fail_after_start_gives_one_error_chunk_and_nothing_more() -> None:
    stream = _translator()
    assert stream.feed({"type": "message_start", "message": {"id": "msg_1", "usage": {}}})
    assert stream.started
    assert stream.fail(ErrorKind.TIMEOUT, "upstream went quiet") == [
        {
            "error": {
                "message": "upstream went quiet",
                "type": "timeout_error",
                "param": None,
                "code": None,
            }
        }
    ]
    assert stream.fail(ErrorKind.TIMEOUT, "again") == []
    assert stream.finish() == []
    assert stream.feed({"type": "message_stop"}) == []


def test_finish_is_idempotent_and_closes_an_empty_stream() -> None:
    stream = ChatViaMessagesStream(requested_model="m", completion_id="chatcmpl-given")
    first = stream.finish()
    assert [c and c["choices"][0] for c in first] == [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None},
        {"index": 0, "delta": {}, "finish_reason": "stop"},
        None,
    ]
    assert first[0] is not None and first[0]["id"] == "chatcmpl-given"
    assert [d.code for d in stream.degradations] == ["stream_truncated"]
    assert stream.finish() == []


def test_completion_id_wins_over_the_message_id() -> None:
    stream = ChatViaMessagesStream(requested_model="m", completion_id="chatcmpl-x", created=5)
    (chunk,) = stream.feed({"type": "message_start", "message": {"id": "msg_1"}})
    assert chunk is not None
    assert (chunk["id"], chunk["created"], chunk["model"]) == ("chatcmpl-x", 5, "m")


def test_tool_call_index_counts_tool_blocks_only() -> None:
    stream = _translator()
    events = [
        {"type": "message_start", "message": {"id": "msg_1"}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
        },
        {"type": "content_block_stop", "index": 1},
    ]
    chunks = [c for e in events for c in stream.feed(e)]
    deltas = [c["choices"][0]["delta"] for c in chunks if c is not None]
    calls = [d["tool_calls"] for d in deltas if "tool_calls" in d]
    assert calls == [
        [
            {
                "index": 0,
                "id": "t1",
                "type": "function",
                "function": {"name": "f", "arguments": '{"a":1}'},
            }
        ]
    ]


# -- properties --------------------------------------------------------------------------------------

SAMPLE = b"".join(
    (FIXTURES / f"{name}.sse").read_bytes() for name in ("thinking_then_text", "parallel_tool_use")
)
EXPECTED = pump([SAMPLE])[0]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(SAMPLE)), max_size=30))
def test_rechunking_never_changes_the_output(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [SAMPLE[a:b] for a, b in zip([0, *points], [*points, len(SAMPLE)], strict=True)]
    assert pump(chunks)[0] == EXPECTED


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 3) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=4,
)
_KEYS = st.sampled_from(
    [
        "type",
        "index",
        "delta",
        "content_block",
        "message",
        "usage",
        "error",
        "text",
        "id",
        "name",
        "input",
        "stop_reason",
        "partial_json",
        "thinking",
        "signature",
        "citation",
    ]
)
_TYPES = st.sampled_from(
    [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
        "text",
        "tool_use",
        "thinking",
        "text_delta",
        "input_json_delta",
        "thinking_delta",
        "signature_delta",
        "redacted_thinking",
    ]
)
_LEAF = st.one_of(_TYPES, st.integers(-1, 3), _JSON)
_NODE = st.recursive(_LEAF, lambda inner: st.dictionaries(_KEYS, inner, max_size=5), max_leaves=6)
_EVENT = st.dictionaries(_KEYS, _NODE, max_size=5)


@settings(max_examples=100, deadline=None)
@given(st.lists(_EVENT, max_size=12), st.booleans())
def test_arbitrary_events_raise_only_invalid_input(
    events: list[dict[str, Any]], usage: bool
) -> None:
    stream = _translator(usage)
    out: list[dict[str, Any] | None] = []
    for event in events:
        with contextlib.suppress(InvalidInput):
            out += stream.feed(event)
    out += stream.finish()
    for chunk in out:
        json.dumps(chunk)
        if chunk is not None and "error" not in chunk:
            ChatCompletionChunk.model_validate(chunk)


REAL_EVENTS = [e for p in STREAMS for e in anthropic_events(p)]
_MUTATION = st.none() | st.tuples(_KEYS, _LEAF, st.booleans())


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(REAL_EVENTS), _MUTATION), max_size=15), st.booleans())
def test_damaged_real_events_raise_only_invalid_input(
    items: list[tuple[dict[str, Any], tuple[str, Any, bool] | None]], usage: bool
) -> None:
    stream = _translator(usage)
    out: list[dict[str, Any] | None] = []
    for original, mutation in items:
        event = copy.deepcopy(original)
        if mutation is not None:
            key, value, nested = mutation
            inner = [v for v in event.values() if isinstance(v, dict)]
            (inner[0] if nested and inner else event)[key] = value
        with contextlib.suppress(InvalidInput):
            out += stream.feed(event)
    out += stream.finish()
    assert out.count(None) <= 1
    for chunk in out:
        json.dumps(chunk)
        if chunk is not None and "error" not in chunk:
            ChatCompletionChunk.model_validate(chunk)


def test_a_gemini_signature_goes_on_the_next_tool_call_chunk() -> None:
    start = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": []}
    start |= {"stop_reason": None, "usage": {"input_tokens": 1, "output_tokens": 0}}
    thinking = {"type": "thinking", "thinking": "", "signature": ""}
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": thinking},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "gemini:c2ln"},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "c1", "name": "f", "input": {}},
        },
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "c2__gsig_dHdv", "name": "g", "input": {}},
        },
        {"type": "content_block_stop", "index": 2},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 3},
        },
        {"type": "message_stop"},
    ]
    translator = _translator()
    chunks = [c for e in events for c in translator.feed(e)]
    calls = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in chunks
        if c and c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    starts = [c for c in calls if "id" in c]
    assert [(c["id"], c.get("extra_content")) for c in starts] == [
        ("c1", {"google": {"thought_signature": "c2ln"}}),
        ("c2", {"google": {"thought_signature": "two"}}),
    ]
    for chunk in chunks:
        if chunk is not None:
            ChatCompletionChunk.model_validate(chunk)
    assert "thinking_signature_dropped" not in [d.code for d in translator.degradations]
