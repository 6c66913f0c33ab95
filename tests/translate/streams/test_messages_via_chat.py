from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from anthropic.types import RawMessageStreamEvent
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from syrupy.extensions.json import JSONSnapshotExtension

from anyllm_cli.errors import ANTHROPIC_ERRORS, ErrorKind, InvalidInput, UpstreamError
from anyllm_cli.translate.streams.accumulate import accumulate
from anyllm_cli.translate.streams.messages_via_chat import MessagesViaChatStream
from anyllm_cli.translate.streams.pump import SSEPump
from anyllm_cli.translate.streams.sse import encode_anthropic
from tests.translate.streams.anthropic_checks import (
    check_grammar,
    events_of,
    normal,
    sdk_accumulate,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "streams" / "messages_via_chat"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.sse"))
ERRORED = {"midstream_error": ErrorKind.API_ERROR, "error_first": ErrorKind.BILLING}
EVENT = TypeAdapter(RawMessageStreamEvent)
MODEL = "claude-sonnet-4-5"


def load(name: str) -> bytes:
    return (FIXTURES / f"{name}.sse").read_bytes()


def pump(chunks: list[bytes]) -> tuple[bytes, MessagesViaChatStream]:
    translator = MessagesViaChatStream(requested_model=MODEL, input_tokens=42)
    p = SSEPump(translator, encode_anthropic)
    out = b"".join(p.feed(chunk) for chunk in chunks) + p.finish()
    return out, translator


def feed_all(chunks: list[dict[str, Any]], **kwargs: Any) -> tuple[list[dict[str, Any]], Any]:
    translator = MessagesViaChatStream(requested_model=MODEL, **kwargs)
    out: list[dict[str, Any]] = []
    for chunk in chunks:
        out += translator.feed(chunk)
    return out + translator.finish(), translator


# -- the transcripts -------------------------------------------------------------------------------


def test_there_are_enough_transcripts() -> None:
    assert len(NAMES) >= 14


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


# What each transcript folds into: (block type, text / thinking / name + input) and the stop reason.
EXPECTED: dict[str, tuple[list[tuple[str, Any]], str]] = {
    "plain_text": ([("text", "Hello! How can I help you today?")], "end_turn"),
    "deepseek_reasoning_content": (
        [("thinking", "The user asks 9.11 vs 9.9. 9.9 = 9.90 > 9.11."), ("text", "9.9 is larger.")],
        "end_turn",
    ),
    "openrouter_reasoning": (
        [
            ("thinking", "Counting letters in strawberry: three r's."),
            ("text", "There are **3** r's."),
        ],
        "end_turn",
    ),
    "tool_call_single": (
        [("tool_use", ("get_weather", {"city": "Paris", "unit": "c"}))],
        "tool_use",
    ),
    "tool_calls_parallel_interleaved": (
        [
            ("text", "Checking both cities."),
            ("tool_use", ("get_weather", {"city": "Paris"})),
            ("tool_use", ("get_time", {"tz": "Asia/Tokyo"})),
        ],
        "tool_use",
    ),
    "tool_calls_missing_ids": (
        [
            ("tool_use", ("get_weather", {"city": "Oslo"})),
            ("tool_use", ("get_weather", {"city": "Bergen"})),
        ],
        "tool_use",
    ),
    "tool_call_whole_arguments": (
        [
            ("text", "Let me look that up."),
            ("tool_use", ("search", {"query": "äpfel ümlaut", "limit": 3})),
        ],
        "tool_use",
    ),
    "tool_call_name_after_id": (
        [("tool_use", ("read_file", {"path": "/etc/hosts"}))],
        "tool_use",
    ),
    "finish_stop_with_tool_calls": (
        [("tool_use", ("extract", {"name": "Ada Lovelace", "born": 1815}))],
        "tool_use",
    ),
    "usage_after_finish_cached": ([("text", "Cached answer.")], "end_turn"),
    "no_usage": ([("text", "No usage here.")], "end_turn"),
    "data_without_space": ([("text", "Bonjour !")], "end_turn"),
    "crlf_framing": ([("text", "Line one\nline two \u2028 end")], "end_turn"),
    "refusal": ([("text", "I'm sorry, I can't help with that.")], "refusal"),
    "length": ([("text", "Once upon a time")], "max_tokens"),
    "content_filter": ([("text", "Here is")], "refusal"),
    "vllm_continuous_usage": (
        [("thinking", "Short think."), ("text", "\n\nHi there.")],
        "end_turn",
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


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_sdk_accumulator_and_ours_agree_on_the_final_message(name: str) -> None:
    events = events_of(pump([load(name)])[0])
    ours = accumulate(events)
    content, stop = EXPECTED[name]
    assert summary(ours) == content
    assert ours["stop_reason"] == stop
    assert ours["model"] == MODEL
    assert normal(ours) == sdk_accumulate(events)
    for block in ours["content"]:
        if block["type"] == "thinking":
            assert block["signature"] == ""  # never fabricated


def test_every_transcript_is_covered() -> None:
    assert set(EXPECTED) | set(ERRORED) | {"ends_without_finish_reason"} == set(NAMES)


def test_usage_comes_from_the_chunk_after_finish_reason_with_cache_reads() -> None:
    message = accumulate(events_of(pump([load("usage_after_finish_cached")])[0]))
    assert message["usage"] == {
        "input_tokens": 180,
        "output_tokens": 3,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 1920,
    }
    deepseek = accumulate(events_of(pump([load("deepseek_reasoning_content")])[0]))
    assert deepseek["usage"]["output_tokens"] == 41


def test_without_usage_the_estimate_stays_and_is_flagged() -> None:
    out, translator = pump([load("no_usage")])
    message = accumulate(events_of(out))
    assert message["usage"]["input_tokens"] == 42
    assert message["usage"]["output_tokens"] == 4  # "No usage here." is 14 characters
    assert [d.code for d in translator.degradations] == ["usage_missing"]


def test_a_stream_cut_short_still_ends_properly_and_says_so() -> None:
    out, translator = pump([load("ends_without_finish_reason")])
    events = events_of(out)
    message = accumulate(events)
    assert message["stop_reason"] == "tool_use"
    assert summary(message)[0] == ("text", "Writing the file now.")
    assert message["content"][1]["input"] == {"_raw": '{"path":"a.txt"'}
    codes = [d.code for d in translator.degradations]
    assert "stream_ended_without_finish_reason" in codes


@pytest.mark.parametrize("name", sorted(ERRORED))
def test_error_chunks_end_the_stream_with_an_error_event(name: str) -> None:
    events = events_of(pump([load(name)])[0])
    assert events[-1]["type"] == "error"
    assert "message_stop" not in [e["type"] for e in events]
    with pytest.raises(UpstreamError) as caught:
        accumulate(events)
    assert caught.value.kind is ERRORED[name]


def test_an_error_first_emits_only_the_error_and_never_starts() -> None:
    _, translator = pump([load("error_first")])
    assert translator.started is False


# -- re-chunking and robustness ----------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(NAMES), st.lists(st.integers(min_value=0, max_value=1 << 16), max_size=12))
def test_rechunking_never_changes_the_output(name: str, cuts: list[int]) -> None:
    data = load(name)
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert pump(chunks)[0] == pump([data])[0]


KEYS = st.sampled_from(
    [
        "choices", "delta", "content", "reasoning", "reasoning_content", "reasoning_details",
        "refusal", "tool_calls", "function_call", "index", "id", "function", "name", "arguments",
        "finish_reason", "usage", "prompt_tokens", "completion_tokens", "prompt_tokens_details",
        "cached_tokens", "error", "message", "type", "text", "signature",
    ]
)  # fmt: skip
LEAVES = st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=4) | st.just("}")


def _nest(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4)


JSONISH = st.recursive(LEAVES, _nest, max_leaves=10)
CHOICE = st.fixed_dictionaries(
    {},
    optional={
        "index": st.sampled_from([0, 0, 0, 1, None, "0"]),
        "delta": st.dictionaries(KEYS, JSONISH, max_size=5) | JSONISH,
        "finish_reason": st.sampled_from(["stop", "tool_calls", "length", "eos", None]) | JSONISH,
    },
)
CHUNK = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(["chatcmpl-1", "", "a:b.c"]) | JSONISH,
        "choices": st.lists(CHOICE, max_size=2) | JSONISH,
        "usage": st.dictionaries(KEYS, JSONISH, max_size=3) | JSONISH,
        "error": JSONISH,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(CHUNK | st.dictionaries(KEYS, JSONISH, max_size=4), max_size=6))
def test_arbitrary_json_raises_nothing_but_invalid_input(chunks: list[dict[str, Any]]) -> None:
    translator = MessagesViaChatStream(requested_model=MODEL)
    out: list[dict[str, Any]] = []
    try:
        for chunk in chunks:
            out += translator.feed(chunk)
    except InvalidInput:
        return
    out += translator.finish()
    check_grammar(out)
    for event in out:
        if event["type"] != "error":
            EVENT.validate_python(event)


# A generated upstream: what each step puts in choice 0's delta, or a special chunk.
TEXT = st.text(alphabet="ab {}\"':,", min_size=1, max_size=6)
STEP = st.one_of(
    st.tuples(st.sampled_from(["content", "reasoning_content", "reasoning", "refusal"]), TEXT),
    st.tuples(
        st.just("tool"),
        st.sampled_from([0, 1, 2, None]),
        st.sampled_from([None, "", "call_a", "call_b"]),
        st.sampled_from([None, "", "f", "g"]),
        st.sampled_from([None, "", "{", '"x": 1', "}", '{"y": 2}']),
    ),
    st.tuples(st.just("finish"), st.sampled_from(["stop", "tool_calls", "length", "eos"])),
    st.tuples(st.just("usage")),
    st.tuples(st.just("empty")),
)


def build(step: tuple[Any, ...]) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "chatcmpl-gen", "object": "chat.completion.chunk"}
    kind = step[0]
    if kind == "usage":
        return {**base, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}
    if kind == "empty":
        return {**base, "choices": [{"index": 0}]}
    if kind == "finish":
        return {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": step[1]}]}
    if kind == "tool":
        _, index, call_id, name, args = step
        call: dict[str, Any] = (
            {"function": {}} if index is None else {"index": index, "function": {}}
        )
        if call_id is not None:
            call["id"] = call_id
        if name is not None:
            call["function"]["name"] = name
        if args is not None:
            call["function"]["arguments"] = args
        return {**base, "choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}
    return {**base, "choices": [{"index": 0, "delta": {kind: step[1]}}]}


@settings(max_examples=300, deadline=None)
@given(st.lists(STEP, max_size=14), st.booleans())
def test_grammar_holds_for_any_upstream(steps: list[tuple[Any, ...]], fails: bool) -> None:
    translator = MessagesViaChatStream(requested_model=MODEL)
    out: list[dict[str, Any]] = []
    sent = ""  # text the client must see: what came before the end
    for step in steps:
        if step[0] in ("content", "refusal") and not any(e["type"] == "message_stop" for e in out):
            sent += step[1]
        out += translator.feed(build(step))
    out += translator.fail(ErrorKind.TIMEOUT, "cut") if fails else translator.finish()
    check_grammar(out)
    for event in out:
        if event["type"] != "error":
            EVENT.validate_python(event)
    if not fails:
        message = accumulate(out)
        assert message["stop_reason"] is not None
        texts = "".join(b.get("text", "") for b in message["content"])
        assert texts == sent  # nothing dropped, nothing reordered


# -- the state machine, case by case -----------------------------------------------------------------


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> Any:
    choice: dict[str, Any] = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    return {"id": "chatcmpl-x", "choices": [choice], **extra}


def test_message_start_comes_with_the_first_chunk_and_uses_the_given_id() -> None:
    translator = MessagesViaChatStream(
        requested_model=MODEL, message_id="msg_given", input_tokens=7
    )
    first = translator.feed(chunk({"role": "assistant"}))
    assert translator.started
    assert [e["type"] for e in first] == ["message_start"]
    assert first[0]["message"]["id"] == "msg_given"
    assert first[0]["message"]["usage"]["input_tokens"] == 7


def test_message_delta_waits_for_the_usage_chunk() -> None:
    translator = MessagesViaChatStream(requested_model=MODEL)
    translator.feed(chunk({"content": "hi"}))
    held = translator.feed(chunk(finish="stop"))
    assert [e["type"] for e in held] == ["content_block_stop"]
    usage = {"prompt_tokens": 3, "completion_tokens": 1}
    final = translator.feed({"id": "chatcmpl-x", "choices": [], "usage": usage})
    assert [e["type"] for e in final] == ["message_delta", "message_stop"]
    assert final[0]["usage"]["input_tokens"] == 3
    assert translator.finish() == []
    assert translator.feed(chunk({"content": "late"})) == []
    assert [d.code for d in translator.degradations] == ["chunk_after_message_stop"]


def test_finish_on_an_empty_stream_gives_a_whole_empty_message() -> None:
    translator = MessagesViaChatStream(requested_model=MODEL)
    events = translator.finish()
    assert [e["type"] for e in events] == ["message_start", "message_delta", "message_stop"]
    assert events[0]["message"]["id"] == "msg_stream"
    assert translator.finish() == []
    assert accumulate(events)["content"] == []


def test_fail_after_start_emits_one_error_and_then_nothing() -> None:
    translator = MessagesViaChatStream(requested_model=MODEL)
    translator.feed(chunk({"content": "par"}))
    assert translator.fail(ErrorKind.OVERLOADED, "upstream went away") == [
        {"type": "error", "error": {"type": "overloaded_error", "message": "upstream went away"}}
    ]
    assert translator.feed(chunk({"content": "tial"})) == []
    assert translator.finish() == []
    assert translator.fail(ErrorKind.API_ERROR, "again") == []


def test_fail_after_message_stop_does_nothing() -> None:
    translator = MessagesViaChatStream(requested_model=MODEL)
    translator.feed(chunk({"content": "x"}, "stop"))
    translator.finish()
    assert translator.fail(ErrorKind.API_ERROR, "late") == []


def test_content_after_finish_reason_still_arrives() -> None:
    events, _ = feed_all([chunk({"content": "a"}, "stop"), chunk({"content": "b"})])
    check_grammar(events)
    assert summary(accumulate(events)) == [("text", "a"), ("text", "b")]


def test_thinking_after_text_opens_a_new_block() -> None:
    events, _ = feed_all(
        [chunk({"reasoning": "r1"}), chunk({"content": "t"}), chunk({"reasoning": "r2"})]
    )
    check_grammar(events)
    assert summary(accumulate(events)) == [("thinking", "r1"), ("text", "t"), ("thinking", "r2")]


def test_reasoning_content_wins_when_both_fields_repeat_the_same_text() -> None:
    events, _ = feed_all([chunk({"reasoning_content": "x", "reasoning": "x"})])
    assert summary(accumulate(events)) == [("thinking", "x")]


def test_reasoning_details_alone_carry_their_text() -> None:
    details = [
        {"type": "reasoning.text", "text": "why"},
        {"type": "reasoning.encrypted", "data": "e"},
    ]
    events, translator = feed_all([chunk({"reasoning_details": details})])
    assert summary(accumulate(events)) == [("thinking", "why")]
    assert [d.code for d in translator.degradations] == [
        "reasoning_signature_dropped",
        "stream_ended_without_finish_reason",
        "usage_missing",
    ]


def test_sequential_tool_calls_each_stream_incrementally() -> None:
    calls = [
        {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": '{"a":'}},
        {"index": 0, "function": {"arguments": "1}"}},
        {"index": 1, "id": "call_2", "function": {"name": "g", "arguments": '{"b":'}},
        {"index": 1, "function": {"arguments": "2}"}},
    ]
    translator = MessagesViaChatStream(requested_model=MODEL)
    translator.feed(chunk({"role": "assistant"}))
    per_chunk = [translator.feed(chunk({"tool_calls": [c]})) for c in calls]
    assert [[e["type"] for e in out] for out in per_chunk] == [
        ["content_block_start", "content_block_delta"],
        ["content_block_delta"],
        ["content_block_stop", "content_block_start", "content_block_delta"],
        ["content_block_delta"],
    ]


def test_a_new_id_at_a_used_index_is_a_new_call() -> None:
    calls = [
        {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": "{}"}},
        {"index": 0, "id": "call_2", "function": {"name": "g", "arguments": "{}"}},
    ]
    events, _ = feed_all([chunk({"tool_calls": calls}, "tool_calls")])
    ids = [b["id"] for b in accumulate(events)["content"]]
    assert ids == ["call_1", "call_2"]


def test_reused_ids_are_made_unique_deterministically() -> None:
    calls = [
        {"index": 0, "id": "dup", "function": {"name": "f", "arguments": "{}"}},
        {"index": 1, "id": "dup", "function": {"name": "g", "arguments": "{}"}},
    ]
    events, translator = feed_all([chunk({"tool_calls": calls}, "tool_calls")])
    assert [b["id"] for b in accumulate(events)["content"]] == ["dup", "toolu_chatcmpl-x_1"]
    assert [d.path for d in translator.degradations if d.code == "tool_call_id_derived"] == [
        "tool_calls[1]"
    ]


def test_arguments_sent_as_an_object_are_serialised() -> None:
    call = {"index": 0, "id": "c", "function": {"name": "f", "arguments": {"k": [1, "é"]}}}
    events, _ = feed_all([chunk({"tool_calls": [call]}, "tool_calls")])
    assert accumulate(events)["content"][0]["input"] == {"k": [1, "é"]}


def test_the_legacy_function_call_delta_is_a_tool_call() -> None:
    events, _ = feed_all(
        [
            chunk({"function_call": {"name": "f", "arguments": '{"q"'}}),
            chunk({"function_call": {"arguments": ":1}"}}, "function_call"),
        ]
    )
    message = accumulate(events)
    assert summary(message) == [("tool_use", ("f", {"q": 1}))]
    assert message["stop_reason"] == "tool_use"


def test_a_call_that_never_gets_a_name_is_flushed_and_flagged() -> None:
    events, translator = feed_all([chunk({"tool_calls": [{"index": 0, "id": "c"}]}, "tool_calls")])
    assert summary(accumulate(events)) == [("tool_use", ("", {}))]
    assert "tool_name_missing" in [d.code for d in translator.degradations]


def test_text_closing_an_open_call_drops_its_late_arguments_with_a_record() -> None:
    events, translator = feed_all(
        [
            chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f"}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
            chunk({"content": "text"}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}, "tool_calls"),
        ]
    )
    check_grammar(events)
    assert "tool_arguments_after_close" in [d.code for d in translator.degradations]


def test_other_choices_and_unknown_finish_reasons_are_recorded() -> None:
    second = {"index": 1, "delta": {"content": "other"}, "finish_reason": None}
    first = {"index": 0, "delta": {"content": "main"}, "finish_reason": "eos"}
    events, translator = feed_all([{"id": "x", "choices": [first, second]}])
    assert summary(accumulate(events)) == [("text", "main")]
    assert accumulate(events)["stop_reason"] == "end_turn"
    codes = [d.code for d in translator.degradations]
    assert "extra_choices_dropped" in codes and "finish_reason_unmapped" in codes


def test_the_last_usage_seen_wins() -> None:
    events, _ = feed_all(
        [
            chunk({"content": "a"}, usage={"prompt_tokens": 4, "completion_tokens": 1}),
            chunk({"content": "b"}, "stop", usage={"prompt_tokens": 4, "completion_tokens": 2}),
        ]
    )
    assert accumulate(events)["usage"]["output_tokens"] == 2


@pytest.mark.parametrize(
    ("bad", "path"),
    [
        ({"choices": {"index": 0}}, "choices"),
        ({"choices": ["x"]}, "choices[0]"),
        ({"choices": [{"delta": "x"}]}, "choices[0].delta"),
        ({"choices": [{"delta": {"content": 5}}]}, "choices[0].delta.content"),
        ({"choices": [{"delta": {"tool_calls": {"a": 1}}}]}, "choices[0].delta.tool_calls"),
        ({"choices": [{"delta": {"tool_calls": [{"index": "0"}]}}]}, "tool_calls[0].index"),
        ({"choices": [{"delta": {"tool_calls": [{"id": 5}]}}]}, "tool_calls[0].id"),
        ({"choices": [{"delta": {"tool_calls": [{"function": {"name": 1}}]}}]}, "function.name"),
        ({"choices": [{"delta": {"tool_calls": [{"function": {"arguments": 1}}]}}]}, "arguments"),
        ({"choices": [{"finish_reason": 3}]}, "choices[0].finish_reason"),
        ({"usage": [1]}, "usage"),
    ],
)
def test_wrong_types_are_invalid_input_with_a_path(bad: dict[str, Any], path: str | None) -> None:
    translator = MessagesViaChatStream(requested_model=MODEL)
    with pytest.raises(InvalidInput) as caught:
        translator.feed(bad)
    if path:
        assert caught.value.path.endswith(path)


def test_a_non_object_chunk_is_invalid_input() -> None:
    translator = MessagesViaChatStream(requested_model=MODEL)
    with pytest.raises(InvalidInput):
        translator.feed([])  # type: ignore[arg-type]


def test_unindexed_whole_calls_in_separate_chunks_stay_separate() -> None:
    events, _ = feed_all(
        [
            chunk({"tool_calls": [{"function": {"name": "f", "arguments": '{"a":1}'}}]}),
            chunk({"tool_calls": [{"function": {"name": "g", "arguments": '{"b":2}'}}]}),
            chunk(finish="tool_calls"),
        ]
    )
    message = accumulate(events)
    assert summary(message) == [("tool_use", ("f", {"a": 1})), ("tool_use", ("g", {"b": 2}))]
    assert [b["id"] for b in message["content"]] == ["toolu_chatcmpl-x_0", "toolu_chatcmpl-x_1"]


def test_a_missing_or_odd_upstream_id_gives_a_fixed_message_id() -> None:
    for odd in ({}, {"id": 5}, {"id": ""}):
        events, _ = feed_all([odd])
        assert events[0]["message"]["id"] == "msg_stream"


def test_a_gemini_openai_signature_rides_in_the_streamed_tool_id() -> None:
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "f", "arguments": "{}"},
        "extra_content": {"google": {"thought_signature": "c2ln"}},
    }
    chunks = [
        {
            "id": "c",
            "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [call]}}],
        },
        {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    events, _ = feed_all(chunks)
    message = accumulate(events)
    assert message["content"][0]["id"].startswith("call_1__gsig_")
