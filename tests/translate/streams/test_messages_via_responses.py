from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from anthropic.types import RawMessageStreamEvent
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter
from syrupy.extensions.json import JSONSnapshotExtension

from anyllm_cli.errors import ANTHROPIC_ERRORS, ErrorKind, InvalidInput, UpstreamError
from anyllm_cli.models.openai_responses import ResponsesResponse
from anyllm_cli.translate.messages_via_responses import response
from anyllm_cli.translate.streams.accumulate import accumulate
from anyllm_cli.translate.streams.messages_via_responses import MessagesViaResponsesStream
from anyllm_cli.translate.streams.pump import SSEPump
from anyllm_cli.translate.streams.sse import SSEDecoder, encode_anthropic
from tests.translate.streams.anthropic_checks import (
    check_grammar,
    events_of,
    normal,
    sdk_accumulate,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "messages_via_responses"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.sse"))
ERRORED = {
    "failed_midway": ErrorKind.API_ERROR,
    "error_first": ErrorKind.RATE_LIMIT,
    "ends_without_completion": ErrorKind.API_ERROR,
}
EVENT = TypeAdapter(RawMessageStreamEvent)
UPSTREAM_EVENT = TypeAdapter(ResponseStreamEvent)
MODEL = "claude-sonnet-4-5"
ENC = "gAAAAABoq9Xk1f2Zr0cW8mV3eYtQm9PpS7bN2xLh4uJkR6aT1sD5fG8hK0lZ3xC7vB9nM2qW4eR6tY8uI1oP3aS5dF7gH9jK=="


def load(name: str) -> bytes:
    return (FIXTURES / f"{name}.sse").read_bytes()


def pump(chunks: list[bytes]) -> tuple[bytes, MessagesViaResponsesStream]:
    translator = MessagesViaResponsesStream(requested_model=MODEL, input_tokens=42)
    p = SSEPump(translator, encode_anthropic)
    out = b"".join(p.feed(chunk) for chunk in chunks) + p.finish()
    return out, translator


def feed_all(events: list[dict[str, Any]], **kwargs: Any) -> tuple[list[dict[str, Any]], Any]:
    translator = MessagesViaResponsesStream(requested_model=MODEL, **kwargs)
    out: list[dict[str, Any]] = []
    for event in events:
        out += translator.feed(event)
    return out + translator.finish(), translator


# -- the transcripts -------------------------------------------------------------------------------


def test_there_are_enough_transcripts() -> None:
    assert len(NAMES) >= 12


@pytest.mark.parametrize("name", NAMES)
def test_transcripts_are_what_the_sdk_expects_from_the_real_api(name: str) -> None:
    decoder = SSEDecoder()
    for frame in decoder.decode(load(name)) + decoder.flush():
        event = json.loads(frame.data)
        assert frame.event == event["type"]
        UPSTREAM_EVENT.validate_python(event)


@pytest.mark.parametrize("name", NAMES)
def test_transcript_snapshot(name: str, snapshot: Any) -> None:
    out, translator = pump([load(name)])
    record = {
        "degradations": [str(d) for d in translator.degradations],
        "sse": out.decode().split("\n"),
    }
    assert record == snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("name", NAMES)
def test_every_event_is_valid_and_the_grammar_holds(name: str) -> None:
    events = events_of(pump([load(name)])[0])
    check_grammar(events)
    for event in events:
        if event["type"] == "error":
            etype = event["error"]["type"]
            assert set(event) == {"type", "error"} and set(event["error"]) == {"type", "message"}
            assert etype in {t for _, t in ANTHROPIC_ERRORS.values()}
            assert isinstance(event["error"]["message"], str) and event["error"]["message"]
        else:
            EVENT.validate_python(event)


SIGNED = "resp:rs_s3:" + ENC  # the reasoning item id rides with its encrypted content
# What each transcript folds into: (block type, text / thinking / name + input) and the stop reason.
EXPECTED: dict[str, tuple[list[tuple[str, Any]], str]] = {
    "text_only": ([("text", "Hello! How can I help you today?")], "end_turn"),
    "reasoning_then_text": (
        [
            (
                "thinking",
                "**Comparing numbers**\n\n9.9 = 9.90, and 9.90 > 9.11.\n\n"
                "**Answer**\n\nSo 9.9 is larger.",
            ),
            ("text", "9.9 is larger than 9.11."),
        ],
        "end_turn",
    ),
    "reasoning_text_tool_call": (
        [
            ("thinking", "The user wants Paris weather; call the tool."),
            ("text", "Let me check."),
            ("tool_use", ("get_weather", {"city": "Paris", "unit": "c"})),
        ],
        "tool_use",
    ),
    "parallel_function_calls": (
        [
            ("thinking", ""),
            ("tool_use", ("get_weather", {"city": "Paris"})),
            ("tool_use", ("get_time", {"tz": "Asia/Tokyo"})),
        ],
        "tool_use",
    ),
    "incomplete_max_output_tokens": (
        [("thinking", "Writing a story."), ("text", "Once upon a time")],
        "max_tokens",
    ),
    "refusal": ([("text", "I'm sorry, but I can't help with that.")], "refusal"),
    "content_filter": ([("text", "Here is how")], "refusal"),
    "encrypted_reasoning_only": ([("thinking", ""), ("text", "Done thinking: 42.")], "end_turn"),
    "web_search_and_unknown_events": ([("text", "anyllm is an LLM gateway [1].")], "end_turn"),
    "whole_items_only": (
        [
            ("thinking", "Short think."),
            ("text", "Calling the tool."),
            ("tool_use", ("get_weather", {"city": "Oslo"})),
        ],
        "tool_use",
    ),
}


def summary(message: dict[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for block in message["content"]:
        if block["type"] == "tool_use":
            out.append(("tool_use", (block["name"], block["input"])))
        else:
            out.append((block["type"], block[block["type"]]))
    return out


def test_every_transcript_is_covered() -> None:
    assert set(EXPECTED) | set(ERRORED) == set(NAMES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_sdk_accumulator_and_ours_agree_on_the_final_message(name: str) -> None:
    events = events_of(pump([load(name)])[0])
    ours = accumulate(events)
    content, stop = EXPECTED[name]
    assert summary(ours) == content
    assert ours["stop_reason"] == stop
    assert ours["model"] == MODEL
    assert normal(ours) == sdk_accumulate(events)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_stream_folds_into_what_the_reply_translator_gives(name: str) -> None:
    """The final `response.*` event holds the whole response: both routes must agree on it."""
    decoder = SSEDecoder()
    frames = decoder.decode(load(name)) + decoder.flush()
    final = json.loads(frames[-1].data)["response"]
    whole = response(ResponsesResponse.parse(final), requested_model=MODEL).body
    streamed = accumulate(events_of(pump([load(name)])[0]))
    assert streamed == whole


def test_reasoning_state_rides_in_the_signature() -> None:
    message = accumulate(events_of(pump([load("reasoning_text_tool_call")])[0]))
    assert message["content"][0]["signature"] == SIGNED
    whole = accumulate(events_of(pump([load("whole_items_only")])[0]))
    assert whole["content"][0]["signature"] == ""  # no encrypted_content: never fabricated


def test_usage_comes_from_the_final_response_with_cache_reads() -> None:
    message = accumulate(events_of(pump([load("reasoning_text_tool_call")])[0]))
    assert message["usage"] == {
        "input_tokens": 144,
        "output_tokens": 80,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 256,
    }


@pytest.mark.parametrize("name", sorted(ERRORED))
def test_failures_end_the_stream_with_an_error_event(name: str) -> None:
    events = events_of(pump([load(name)])[0])
    assert events[-1]["type"] == "error"
    assert "message_stop" not in [e["type"] for e in events]
    with pytest.raises(UpstreamError) as caught:
        accumulate(events)
    assert caught.value.kind is ERRORED[name]


def test_an_error_first_emits_only_the_error_and_never_starts() -> None:
    out, translator = pump([load("error_first")])
    assert translator.started is False
    assert [e["type"] for e in events_of(out)] == ["error"]


def test_a_stream_cut_short_is_an_error_and_says_so() -> None:
    out, translator = pump([load("ends_without_completion")])
    events = events_of(out)
    assert events[-1]["error"]["message"] == "the upstream stream ended before it completed"
    assert [d.code for d in translator.degradations] == ["stream_ended_without_completion"]


# -- re-chunking and robustness ----------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(NAMES), st.lists(st.integers(min_value=0, max_value=1 << 16), max_size=12))
def test_rechunking_never_changes_the_output(name: str, cuts: list[int]) -> None:
    data = load(name)
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert pump(chunks)[0] == pump([data])[0]


TYPES = st.sampled_from(
    [
        "response.created",
        "response.output_item.added",
        "response.output_item.done",
        "response.output_text.delta",
        "response.refusal.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_text.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.completed",
        "response.incomplete",
        "response.failed",
        "error",
        "response.zap",
    ]
)
KEYS = st.sampled_from(
    [
        "type",
        "response",
        "item",
        "output_index",
        "item_id",
        "content_index",
        "summary_index",
        "delta",
        "arguments",
        "name",
        "call_id",
        "id",
        "summary",
        "content",
        "text",
        "refusal",
        "encrypted_content",
        "status",
        "usage",
        "input_tokens",
        "incomplete_details",
        "reason",
        "error",
        "code",
        "message",
    ]
)
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-1, 3)
    | st.text(max_size=4)
    | st.sampled_from(["reasoning", "message", "function_call", "output_text", "}"])
)


def _nest(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4)


JSONISH = st.recursive(LEAVES, _nest, max_leaves=10)
EVENT_DICT = st.builds(
    lambda t, rest: {**rest, "type": t}, TYPES, st.dictionaries(KEYS, JSONISH, max_size=5)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(EVENT_DICT | st.dictionaries(KEYS, JSONISH, max_size=4), max_size=6))
def test_arbitrary_json_raises_nothing_but_invalid_input(events: list[dict[str, Any]]) -> None:
    translator = MessagesViaResponsesStream(requested_model=MODEL)
    out: list[dict[str, Any]] = []
    try:
        for event in events:
            out += translator.feed(event)
    except InvalidInput:
        return
    out += translator.finish()
    check_grammar(out)
    for event in out:
        if event["type"] != "error":
            EVENT.validate_python(event)


# A generated upstream: each step is one Responses event about one of three output items.
TEXT = st.text(alphabet="ab {}\"':,", min_size=1, max_size=6)
STEP = st.one_of(
    st.tuples(
        st.just("added"),
        st.integers(0, 2),
        st.sampled_from(["reasoning", "message", "function_call"]),
    ),
    st.tuples(st.just("text"), st.integers(0, 2), st.integers(0, 1), TEXT),
    st.tuples(st.just("refusal"), st.integers(0, 2), TEXT),
    st.tuples(st.just("summary"), st.integers(0, 2), st.integers(0, 1), TEXT),
    st.tuples(st.just("args"), st.integers(0, 2), TEXT),
    st.tuples(st.just("args_done"), st.integers(0, 2), st.sampled_from(["", "{}", '{"x": 1}'])),
    st.tuples(
        st.just("done"),
        st.integers(0, 2),
        st.sampled_from(["reasoning", "message", "function_call"]),
        st.booleans(),
    ),
    st.tuples(st.just("end"), st.sampled_from(["completed", "incomplete"])),
)


def build(step: tuple[Any, ...]) -> dict[str, Any]:
    kind, n = step[0], (step[1] if len(step) > 1 else 0)
    base: dict[str, Any] = {"output_index": n, "item_id": f"it_{n}"}
    if kind == "added":
        item: dict[str, Any] = {"type": step[2], "id": f"it_{n}"}
        if step[2] == "function_call":
            item.update(call_id=f"call_{n}", name="f", arguments="")
        return {"type": "response.output_item.added", **base, "item": item}
    if kind == "text":
        return {
            "type": "response.output_text.delta",
            **base,
            "content_index": step[2],
            "delta": step[3],
        }
    if kind == "refusal":
        return {"type": "response.refusal.delta", **base, "content_index": 0, "delta": step[2]}
    if kind == "summary":
        return {
            "type": "response.reasoning_summary_text.delta",
            **base,
            "summary_index": step[2],
            "delta": step[3],
        }
    if kind == "args":
        return {"type": "response.function_call_arguments.delta", **base, "delta": step[2]}
    if kind == "args_done":
        return {
            "type": "response.function_call_arguments.done",
            **base,
            "name": "f",
            "arguments": step[2],
        }
    if kind == "done":
        item = {"type": step[2], "id": f"it_{n}"}
        if step[2] == "reasoning":
            item.update(summary=[{"type": "summary_text", "text": "s"}])
            if step[3]:
                item["encrypted_content"] = "enc"
        elif step[2] == "message":
            item.update(content=[{"type": "output_text", "text": "t"}])
        else:
            item.update(call_id=f"call_{n}", name="f", arguments="{}")
        return {"type": "response.output_item.done", **base, "item": item}
    details = {"reason": "max_output_tokens"} if step[1] == "incomplete" else None
    reply = {
        "id": "resp_gen",
        "status": step[1],
        "incomplete_details": details,
        "usage": {"input_tokens": 5, "output_tokens": 2},
    }
    return {"type": f"response.{step[1]}", "response": reply}


@settings(max_examples=300, deadline=None)
@given(st.lists(STEP, max_size=14), st.booleans())
def test_grammar_holds_for_any_upstream(steps: list[tuple[Any, ...]], fails: bool) -> None:
    translator = MessagesViaResponsesStream(requested_model=MODEL)
    out = translator.feed({"type": "response.created", "response": {"id": "resp_gen"}})
    for step in steps:
        out += translator.feed(build(step))
    ended = any(e["type"] == "message_stop" for e in out)
    out += translator.fail(ErrorKind.TIMEOUT, "cut") if fails else translator.finish()
    check_grammar(out)
    for event in out:
        if event["type"] != "error":
            EVENT.validate_python(event)
    if ended:
        message = accumulate(out)
        has_calls = any(b["type"] == "tool_use" for b in message["content"])
        assert (message["stop_reason"] == "tool_use") == has_calls
    else:
        assert out[-1]["type"] == "error"


# -- the state machine, case by case -----------------------------------------------------------------


def created(rid: str = "resp_1") -> dict[str, Any]:
    return {"type": "response.created", "response": {"id": rid, "status": "in_progress"}}


def completed(**fields: Any) -> dict[str, Any]:
    reply = {
        "id": "resp_1",
        "status": "completed",
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }
    return {"type": "response.completed", "response": {**reply, **fields}}


def text(delta: str, n: int = 0, part: int = 0) -> dict[str, Any]:
    return {
        "type": "response.output_text.delta",
        "output_index": n,
        "content_index": part,
        "delta": delta,
    }


def test_message_start_comes_with_response_created_and_uses_the_given_id() -> None:
    translator = MessagesViaResponsesStream(
        requested_model=MODEL, message_id="msg_given", input_tokens=7
    )
    first = translator.feed(created())
    assert translator.started
    assert [e["type"] for e in first] == ["message_start"]
    assert first[0]["message"]["id"] == "msg_given"
    assert first[0]["message"]["usage"]["input_tokens"] == 7
    other = MessagesViaResponsesStream(requested_model=MODEL).feed(created("resp_abc"))
    assert other[0]["message"]["id"] == "msg_resp_abc"


def test_completion_ends_and_later_events_are_dropped() -> None:
    translator = MessagesViaResponsesStream(requested_model=MODEL)
    translator.feed(created())
    translator.feed(text("hi"))
    final = translator.feed(completed())
    assert [e["type"] for e in final] == ["content_block_stop", "message_delta", "message_stop"]
    assert final[1]["usage"]["input_tokens"] == 3
    assert translator.finish() == []
    assert translator.feed(text("late")) == []
    assert translator.fail(ErrorKind.API_ERROR, "late") == []
    assert [d.code for d in translator.degradations] == ["event_after_completion"]


def test_fail_after_start_emits_one_error_and_then_nothing() -> None:
    translator = MessagesViaResponsesStream(requested_model=MODEL)
    translator.feed(created())
    translator.feed(text("par"))
    assert translator.fail(ErrorKind.OVERLOADED, "upstream went away") == [
        {"type": "error", "error": {"type": "overloaded_error", "message": "upstream went away"}}
    ]
    assert translator.feed(text("tial")) == []
    assert translator.finish() == []


def test_a_new_content_part_opens_a_new_text_block() -> None:
    events, _ = feed_all([created(), text("a"), text("b", part=1), text("c", n=1), completed()])
    assert summary(accumulate(events)) == [("text", "a"), ("text", "b"), ("text", "c")]


def test_function_call_without_deltas_or_name_on_added() -> None:
    added = {
        "type": "response.output_item.added",
        "output_index": 0,
        "item": {"type": "function_call", "call_id": "call_1", "arguments": ""},
    }
    done = {
        "type": "response.function_call_arguments.done",
        "output_index": 0,
        "name": "f",
        "arguments": '{"a": 1}',
    }
    events, translator = feed_all([created(), added, done, completed()])
    message = accumulate(events)
    assert message["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}}
    ]
    assert message["stop_reason"] == "tool_use"
    assert translator.degradations == []


def test_reused_or_missing_call_ids_are_derived() -> None:
    def call(n: int, call_id: str) -> dict[str, Any]:
        item = {"type": "function_call", "call_id": call_id, "name": "f", "arguments": "{}"}
        return {"type": "response.output_item.added", "output_index": n, "item": item}

    events, translator = feed_all([created(), call(0, "c"), call(1, "c"), call(2, ""), completed()])
    ids = [b["id"] for b in accumulate(events)["content"]]
    assert ids == ["c", "toolu_resp_1_1", "toolu_resp_1_2"]
    assert [d.code for d in translator.degradations] == ["tool_call_id_derived"] * 2


def test_arguments_after_their_block_closed_are_recorded() -> None:
    added = {
        "type": "response.output_item.added",
        "output_index": 0,
        "item": {"type": "function_call", "call_id": "c", "name": "f", "arguments": ""},
    }
    late = {"type": "response.function_call_arguments.delta", "output_index": 0, "delta": "{}"}
    events, translator = feed_all([created(), added, text("x", n=1), late, completed()])
    check_grammar(events)
    assert [d.code for d in translator.degradations] == ["tool_arguments_after_close"]


def test_failed_response_and_error_events_map_their_codes() -> None:
    failed = {
        "type": "response.failed",
        "response": {"error": {"code": "invalid_prompt", "message": "no"}},
    }
    events, _ = feed_all([created(), failed])
    assert events[-1] == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "no"},
    }
    nested = {"type": "error", "error": {"type": "server_error", "message": "boom"}}
    assert feed_all([nested])[0] == [
        {"type": "error", "error": {"type": "api_error", "message": "boom"}}
    ]
    bare = {"type": "response.failed", "response": {"status": "failed"}}
    assert feed_all([bare])[0][0]["error"]["message"] == "the upstream response failed"


def test_missing_usage_is_estimated_and_flagged() -> None:
    events, translator = feed_all(
        [
            created(),
            text("No usage here."),
            {"type": "response.completed", "response": {"status": "completed"}},
        ],
        input_tokens=9,
    )
    assert accumulate(events)["usage"]["input_tokens"] == 9
    assert accumulate(events)["usage"]["output_tokens"] == 4
    assert [d.code for d in translator.degradations] == ["usage_missing"]


def test_an_empty_stream_is_an_error() -> None:
    translator = MessagesViaResponsesStream(requested_model=MODEL)
    assert [e["type"] for e in translator.finish()] == ["error"]
    assert translator.started is False


@pytest.mark.parametrize(
    "event",
    [
        {"type": 3},
        {"type": "response.output_text.delta", "output_index": 0, "delta": 5},
        {"type": "response.output_item.added", "output_index": 0, "item": []},
        {"type": "response.output_text.delta", "delta": "x"},
        {"type": "response.completed", "response": "done"},
    ],
)
def test_malformed_events_are_invalid_input(event: dict[str, Any]) -> None:
    translator = MessagesViaResponsesStream(requested_model=MODEL)
    translator.feed(created())
    with pytest.raises(InvalidInput):
        translator.feed(event)
