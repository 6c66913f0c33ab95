from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from google.genai import types
from hypothesis import given, settings
from hypothesis import strategies as st
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from anyllm_cli.errors import ErrorKind, InvalidInput
from anyllm_cli.models.anthropic import MessagesResponse
from anyllm_cli.translate.gemini_via_messages import response
from anyllm_cli.translate.streams.accumulate import accumulate
from anyllm_cli.translate.streams.gemini_via_messages import GeminiViaMessagesStream
from anyllm_cli.translate.streams.pump import SSEPump, decode_event
from anyllm_cli.translate.streams.sse import SSEDecoder, dumps, encode

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "gemini_via_messages"
STREAMS = sorted(FIXTURES.glob("*.sse"))
INCOMPLETE = {"mid_stream_error", "truncated"}
MODEL = "gemini-2.5-pro"


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


def encode_gemini(chunk: dict[str, Any]) -> bytes:
    return encode(dumps(chunk))


def pump(chunks: list[bytes]) -> tuple[bytes, GeminiViaMessagesStream]:
    translator = GeminiViaMessagesStream(model=MODEL)
    sse = SSEPump(translator, encode_gemini)
    return b"".join(sse.feed(c) for c in chunks) + sse.finish(), translator


def decode(out: bytes) -> list[dict[str, Any]]:
    decoder = SSEDecoder()
    return [json.loads(e.data) for e in decoder.decode(out) + decoder.flush()]


def anthropic_events(path: Path) -> list[dict[str, Any]]:
    decoder = SSEDecoder()
    events = decoder.decode(path.read_bytes()) + decoder.flush()
    return [decode_event(e, n) for n, e in enumerate(events, 1)]


def fold(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """What a google-genai client ends with: each chunk parsed by the SDK, parts appended."""
    text, thoughts, calls, finish, usage = "", "", [], None, None
    signatures: list[str] = []
    for chunk in chunks:
        parsed = types.GenerateContentResponse.model_validate(chunk)
        usage = (
            parsed.usage_metadata.model_dump(exclude_none=True) if parsed.usage_metadata else None
        )
        candidate = (parsed.candidates or [None])[0]
        if candidate is None:
            continue
        finish = candidate.finish_reason or finish
        for part in (candidate.content and candidate.content.parts) or []:
            if part.thought:
                thoughts += part.text or ""
            elif part.text:
                text += part.text
            if part.function_call:
                call = part.function_call
                calls.append((call.id, call.name, call.args))
            if part.thought_signature:
                signatures.append(part.thought_signature.decode())
    return {
        "text": text,
        "thoughts": thoughts,
        "calls": calls,
        "finish": finish,
        "usage": usage,
        "signatures": signatures,
    }


@pytest.mark.parametrize("path", STREAMS, ids=lambda p: p.stem)
def test_stream_fixture(path: Path, snapshot_json: SnapshotAssertion) -> None:
    out, translator = pump([path.read_bytes()])
    chunks = decode(out)
    assert {
        "chunks": chunks,
        "degradations": [dataclasses.asdict(d) for d in translator.degradations],
    } == snapshot_json
    if path.stem in INCOMPLETE:
        assert set(chunks[-1]) == {"error"}
        return
    expected = response(MessagesResponse.parse(accumulate(anthropic_events(path))), model=MODEL)
    assert fold(chunks) == fold([expected.body])


def test_gemini_signatures_ride_on_the_parts_they_belong_to() -> None:
    chunks = decode(pump([(FIXTURES / "gemini_signatures_and_calls.sse").read_bytes()])[0])
    parts = [p for c in chunks for p in c["candidates"][0]["content"].get("parts", [])]
    signed = [p for p in parts if "thoughtSignature" in p]
    assert signed == [
        {"text": "", "thought": True, "thoughtSignature": "dGhvdWdodA=="},
        {
            "functionCall": {
                "name": "get_weather",
                "args": {"city": "Paris"},
                "id": "toolu_gem_abc_0",
            },
            "thoughtSignature": "Y2FsbHNpZw==",
        },
        {"text": "", "thoughtSignature": "dGFpbA=="},
    ]
    final = chunks[-1]
    assert final["candidates"][0]["finishReason"] == "STOP"
    assert final["usageMetadata"] == {
        "promptTokenCount": 100,
        "candidatesTokenCount": 15,
        "totalTokenCount": 155,
        "cachedContentTokenCount": 30,
        "thoughtsTokenCount": 40,
    }
    assert all(c["responseId"] == "msg_gem_abc" and c["modelVersion"] == MODEL for c in chunks)


def test_error_event_fail_and_truncation_give_one_gemini_error() -> None:
    stream = GeminiViaMessagesStream(model=MODEL)
    assert stream.feed({"type": "message_start", "message": {"id": "msg_1"}}) == []
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert stream.feed(error) == [
        {"error": {"code": 503, "message": "Overloaded", "status": "UNAVAILABLE"}}
    ]
    assert stream.fail(ErrorKind.TIMEOUT, "late") == []
    assert stream.finish() == []
    cut = GeminiViaMessagesStream(model=MODEL)
    assert cut.finish()[0]["error"]["status"] == "INTERNAL"
    assert [d.code for d in cut.degradations] == ["stream_truncated"]
    failed = GeminiViaMessagesStream(model=MODEL)
    assert failed.fail(ErrorKind.RATE_LIMIT, "slow down") == [
        {"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}
    ]


# -- properties --------------------------------------------------------------------------------------

SAMPLE = b"".join(
    (FIXTURES / f"{n}.sse").read_bytes()
    for n in ("gemini_signatures_and_calls", "thinking_then_text")
)
EXPECTED = pump([SAMPLE])[0]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(SAMPLE)), max_size=30))
def test_rechunking_never_changes_the_output(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [SAMPLE[a:b] for a, b in zip([0, *points], [*points, len(SAMPLE)], strict=True)]
    assert pump(chunks)[0] == EXPECTED


REAL_EVENTS = [e for p in STREAMS for e in anthropic_events(p)]
_LEAF = st.none() | st.booleans() | st.integers(-1, 3) | st.text(max_size=4)
_MUTATION = st.none() | st.tuples(
    st.sampled_from(["type", "index", "delta", "content_block", "text", "signature", "id"]),
    _LEAF | st.sampled_from(["text_delta", "tool_use", "signature_delta", "gemini:x"]),
    st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(REAL_EVENTS), _MUTATION), max_size=15))
def test_damaged_real_events_raise_only_invalid_input(
    items: list[tuple[dict[str, Any], tuple[str, Any, bool] | None]],
) -> None:
    stream = GeminiViaMessagesStream(model=MODEL)
    out: list[dict[str, Any]] = []
    for original, mutation in items:
        event = json.loads(json.dumps(original))
        if mutation is not None:
            key, value, nested = mutation
            inner = [v for v in event.values() if isinstance(v, dict)]
            (inner[0] if nested and inner else event)[key] = value
        with contextlib.suppress(InvalidInput):
            out += stream.feed(event)
    out += stream.finish()
    for chunk in out:
        json.dumps(chunk)
        if "error" not in chunk:
            types.GenerateContentResponse.model_validate(chunk)
