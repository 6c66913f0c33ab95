from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from anthropic.types.message_create_params import (
    MessageCreateParamsNonStreaming,
    MessageCreateParamsStreaming,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion
from pydantic import TypeAdapter
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from anyllm_cli.errors import InvalidInput
from anyllm_cli.models.anthropic import MessagesResponse
from anyllm_cli.models.openai_chat import ChatRequest
from anyllm_cli.translate.chat_via_messages import (
    MessagesOptions,
    chat_usage,
    finish_reason,
    request,
    response,
    tool_id,
)
from anyllm_cli.translate.degradation import Translated

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "chat_via_messages"
REQUESTS = sorted(FIXTURES.glob("*.request.json"))
VALID_REQUESTS = [p for p in REQUESTS if not p.name.startswith("invalid_")]
INVALID_REQUESTS = [p for p in REQUESTS if p.name.startswith("invalid_")]
RESPONSES = sorted(FIXTURES.glob("*.response.json"))
CREATED = 1_700_000_000
NON_STREAMING = TypeAdapter(MessageCreateParamsNonStreaming)
STREAMING = TypeAdapter(MessageCreateParamsStreaming)
TOOL_ID = re.compile(r"[a-zA-Z0-9_-]+")


def _stem(path: Path) -> str:
    return path.name.split(".")[0]


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


def _drain(value: Any) -> Any:
    """The SDK TypedDicts validate iterables lazily: walk everything so each item is checked."""
    if isinstance(value, dict):
        return {k: _drain(v) for k, v in value.items()}
    if value is None or isinstance(value, str | bytes | int | float | bool):
        return value
    return [_drain(v) for v in value]


def assert_valid_anthropic(body: dict[str, Any]) -> None:
    adapter = STREAMING if body.get("stream") else NON_STREAMING
    # The specs list the sampling fields; this SDK snapshot no longer types them.
    typed = {k: v for k, v in body.items() if k not in ("temperature", "top_p", "top_k")}
    assert 0 <= body.get("temperature", 0) <= 1
    assert "top_p" not in body or "temperature" not in body, "newer models take only one"
    # TypedDicts ignore unknown keys: equality after validation proves there were none, anywhere.
    assert _drain(adapter.validate_python(typed)) == typed
    assert_conversation_rules(body)


def assert_conversation_rules(body: dict[str, Any]) -> None:
    """What Anthropic enforces beyond the schema (see the spec's pitfalls 2, 3, 4, 5, 14, 8)."""
    messages = body["messages"]
    assert messages[0]["role"] == "user"
    open_ids: set[str] = set()
    for i, msg in enumerate(messages):
        assert i == 0 or msg["role"] != messages[i - 1]["role"], "roles must alternate"
        blocks = msg["content"]
        assert blocks, "no empty messages"
        kinds = [b["type"] for b in blocks]
        assert all(b["text"] for b in blocks if b["type"] == "text"), "no empty text blocks"
        if msg["role"] == "user":
            results = {b["tool_use_id"] for b in blocks if b["type"] == "tool_result"}
            assert results == open_ids, "results answer exactly the previous tool calls"
            assert kinds[: len(results)] == ["tool_result"] * len(results), "results come first"
            open_ids = set()
        else:
            open_ids = {b["id"] for b in blocks if b["type"] == "tool_use"}
            assert all(TOOL_ID.fullmatch(i) for i in open_ids)
    assert not open_ids, "every tool call is answered"
    last = messages[-1]
    if last["role"] == "assistant" and last["content"][-1]["type"] == "text":
        assert last["content"][-1]["text"] == last["content"][-1]["text"].rstrip()
    if "thinking" in body:
        assert body["thinking"]["budget_tokens"] < body["max_tokens"]
        assert body.get("temperature", 1) == 1
        assert "top_k" not in body
        assert body.get("tool_choice", {}).get("type") not in ("any", "tool")
        assert last["role"] == "user"


def _snap(out: Translated[dict[str, Any]]) -> dict[str, Any]:
    return {"body": out.body, "degradations": [dataclasses.asdict(d) for d in out.degradations]}


# -- fixtures ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", VALID_REQUESTS, ids=_stem)
def test_request_fixture(path: Path, snapshot_json: SnapshotAssertion) -> None:
    req = ChatRequest.parse(path.read_bytes())
    out = request(
        req, MessagesOptions(map_model=lambda m: {"gpt-4o": "claude-sonnet-4-5"}.get(m, m))
    )
    assert_valid_anthropic(out.body)
    assert _snap(out) == snapshot_json


@pytest.mark.parametrize("path", INVALID_REQUESTS, ids=_stem)
def test_invalid_request_fixture(path: Path, snapshot_json: SnapshotAssertion) -> None:
    with pytest.raises(InvalidInput) as caught:
        request(ChatRequest.parse(path.read_bytes()))
    assert {"problem": caught.value.problem, "path": caught.value.path} == snapshot_json


@pytest.mark.parametrize("path", RESPONSES, ids=_stem)
def test_response_fixture(path: Path, snapshot_json: SnapshotAssertion) -> None:
    resp = MessagesResponse.parse(path.read_bytes())
    out = response(resp, requested_model="gpt-4o", created=CREATED)
    ChatCompletion.model_validate(out.body)
    assert out.body["id"] == f"chatcmpl-{resp.id}"
    assert _snap(out) == snapshot_json


def test_there_are_enough_fixtures() -> None:
    assert len(VALID_REQUESTS) + len(INVALID_REQUESTS) + len(RESPONSES) >= 12


# -- request details ---------------------------------------------------------------------------------


def _req(**fields: Any) -> ChatRequest:
    fields.setdefault("messages", [{"role": "user", "content": "hi"}])
    return ChatRequest.parse({"model": "m", **fields})


def _codes(out: Translated[dict[str, Any]]) -> list[str]:
    return [d.code for d in out.degradations]


def test_tool_ids_are_kept_when_legal_and_mapped_deterministically_otherwise() -> None:
    assert tool_id("call_Abc-123") == "call_Abc-123"
    mapped = {raw: tool_id(raw) for raw in ("a.b", "a:b", "a|b", "", "x" * 80, "ünï")}
    assert all(TOOL_ID.fullmatch(v) and len(v) <= 64 for v in mapped.values())
    assert len(set(mapped.values())) == len(mapped), "different ids never collide"
    assert tool_id("a.b") == mapped["a.b"]
    assert tool_id("ok\n") != "ok\n"


def test_max_tokens_defaults_and_prefers_max_completion_tokens() -> None:
    assert request(_req()).body["max_tokens"] == 8192
    assert request(_req(), MessagesOptions(default_max_tokens=100)).body["max_tokens"] == 100
    out = request(_req(max_tokens=10, max_completion_tokens=20))
    assert out.body["max_tokens"] == 20
    with pytest.raises(InvalidInput) as caught:
        request(_req(max_tokens=-1))
    assert caught.value.path == "max_tokens"


@pytest.mark.parametrize(("given", "sent"), [(-0.5, 0.0), (0.3, 0.3), (1.0, 1.0), (2.0, 1.0)])
def test_temperature_is_clamped(given: float, sent: float) -> None:
    out = request(_req(temperature=given))
    assert out.body["temperature"] == sent
    assert ("temperature_clamped" in _codes(out)) == (given != sent)


TOOLS = [{"type": "function", "function": {"name": "f"}}]


@pytest.mark.parametrize(
    ("choice", "parallel", "sent"),
    [
        ("none", False, {"type": "none"}),
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        ({"type": "function", "function": {"name": "f"}}, None, {"type": "tool", "name": "f"}),
        (
            {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": []}},
            None,
            {"type": "any"},
        ),
        (None, None, None),
    ],
)
def test_tool_choice(choice: Any, parallel: bool | None, sent: dict[str, Any] | None) -> None:
    out = request(_req(tools=TOOLS, tool_choice=choice, parallel_tool_calls=parallel))
    assert out.body.get("tool_choice") == sent
    assert out.body["tools"] == [
        {"name": "f", "input_schema": {"type": "object", "properties": {}}}
    ]


@pytest.mark.parametrize("choice", ["sometimes", {"type": "custom", "custom": {"name": "x"}}])
def test_unknown_tool_choice_is_invalid(choice: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        request(_req(tools=TOOLS, tool_choice=choice))
    assert caught.value.path == "tool_choice"


def test_non_object_tool_schema_is_invalid() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]
    with pytest.raises(InvalidInput):
        request(_req(tools=tools))


@pytest.mark.parametrize("effort", ["none", "minimal"])
def test_low_efforts_mean_no_thinking(effort: str) -> None:
    out = request(_req(reasoning_effort=effort))
    assert "thinking" not in out.body
    assert out.degradations == []


def test_default_max_tokens_grows_above_the_budget_without_complaint() -> None:
    out = request(_req(reasoning_effort="high"))
    assert out.body["thinking"] == {"type": "enabled", "budget_tokens": 16384}
    assert out.body["max_tokens"] == 16384 + 4096
    assert out.degradations == []


def test_forced_tool_use_switches_thinking_off() -> None:
    out = request(_req(reasoning_effort="low", tools=TOOLS, tool_choice="required"))
    assert "thinking" not in out.body
    assert _codes(out) == ["thinking_disabled"]


def test_unknown_effort_is_invalid() -> None:
    with pytest.raises(InvalidInput) as caught:
        request(_req(reasoning_effort="extreme"))
    assert caught.value.path == "reasoning_effort"


@pytest.mark.parametrize(
    "fmt",
    [
        {"type": "json_schema", "json_schema": {"name": "x"}},
        {"type": "yaml"},
    ],
)
def test_bad_response_format_is_invalid(fmt: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        request(_req(response_format=fmt))


def test_system_only_conversation_gets_a_user_turn() -> None:
    out = request(_req(messages=[{"role": "system", "content": "Translate to French: cat"}]))
    assert out.body["system"] == "Translate to French: cat"
    assert out.body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "."}]}]
    assert _codes(out) == ["user_turn_inserted"]


def test_only_four_cache_breakpoints_survive() -> None:
    part = {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}
    out = request(_req(messages=[{"role": "user", "content": [part] * 5}]))
    blocks = out.body["messages"][0]["content"]
    assert sum("cache_control" in b for b in blocks) == 4
    assert _codes(out) == ["cache_control_dropped"]


def test_file_id_and_unknown_files_are_degraded() -> None:
    parts = [
        {"type": "file", "file": {"file_id": "file-1"}},
        {"type": "file", "file": {"file_data": "AAAA", "filename": "a.bin"}},
        {"type": "file", "file": {"file_data": "data:application/zip;base64,AAAA"}},
        {"type": "file", "file": {"file_data": "JVBERi0=", "filename": "raw.PDF"}},
    ]
    out = request(_req(messages=[{"role": "user", "content": parts}]))
    assert _codes(out) == ["file_id_dropped", "file_dropped", "file_dropped"]
    assert out.body["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
            "title": "raw.PDF",
        }
    ]


@pytest.mark.parametrize(
    "part",
    [
        {"type": "file", "file": {"filename": "a"}},
        {"type": "file", "file": {"file_data": "data:text/plain;base64,%%%"}},
    ],
)
def test_broken_files_are_invalid(part: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as caught:
        request(_req(messages=[{"role": "user", "content": [part]}]))
    assert caught.value.path.startswith("messages[0].content[0].file")


def test_legacy_function_message_becomes_user_text() -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": "calling",
            "function_call": {"name": "f", "arguments": ""},
        },
        {"role": "function", "name": "f", "content": "42"},
    ]
    out = request(_req(messages=messages))
    assert out.body["messages"][-1]["content"] == [{"type": "text", "text": "Result of f: 42"}]
    assert _codes(out) == ["message_field_dropped", "function_message_converted"]


# -- response details --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stop", "tools", "reason", "code"),
    [
        ("end_turn", False, "stop", None),
        ("stop_sequence", False, "stop", None),
        ("pause_turn", False, "stop", "pause_turn_as_stop"),
        ("max_tokens", False, "length", None),
        ("max_tokens", True, "length", None),
        ("model_context_window_exceeded", False, "length", None),
        ("tool_use", True, "tool_calls", None),
        ("tool_use", False, "stop", None),
        ("end_turn", True, "tool_calls", None),
        ("refusal", False, "content_filter", None),
        (None, False, "stop", None),
        ("something_new", False, "stop", "unknown_stop_reason"),
    ],
)
def test_finish_reason(stop: str | None, tools: bool, reason: str, code: str | None) -> None:
    assert finish_reason(stop, tools) == (reason, code)


def test_usage_counts_cache_into_prompt_tokens() -> None:
    usage = {
        "input_tokens": 10,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 5,
        "output_tokens": 7,
    }
    assert chat_usage(usage) == {
        "prompt_tokens": 115,
        "completion_tokens": 7,
        "total_tokens": 122,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 5},
    }
    assert chat_usage({"input_tokens": True, "output_tokens": -3})["total_tokens"] == 0


# -- properties --------------------------------------------------------------------------------------

_IDS = st.sampled_from(["call_1", "call_2", "call:3", "toolu_x", "a.b", ""])
_TEXT = st.sampled_from(["", " ", "hi", "hello  ", "\n"])
_PART = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, _TEXT),
    st.just({"type": "image_url", "image_url": {"url": "https://x/y.png"}}),
    st.just({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}),
    st.just({"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}),
    st.just({"type": "refusal", "refusal": "no"}),
    st.just({"type": "mystery", "x": 1}),
    st.just({"type": "text", "text": "c", "cache_control": {"type": "ephemeral"}}),
)
_CONTENT = st.one_of(_TEXT, st.lists(_PART, max_size=3))
_CALL = st.builds(
    lambda i, a: {"id": i, "type": "function", "function": {"name": "f", "arguments": a}},
    _IDS,
    st.sampled_from(["", "{}", '{"a":1}', "[1]", "{bad"]),
)
_MESSAGE = st.one_of(
    st.builds(
        lambda c, r: {"role": r, "content": c},
        _CONTENT,
        st.sampled_from(["system", "developer", "user", "user"]),
    ),
    st.builds(
        lambda c, calls, rc: {
            "role": "assistant",
            "content": c,
            "tool_calls": calls or None,
            "reasoning_content": rc,
        },
        st.one_of(st.none(), _CONTENT),
        st.lists(_CALL, max_size=3, unique_by=lambda c: c["id"]),
        st.sampled_from([None, "hmm"]),
    ),
    st.builds(lambda i, c: {"role": "tool", "tool_call_id": i, "content": c}, _IDS, _CONTENT),
)
_REQUEST = st.fixed_dictionaries(
    {"model": st.just("m"), "messages": st.lists(_MESSAGE, max_size=8)},
    optional={
        "reasoning_effort": st.sampled_from(["none", "low", "medium", "high", "max", "bogus"]),
        "tool_choice": st.sampled_from(["auto", "required", "none", "bogus"]),
        "tools": st.just(TOOLS),
        "temperature": st.floats(-1, 3),
        "top_p": st.floats(0, 1),
        "max_tokens": st.integers(-1, 40000),
        "parallel_tool_calls": st.booleans(),
        "stop": st.one_of(_TEXT, st.lists(_TEXT, max_size=3)),
        "stream": st.booleans(),
        "response_format": st.sampled_from(
            [{"type": "json_object"}, {"type": "text"}, {"type": "json_schema"}]
        ),
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_REQUEST)
def test_any_chat_request_becomes_a_valid_anthropic_request_or_invalid_input(
    raw: dict[str, Any],
) -> None:
    try:
        out = request(ChatRequest.parse(raw))
    except InvalidInput:
        return
    assert_valid_anthropic(out.body)
    json.dumps(out.body)


def test_gemini_signatures_ride_on_tool_calls_and_come_back() -> None:
    content = [
        {"type": "thinking", "thinking": "", "signature": "gemini:c2ln"},
        {"type": "tool_use", "id": "c1", "name": "f", "input": {}},
        {"type": "text", "text": "and"},
        {"type": "tool_use", "id": "c2__gsig_dHdv", "name": "g", "input": {}},
        {"type": "tool_use", "id": "c3", "name": "h", "input": {}},
    ]
    raw = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": content,
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    reply = response(MessagesResponse.parse(raw), requested_model="m", created=1)
    ChatCompletion.model_validate(reply.body)
    calls = reply.body["choices"][0]["message"]["tool_calls"]
    assert [c["id"] for c in calls] == ["c1", "c2", "c3"]
    assert [c.get("extra_content") for c in calls] == [
        {"google": {"thought_signature": "c2ln"}},
        {"google": {"thought_signature": "two"}},
        None,
    ]
    assert "thinking_signature_dropped" not in _codes(reply)
    back = request(
        _req(
            messages=[
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": None, "tool_calls": calls},
                *({"role": "tool", "tool_call_id": c["id"], "content": "x"} for c in calls),
            ]
        )
    ).body["messages"][1]["content"]
    assert [(b["type"], b.get("signature") or b.get("id")) for b in back] == [
        ("thinking", "gemini:c2ln"),
        ("tool_use", "c1"),
        ("thinking", "gemini:two"),
        ("tool_use", "c2"),
        ("tool_use", "c3"),
    ]


def test_a_thought_signature_that_is_not_a_string_is_invalid_input() -> None:
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "f", "arguments": "{}"},
        "extra_content": {"google": {"thought_signature": 7}},
    }
    messages = [{"role": "user", "content": "go"}, {"role": "assistant", "tool_calls": [call]}]
    with pytest.raises(InvalidInput) as info:
        request(_req(messages=messages))
    assert info.value.path == "messages[1].tool_calls[0].extra_content.google.thought_signature"
