from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from anthropic.types import RawMessageStreamEvent
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from syrupy.extensions.json import JSONSnapshotExtension

from anyllm_cli.errors import ANTHROPIC_ERRORS, ErrorKind, InvalidInput, UpstreamError
from anyllm_cli.models.anthropic import MessagesRequest
from anyllm_cli.translate.messages_via_gemini import request
from anyllm_cli.translate.streams.accumulate import accumulate
from anyllm_cli.translate.streams.messages_via_gemini import MessagesViaGeminiStream
from anyllm_cli.translate.streams.pump import SSEPump
from anyllm_cli.translate.streams.sse import encode_anthropic
from tests.translate.streams.anthropic_checks import events_of, normal, sdk_accumulate

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "messages_via_gemini"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.sse"))
ERRORED = {
    "midstream_error": ErrorKind.OVERLOADED,
    "error_first": ErrorKind.RATE_LIMIT,
    "ends_without_finish_reason": ErrorKind.API_ERROR,
}
EVENT = TypeAdapter(RawMessageStreamEvent)
MODEL = "claude-sonnet-4-5"
SIG1 = "CtwFAdHtZ2VtaW5pLXRocmVlLWNhbGwtc2lnbmF0dXJlLTE="
SIG2 = "EpoEAdHtZ2VtaW5pLXRocmVlLXRleHQtc2lnbmF0dXJlLTI="
SIG3 = "Ct4BAdHtdGhvdWdodC1zaWduYXR1cmUtMw=="


def load(name: str) -> bytes:
    return (FIXTURES / f"{name}.sse").read_bytes()


def pump(chunks: list[bytes]) -> tuple[bytes, MessagesViaGeminiStream]:
    translator = MessagesViaGeminiStream(requested_model=MODEL, input_tokens=42)
    p = SSEPump(translator, encode_anthropic)
    out = b"".join(p.feed(chunk) for chunk in chunks) + p.finish()
    return out, translator


def feed_all(chunks: list[dict[str, Any]], **kwargs: Any) -> tuple[list[dict[str, Any]], Any]:
    translator = MessagesViaGeminiStream(requested_model=MODEL, **kwargs)
    out: list[dict[str, Any]] = []
    for chunk in chunks:
        out += translator.feed(chunk)
    return out + translator.finish(), translator


def check_grammar(events: list[dict[str, Any]]) -> None:
    """message_start first; blocks 0, 1, 2, ... each started and stopped once, never interleaved;
    one message_delta, then message_stop last. A failed stream ends with its one error event."""
    assert events
    if events[-1]["type"] == "error":
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
        elif etype in ("content_block_delta", "content_block_stop"):
            assert event["index"] == open_index
            if etype == "content_block_stop":
                open_index = None
        else:
            assert open_index is None


# -- the transcripts -------------------------------------------------------------------------------


def test_there_are_enough_transcripts() -> None:
    assert len(NAMES) >= 12


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
            assert set(event) == {"type", "error"} and set(event["error"]) == {"type", "message"}
            assert event["error"]["type"] in {t for _, t in ANTHROPIC_ERRORS.values()}
            assert event["error"]["message"]
        else:
            EVENT.validate_python(event)


def thinking(text: str, signature: str) -> tuple[str, Any]:
    return ("thinking", (text, signature))


EXPECTED: dict[str, tuple[list[tuple[str, Any]], str]] = {
    "plain_text": ([("text", "The answer is 4.")], "end_turn"),
    "thinking_with_signature": (
        [thinking("**Weighing** 9.11 vs 9.9: 9.9 is 9.90.", SIG3), ("text", "9.9 is larger.")],
        "end_turn",
    ),
    "gemini3_parallel_calls": (
        [
            thinking("**Planning** both tools.", ""),
            thinking("", SIG1),
            ("tool_use", ("toolu_resp1_0", "get_weather", {"city": "Paris"})),
            ("tool_use", ("toolu_resp1_1", "get_time", {"tz": "Asia/Tokyo"})),
        ],
        "tool_use",
    ),
    "signature_in_final_empty_part": (
        [("text", "Paris: 22C and sunny. Tokyo: 09:14.")],  # the text's signature: dropped
        "end_turn",
    ),
    "thought_then_empty_signature_part": (
        [thinking("Thinking hard.", SIG3), ("tool_use", ("fc_1", "get_weather", {}))],
        "tool_use",
    ),
    "max_tokens": ([("text", "Once upon a")], "max_tokens"),
    "prompt_blocked": (
        [
            (
                "text",
                "[The prompt was blocked by Gemini (blockReason: SAFETY); "
                "no answer was generated.]",
            )
        ],
        "refusal",
    ),
    "safety_mid_answer": ([("text", "Here is how")], "refusal"),
    "crlf_cached_usage": ([("text", "Cached answer.")], "end_turn"),
    "usage_only_after_finish": ([("text", "Done.")], "end_turn"),
    "unknown_fields_and_other_parts": ([("text", "One.!")], "end_turn"),
}


def summary(message: dict[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for block in message["content"]:
        if block["type"] == "tool_use":
            out.append(("tool_use", (block["id"], block["name"], block["input"])))
        elif block["type"] == "thinking":
            out.append(thinking(block["thinking"], block["signature"].removeprefix("gemini:")))
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


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_no_thinking_block_follows_text_or_a_tool_use(name: str) -> None:
    """Anthropic's block grammar: thinking blocks first. Claude Code reads a reply with a thinking
    block after its text as an empty result."""
    kinds = [b["type"] for b in accumulate(events_of(pump([load(name)])[0]))["content"]]
    first_other = next((n for n, k in enumerate(kinds) if k != "thinking"), len(kinds))
    assert "thinking" not in kinds[first_other:], kinds


def test_a_call_signature_after_text_rides_in_the_tool_id_and_goes_back() -> None:
    chunks = [
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "Checking."}]}}]},
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {
                                "functionCall": {"id": "c1", "name": "f", "args": {}},
                                "thoughtSignature": "c2lnLzE+Pw==",
                            }
                        ],
                    },
                    "finishReason": "STOP",
                }
            ]
        },
    ]
    stream = MessagesViaGeminiStream(requested_model=MODEL)
    events = [e for c in chunks for e in stream.feed(c)] + stream.finish()
    message = accumulate(events)
    assert [b["type"] for b in message["content"]] == ["text", "tool_use"]
    call = message["content"][1]
    assert call["id"].startswith("c1__gsig_") and re.fullmatch(r"[A-Za-z0-9_-]+", call["id"])
    history = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": message["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"]}]},
    ]
    req = MessagesRequest.parse({"model": "g", "max_tokens": 9, "messages": history})
    contents = request(req).body["contents"]
    assert contents[1]["parts"][1] == {
        "functionCall": {"name": "f", "args": {}, "id": "c1"},
        "thoughtSignature": "c2lnLzE+Pw==",
    }
    assert contents[2]["parts"][0]["functionResponse"]["id"] == "c1"


@pytest.mark.parametrize("preamble", [False, True])
def test_a_call_signature_on_the_next_empty_part_is_the_calls_own(preamble: bool) -> None:
    def chunk(part: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [part]}}
        return {"candidates": [{**candidate, "finishReason": finish} if finish else candidate]}

    chunks = [chunk({"text": "Hmm.", "thought": True})]
    chunks += [chunk({"text": "Checking."})] if preamble else []
    chunks += [
        chunk({"functionCall": {"id": "c1", "name": "f", "args": {}}}),
        chunk({"text": "", "thoughtSignature": "c2ln"}),
        chunk({"text": ""}, "STOP"),
    ]
    stream = MessagesViaGeminiStream(requested_model=MODEL)
    message = accumulate([e for c in chunks for e in stream.feed(c)] + stream.finish())
    kinds = [b["type"] for b in message["content"]]
    if preamble:  # the unsigned thought is kept for the client; the signature rides in the id
        assert kinds == ["thinking", "text", "tool_use"]
        assert message["content"][2]["id"].startswith("c1__gsig_")
    else:
        assert kinds == ["thinking", "thinking", "tool_use"]
        assert message["content"][1]["signature"] == "gemini:c2ln"
        assert message["content"][2]["id"] == "c1"
    history = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": message["content"]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": message["content"][-1]["id"]}],
        },
    ]
    req = MessagesRequest.parse({"model": "g", "max_tokens": 9, "messages": history})
    calls = [p for p in request(req).body["contents"][1]["parts"] if "functionCall" in p]
    assert calls == [
        {"functionCall": {"name": "f", "args": {}, "id": "c1"}, "thoughtSignature": "c2ln"}
    ]


def test_every_transcript_is_covered() -> None:
    assert set(EXPECTED) | set(ERRORED) == set(NAMES)


@pytest.mark.parametrize("name", sorted(ERRORED))
def test_errors_and_cut_streams_end_with_an_error_event(name: str) -> None:
    events = events_of(pump([load(name)])[0])
    assert events[-1]["type"] == "error"
    assert "message_stop" not in [e["type"] for e in events]
    with pytest.raises(UpstreamError) as caught:
        accumulate(events)
    assert caught.value.kind is ERRORED[name]


def test_an_error_first_emits_only_the_error_and_never_starts() -> None:
    out, translator = pump([load("error_first")])
    assert translator.started is False
    assert len(events_of(out)) == 1


def test_usage_counts_cache_reads_and_thoughts() -> None:
    cached = accumulate(events_of(pump([load("crlf_cached_usage")])[0]))
    assert cached["usage"] == {
        "input_tokens": 904,
        "output_tokens": 3,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 4096,
    }
    start = events_of(pump([load("crlf_cached_usage")])[0])[0]
    assert (
        start["message"]["usage"]["input_tokens"] == 904
    )  # from the first chunk, not the estimate
    thought = accumulate(events_of(pump([load("thinking_with_signature")])[0]))
    assert thought["usage"]["output_tokens"] == 37
    late = accumulate(events_of(pump([load("usage_only_after_finish")])[0]))
    assert late["usage"]["output_tokens"] == 2


def test_a_streamed_turn_replays_its_signatures_on_the_right_parts() -> None:
    message = accumulate(events_of(pump([load("gemini3_parallel_calls")])[0]))
    calls = [b for b in message["content"] if b["type"] == "tool_use"]
    raw = {
        "model": MODEL,
        "max_tokens": 100,
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": message["content"]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": c["id"], "content": "ok"} for c in calls
                ],
            },
        ],
    }
    parts = request(MessagesRequest.parse(raw)).body["contents"][1]["parts"]
    # a thought part without a signature is not replayed; the call's signature is, on the call
    assert [p.get("thoughtSignature") for p in parts] == [SIG1, None]
    assert [p["functionCall"]["name"] for p in parts] == ["get_weather", "get_time"]


# -- re-chunking and robustness ----------------------------------------------------------------------


@settings(max_examples=120, deadline=None)
@given(st.sampled_from(NAMES), st.lists(st.integers(min_value=0, max_value=1 << 16), max_size=10))
def test_rechunking_never_changes_the_output(name: str, cuts: list[int]) -> None:
    data = load(name)
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert pump(chunks)[0] == pump([data])[0]


KEYS = st.sampled_from(
    [
        "candidates", "content", "parts", "text", "thought", "thoughtSignature", "functionCall",
        "name", "args", "id", "finishReason", "index", "usageMetadata", "promptTokenCount",
        "candidatesTokenCount", "promptFeedback", "blockReason", "error", "code", "status",
        "message", "responseId", "inlineData",
    ]
)  # fmt: skip
LEAVES = st.none() | st.booleans() | st.integers(-3, 600) | st.text(max_size=4) | st.just("STOP")


def _nest(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4)


JSONISH = st.recursive(LEAVES, _nest, max_leaves=10)
PART = st.dictionaries(KEYS, JSONISH, max_size=3) | st.sampled_from(
    [
        {"text": "a"},
        {"text": "t", "thought": True},
        {"text": "", "thoughtSignature": "s"},
        {"functionCall": {"name": "f", "args": {"x": 1}}, "thoughtSignature": "s"},
        {"functionCall": {"name": "f", "id": "same"}},
    ]
)
CHUNK = st.fixed_dictionaries(
    {},
    optional={
        "candidates": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "content": st.fixed_dictionaries({"parts": st.lists(PART, max_size=3)})
                    | JSONISH,
                    "finishReason": st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY", "ODD"])
                    | JSONISH,
                    "index": st.sampled_from([0, 1]),
                },
            ),
            max_size=2,
        )
        | JSONISH,
        "usageMetadata": st.dictionaries(KEYS, JSONISH, max_size=3) | JSONISH,
        "promptFeedback": st.fixed_dictionaries({"blockReason": st.sampled_from(["SAFETY", ""])})
        | JSONISH,
        "responseId": st.sampled_from(["r1", "a:b", ""]) | JSONISH,
        "error": JSONISH,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(CHUNK | st.dictionaries(KEYS, JSONISH, max_size=4), max_size=6), st.booleans())
def test_arbitrary_json_raises_nothing_but_invalid_input(
    chunks: list[dict[str, Any]], fails: bool
) -> None:
    translator = MessagesViaGeminiStream(requested_model=MODEL)
    out: list[dict[str, Any]] = []
    try:
        for chunk in chunks:
            out += translator.feed(chunk)
    except InvalidInput:
        return
    out += translator.fail(ErrorKind.TIMEOUT, "cut") if fails else translator.finish()
    check_grammar(out)
    for event in out:
        if event["type"] != "error":
            EVENT.validate_python(event)
    if out[-1]["type"] == "message_stop":
        message = accumulate(out)
        assert normal(message) == sdk_accumulate(out)
        ids = [b["id"] for b in message["content"] if b["type"] == "tool_use"]
        assert len(ids) == len(set(ids))


# -- the state machine, case by case -----------------------------------------------------------------


def chunk(*parts: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "responseId": "r", **extra}


def test_message_start_comes_with_the_first_chunk_and_uses_the_given_id() -> None:
    translator = MessagesViaGeminiStream(
        requested_model=MODEL, message_id="msg_given", input_tokens=7
    )
    first = translator.feed(chunk())
    assert translator.started
    assert [e["type"] for e in first] == ["message_start"]
    assert first[0]["message"]["id"] == "msg_given"
    assert first[0]["message"]["usage"]["input_tokens"] == 7


def test_the_end_waits_for_finish_and_content_after_finish_reason_still_arrives() -> None:
    translator = MessagesViaGeminiStream(requested_model=MODEL)
    translator.feed(chunk({"text": "a"}))
    held = translator.feed(chunk(finish="STOP"))
    assert [e["type"] for e in held] == ["content_block_stop"]
    more = translator.feed(chunk({"text": "b"}))
    assert [e["type"] for e in more] == ["content_block_start", "content_block_delta"]
    end = translator.finish()
    assert [e["type"] for e in end][-2:] == ["message_delta", "message_stop"]
    assert translator.feed(chunk({"text": "late"})) == []
    assert "chunk_after_end" in [d.code for d in translator.degradations]


def test_a_signed_thinking_block_is_not_extended() -> None:
    events, _ = feed_all(
        [
            chunk({"text": "a", "thought": True, "thoughtSignature": "s1"}),
            chunk({"text": "b", "thought": True}, finish="STOP"),
        ]
    )
    message = accumulate(events)
    assert summary(message) == [thinking("a", "s1"), thinking("b", "")]


def test_signature_on_text_goes_on_a_carrier_before_it() -> None:
    events, _ = feed_all([chunk({"text": "hi", "thoughtSignature": "s"}, finish="STOP")])
    assert summary(accumulate(events)) == [thinking("", "s"), ("text", "hi")]


def test_repeated_or_illegal_call_ids_are_made_unique_deterministically() -> None:
    calls = [
        {"functionCall": {"name": "f", "id": "dup"}},
        {"functionCall": {"name": "g", "id": "dup"}},
        {"functionCall": {"name": "h", "id": "a b"}},
    ]
    events, translator = feed_all([chunk(*calls, finish="STOP")], message_id="msg_x")
    ids = [b[1][0] for b in summary(accumulate(events))]
    assert ids == ["dup", "toolu_r_1", "toolu_r_2"]
    assert [d.code for d in translator.degradations] == ["tool_call_id_derived"] * 2 + [
        "usage_missing"
    ]


def test_fail_after_start_emits_one_error_and_then_nothing() -> None:
    translator = MessagesViaGeminiStream(requested_model=MODEL)
    translator.feed(chunk({"text": "a"}))
    out = translator.fail(ErrorKind.TIMEOUT, "upstream timed out")
    assert out == [
        {"type": "error", "error": {"type": "timeout_error", "message": "upstream timed out"}}
    ]
    assert translator.finish() == [] and translator.feed(chunk()) == []


def test_an_empty_stream_is_an_error_not_a_silent_end() -> None:
    translator = MessagesViaGeminiStream(requested_model=MODEL)
    out = translator.finish()
    assert [e["type"] for e in out] == ["error"]
    assert not translator.started


@pytest.mark.parametrize(
    ("bad", "path"),
    [
        ({"candidates": {}}, "candidates"),
        ({"candidates": [3]}, "candidates[0]"),
        ({"candidates": [{"content": {"parts": "x"}}]}, "candidates[0].content.parts"),
        ({"candidates": [{"content": {"parts": [{"text": 1}]}}]}, "candidates[0].content.parts[0].text"),
        ({"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": []}}]}}]}, "candidates[0].content.parts[0].functionCall.args"),
        ({"candidates": [{"finishReason": 3}]}, "candidates[0].finishReason"),
        ({"usageMetadata": []}, "usageMetadata"),
    ],
)  # fmt: skip
def test_wrong_types_are_invalid_input_with_a_path(bad: dict[str, Any], path: str) -> None:
    translator = MessagesViaGeminiStream(requested_model=MODEL)
    with pytest.raises(InvalidInput) as caught:
        translator.feed(bad)
    assert caught.value.path == path
