from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic.types
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.responses import Response
from openai.types.responses.response_create_params import (
    ResponseCreateParamsNonStreaming,
    ResponseCreateParamsStreaming,
)
from pydantic import BaseModel, TypeAdapter
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from anyllm_cli.errors import ErrorKind, InvalidInput, UpstreamError
from anyllm_cli.models.anthropic import MessagesRequest
from anyllm_cli.models.openai_responses import ResponsesRequest, ResponsesResponse
from anyllm_cli.translate.degradation import Translated
from anyllm_cli.translate.messages_via_responses import (
    SIGNATURE_PREFIX,
    ResponsesOptions,
    error_kind,
    read_signature,
    request,
    response,
    stop_reason,
    usage,
)

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "messages_via_responses"
PNG = "iVBORw0KGgo="
ENC = "gAAAAABenc"

# -- checks every translation passes -----------------------------------------------------------------

_SDK = {
    False: TypeAdapter(ResponseCreateParamsNonStreaming),
    True: TypeAdapter(ResponseCreateParamsStreaming),
}


def _drain(value: Any) -> Any:
    """Pydantic validates `Iterable[...]` lazily: walk the result so every item is validated."""
    if isinstance(value, dict):
        return {k: _drain(v) for k, v in value.items()}
    if isinstance(value, list | tuple) or type(value).__name__ == "ValidatorIterator":
        return [_drain(v) for v in value]
    return value


def assert_valid_responses(body: dict[str, Any]) -> None:
    """The SDK's request TypedDict accepts the body and drops nothing from it; our model round-trips.

    Reasoning items must carry their `id` (`ResponseReasoningItemParam` requires it): no
    placeholder is put in, so a reasoning item without one fails here as it fails at the API.
    """
    expected = json.loads(json.dumps(body))
    validated = _drain(_SDK[bool(body.get("stream"))].validate_python(expected))
    assert validated == expected
    assert ResponsesRequest.parse(body).dump() == body


def _no_extra(model: BaseModel) -> None:
    assert not model.model_extra, f"{type(model).__name__} has extra fields {model.model_extra}"
    for name in type(model).model_fields:
        value = getattr(model, name)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, BaseModel):
                _no_extra(item)


def assert_valid_anthropic(body: dict[str, Any]) -> None:
    message = anthropic.types.Message.model_validate(body)
    _no_extra(message)
    assert message.model_dump(mode="json", exclude_unset=True) == body


def translate(options: ResponsesOptions | None = None, **fields: Any) -> Translated[dict[str, Any]]:
    raw = {"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    raw.update(fields)
    out = request(MessagesRequest.parse(raw), options or ResponsesOptions())
    assert_valid_responses(out.body)
    return out


def items(out: Translated[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(out.body["input"])


def answer(output: list[dict[str, Any]], **fields: Any) -> Translated[dict[str, Any]]:
    raw: dict[str, Any] = {"id": "resp_1", "object": "response", "status": "completed"}
    raw["output"] = output
    raw.update(fields)
    out = response(ResponsesResponse.parse(raw), requested_model="claude-x")
    assert_valid_anthropic(out.body)
    return out


def codes(out: Translated[dict[str, Any]]) -> list[str]:
    return [d.code for d in out.degradations]


def snap(out: Translated[dict[str, Any]]) -> dict[str, Any]:
    return {
        "body": out.body,
        "degradations": [
            {"code": d.code, "path": d.path, "detail": d.detail} for d in out.degradations
        ],
    }


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


# -- the fixture corpus --------------------------------------------------------------------------------

REQUEST_FILES = {p.name.removesuffix(".request.json"): p for p in CORPUS.glob("*.request.json")}
REQUEST_CASES: dict[str, tuple[str, ResponsesOptions]] = {
    name: (name, ResponsesOptions()) for name in REQUEST_FILES
}
REQUEST_CASES.update(
    {
        "tool_loop_reasoning_model": (
            "tool_loop_with_reasoning",
            ResponsesOptions(
                map_model=lambda name: "gpt-5" if "sonnet" in name else name,
                max_output_tokens=16384,
                prompt_cache_key="session-42",
                reasoning_model=True,
                max_effort="medium",
                user_field="user",
            ),
        ),
        "sampling_reasoning_model": (
            "sampling_and_dropped",
            ResponsesOptions(reasoning_model=True),
        ),
        "tools_strict": ("tools_and_choice", ResponsesOptions(strict_tools=True)),
    }
)
RESPONSE_FILES = {p.name.removesuffix(".response.json"): p for p in CORPUS.glob("*.response.json")}


def test_corpus_is_large_enough() -> None:
    assert len(REQUEST_FILES) + len(RESPONSE_FILES) >= 14


@pytest.mark.parametrize("case", sorted(REQUEST_CASES))
def test_request_corpus(case: str, snapshot_json: SnapshotAssertion) -> None:
    name, options = REQUEST_CASES[case]
    raw = json.loads(REQUEST_FILES[name].read_text())
    out = request(MessagesRequest.parse(raw), options)
    assert_valid_responses(out.body)
    assert out.body["store"] is False
    assert snap(out) == snapshot_json


@pytest.mark.parametrize("name", sorted(RESPONSE_FILES))
def test_response_corpus(name: str, snapshot_json: SnapshotAssertion) -> None:
    raw = json.loads(RESPONSE_FILES[name].read_text())
    Response.model_validate(raw)  # the fixture is what the SDK expects from the real API
    out = response(ResponsesResponse.parse(raw), requested_model="claude-sonnet-4-5")
    assert_valid_anthropic(out.body)
    assert snap(out) == snapshot_json


# -- request: reasoning state round trip ----------------------------------------------------------------


def test_own_signatures_come_back_as_reasoning_items_and_foreign_ones_never_do() -> None:
    raw = json.loads(REQUEST_FILES["foreign_thinking"].read_text())
    out = request(MessagesRequest.parse(raw))
    assert not any(i["type"] == "reasoning" for i in items(out))
    assert "EqQB" not in json.dumps(out.body)
    assert "thinking_dropped" in codes(out) and "redacted_thinking_dropped" in codes(out)

    raw = json.loads(REQUEST_FILES["tool_loop_with_reasoning"].read_text())
    body = request(MessagesRequest.parse(raw)).body
    reasoning = [i for i in body["input"] if i["type"] == "reasoning"]
    assert len(reasoning) == 1  # the second is signed the old way, without its id
    assert reasoning[0]["id"] == "rs_68a1c0ffee"
    assert reasoning[0]["encrypted_content"].startswith("gAAAAABoq9Xk1f2")
    assert reasoning[0]["summary"][0]["text"].startswith("**Checking the weather**")
    assert body["include"] == ["reasoning.encrypted_content"]


def test_a_response_signature_replays_exactly() -> None:
    reply = answer(
        [
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": ENC},
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
        ]
    ).body
    assert reply["content"][0]["signature"] == SIGNATURE_PREFIX + "rs_1:" + ENC
    history = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": reply["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1"}]},
    ]
    sent = items(translate(messages=history))
    assert sent[1] == {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": ENC}
    assert sent[2]["type"] == "function_call" and sent[3]["type"] == "function_call_output"


def test_a_signature_from_before_ids_were_carried_is_read_and_left_out() -> None:
    assert read_signature("resp:" + ENC) == (None, ENC)
    assert read_signature("resp:rs_9:" + ENC) == ("rs_9", ENC)
    assert read_signature("resp:") is None and read_signature("gemini:x") is None
    thinking = {"type": "thinking", "thinking": "t", "signature": "resp:" + ENC}
    call = {"type": "tool_use", "id": "call_1", "name": "f", "input": {}}
    history = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [thinking, call]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1"}]},
    ]
    out = translate(messages=history)
    assert [i["type"] for i in items(out)] == ["message", "function_call", "function_call_output"]
    assert codes(out) == ["reasoning_id_missing"]


@pytest.mark.parametrize("signature", ["", "resp:", "EqQBCgIYAh", "RESP:abc", None])
def test_thinking_without_our_signature_is_dropped(signature: str | None) -> None:
    block: dict[str, Any] = {"type": "thinking", "thinking": "why"}
    if signature is not None:
        block["signature"] = signature
    content = [block, {"type": "text", "text": "a"}]
    out = translate(messages=[{"role": "assistant", "content": content}, _user("q")])
    assert [i["type"] for i in items(out)] == ["message", "message"]
    assert codes(out) == ["thinking_dropped"]
    assert "include" not in out.body


def test_reasoning_with_nothing_after_it_is_dropped() -> None:
    thinking = {"type": "thinking", "thinking": "t", "signature": "resp:rs_1:x"}
    out = translate(messages=[_user("q"), {"role": "assistant", "content": [thinking]}, _user("r")])
    assert [i.get("role") for i in items(out)] == ["user", "user"]
    assert codes(out) == ["reasoning_without_output_dropped", "empty_message_dropped"]
    assert "include" not in out.body


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


# -- request: messages and tools ---------------------------------------------------------------------


def test_system_becomes_instructions_and_mid_conversation_system_stays_in_place() -> None:
    content = [
        {"type": "text", "text": "before"},
        {"type": "mid_conv_system", "content": "rule"},
        {"type": "text", "text": "after"},
    ]
    out = translate(
        system=[{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
        messages=[{"role": "user", "content": content}],
    )
    assert out.body["instructions"] == "a\n\nb"
    assert items(out) == [
        {"type": "message", "role": "user", "content": "before"},
        {"type": "message", "role": "system", "content": "rule"},
        {"type": "message", "role": "user", "content": "after"},
    ]
    developer = translate(ResponsesOptions(reasoning_model=True), messages=[_user("x")], system="s")
    assert developer.body["instructions"] == "s"
    assert "instructions" not in translate(system="").body


def test_assistant_items_keep_the_block_order() -> None:
    content = [
        {"type": "text", "text": "one"},
        {"type": "tool_use", "id": "toolu_a", "name": "f", "input": {"x": "ä"}},
        {"type": "text", "text": "two"},
        {"type": "tool_use", "id": "toolu_b", "name": "g", "input": {}},
    ]
    results = [{"type": "tool_result", "tool_use_id": i} for i in ("toolu_b", "toolu_a")]
    out = translate(
        messages=[_user("q"), {"role": "assistant", "content": content}, _user_blocks(results)]
    )
    assert items(out)[1:] == [
        {"type": "message", "role": "assistant", "content": "one"},
        {"type": "function_call", "call_id": "toolu_a", "name": "f", "arguments": '{"x": "ä"}'},
        {"type": "message", "role": "assistant", "content": "two"},
        {"type": "function_call", "call_id": "toolu_b", "name": "g", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "toolu_b", "output": ""},
        {"type": "function_call_output", "call_id": "toolu_a", "output": ""},
    ]
    assert codes(out) == []


def _user_blocks(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"role": "user", "content": blocks}


def test_tool_result_images_follow_in_a_user_message_and_errors_are_marked() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    results = [
        {
            "type": "tool_result",
            "tool_use_id": "t1",
            "content": [{"type": "text", "text": "shot"}, image],
        },
        {"type": "tool_result", "tool_use_id": "t2", "content": "boom", "is_error": True},
        {"type": "text", "text": "look"},
    ]
    calls = [{"type": "tool_use", "id": t, "name": "f", "input": {}} for t in ("t1", "t2")]
    out = translate(
        messages=[_user("q"), {"role": "assistant", "content": calls}, _user_blocks(results)]
    )
    sent = items(out)
    assert sent[3]["output"].startswith("shot\n\n[1 attachment(s)")
    assert sent[4] == {
        "type": "function_call_output",
        "call_id": "t2",
        "output": "[tool error] boom",
    }
    assert sent[5]["role"] == "user"
    assert [p["type"] for p in sent[5]["content"]] == ["input_text", "input_image", "input_text"]
    assert sent[5]["content"][1] == {
        "type": "input_image",
        "image_url": f"data:image/png;base64,{PNG}",
        "detail": "auto",
    }


def test_missing_results_are_written_and_orphans_become_user_text() -> None:
    calls = [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]
    out = translate(
        messages=[
            _user("q"),
            {"role": "assistant", "content": calls},
            _user_blocks([{"type": "tool_result", "tool_use_id": "zz", "content": "late"}]),
        ]
    )
    sent = items(out)
    assert sent[2] == {
        "type": "function_call_output",
        "call_id": "t1",
        "output": "[tool result missing]",
    }
    assert sent[3] == {
        "type": "message",
        "role": "user",
        "content": "[result of tool call zz]\nlate",
    }
    assert codes(out) == ["orphan_tool_result", "tool_result_missing"]
    trailing = translate(messages=[_user("q"), {"role": "assistant", "content": calls}])
    assert items(trailing)[-1]["type"] == "function_call_output"


def test_illegal_tool_ids_are_rewritten_the_same_way_on_both_sides() -> None:
    calls = [{"type": "tool_use", "id": "a:b" * 20, "name": "f", "input": {}}]
    result = [{"type": "tool_result", "tool_use_id": "a:b" * 20, "content": "ok"}]
    out = translate(
        messages=[_user("q"), {"role": "assistant", "content": calls}, _user_blocks(result)]
    )
    sent = items(out)
    assert sent[1]["call_id"] == sent[2]["call_id"] != "a:b" * 20
    assert len(sent[1]["call_id"]) <= 40
    assert codes(out) == ["tool_id_rewritten"]


def test_final_assistant_text_is_recorded_as_unsupported_prefill() -> None:
    out = translate(messages=[_user("q"), {"role": "assistant", "content": "The answer is"}])
    assert items(out)[-1] == {"type": "message", "role": "assistant", "content": "The answer is"}
    assert codes(out) == ["assistant_prefill_unsupported"]


def test_tools_are_flat_and_not_strict_unless_asked() -> None:
    tools = [
        {"name": "f", "input_schema": {"$schema": "x", "type": "object"}},
        {"name": "g", "input_schema": {"type": "object", "properties": {}}, "strict": True},
    ]
    out = translate(tools=tools)
    assert out.body["tools"] == [
        {
            "type": "function",
            "name": "f",
            "parameters": {"type": "object", "properties": {}},
            "strict": False,
        },
        {
            "type": "function",
            "name": "g",
            "parameters": {"type": "object", "properties": {}},
            "strict": True,
        },
    ]
    strict = translate(ResponsesOptions(strict_tools=True), tools=tools[:1])
    assert strict.body["tools"][0]["strict"] is True


def test_a_custom_tool_needs_a_name() -> None:
    with pytest.raises(InvalidInput, match=r"tools\[0\]\.name"):
        translate(tools=[{"input_schema": {"type": "object"}}])


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "f"}, {"type": "function", "name": "f"}),
    ],
)
def test_tool_choice_forms(choice: dict[str, Any], expected: Any) -> None:
    tools = [{"name": "f", "input_schema": {"type": "object"}}]
    out = translate(tools=tools, tool_choice={**choice, "disable_parallel_tool_use": True})
    assert out.body["tool_choice"] == expected
    assert out.body["parallel_tool_calls"] is False


def test_tool_choice_of_a_dropped_tool_or_without_tools_is_left_out() -> None:
    tools = [
        {"name": "f", "input_schema": {"type": "object"}},
        {"type": "web_search_20250305", "name": "web_search"},
    ]
    out = translate(tools=tools, tool_choice={"type": "tool", "name": "web_search"})
    assert "tool_choice" not in out.body
    assert codes(out) == ["server_tool_dropped", "tool_choice_dropped"]
    assert "tool_choice" not in translate(tool_choice={"type": "any"}).body
    with pytest.raises(InvalidInput, match=r"tool_choice\.name"):
        translate(tools=tools[:1], tool_choice={"type": "tool"})


# -- request: limits, reasoning, the rest -------------------------------------------------------------


def test_max_tokens_is_clamped_to_the_upstream_range() -> None:
    assert translate(max_tokens=100).body["max_output_tokens"] == 100
    low = translate(max_tokens=1)
    assert low.body["max_output_tokens"] == 16 and codes(low) == ["max_tokens_clamped"]
    high = translate(ResponsesOptions(max_output_tokens=50), max_tokens=100)
    assert high.body["max_output_tokens"] == 50
    with pytest.raises(InvalidInput, match="max_tokens"):
        translate(max_tokens=-1)


def test_sampling_stop_sequences_and_top_k() -> None:
    out = translate(temperature=0.5, top_p=0.9, top_k=3, stop_sequences=["x"])
    assert (out.body["temperature"], out.body["top_p"]) == (0.5, 0.9)
    assert "stop" not in out.body and "top_k" not in out.body
    assert codes(out) == ["top_k_dropped", "stop_sequences_dropped"]
    reasoning = translate(ResponsesOptions(reasoning_model=True), temperature=0.5, top_p=0.9)
    assert "temperature" not in reasoning.body and "top_p" not in reasoning.body
    assert codes(reasoning) == ["temperature_dropped", "top_p_dropped"]
    assert reasoning.body["include"] == ["reasoning.encrypted_content"]


@pytest.mark.parametrize(
    ("budget", "effort"), [(1024, "low"), (4096, "low"), (4097, "medium"), (16385, "high")]
)
def test_thinking_budget_maps_to_effort(budget: int, effort: str) -> None:
    out = translate(thinking={"type": "enabled", "budget_tokens": budget})
    assert out.body["reasoning"] == {"effort": effort, "summary": "auto"}
    assert out.body["include"] == ["reasoning.encrypted_content"]
    assert codes(out) == ["thinking_budget_mapped"]


@pytest.mark.parametrize(
    ("effort", "top", "expected", "found"),
    [
        ("low", "high", "low", []),
        ("high", "high", "high", []),
        ("max", "high", "high", ["effort_reduced"]),
        ("xhigh", "max", "xhigh", []),
        ("high", "medium", "medium", ["effort_reduced"]),
    ],
)
def test_adaptive_thinking_uses_the_effort(
    effort: str, top: str, expected: str, found: list[str]
) -> None:
    out = translate(
        ResponsesOptions(max_effort=top),
        thinking={"type": "adaptive"},
        output_config={"effort": effort},
    )
    assert out.body["reasoning"] == {"effort": expected, "summary": "auto"}
    assert codes(out) == found


def test_reasoning_is_only_asked_for_when_wanted() -> None:
    assert "reasoning" not in translate(thinking={"type": "adaptive"}).body
    disabled = translate(thinking={"type": "disabled"}, output_config={"effort": "high"})
    assert "reasoning" not in disabled.body and "include" not in disabled.body
    assert codes(disabled) == ["effort_dropped"]
    omitted = translate(thinking={"type": "enabled", "display": "omitted"})
    assert omitted.body["reasoning"] == {"effort": "medium"}
    model = ResponsesOptions(reasoning_model=True)
    assert translate(model, output_config={"effort": "low"}).body["reasoning"] == {"effort": "low"}
    adaptive = translate(model, thinking={"type": "adaptive"}).body
    assert adaptive["reasoning"] == {"summary": "auto"}
    weird = translate(thinking={"type": "adaptive"}, output_config={"effort": "turbo"})
    assert "reasoning" not in weird.body and codes(weird) == ["effort_dropped"]


def test_output_format_becomes_text_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    out = translate(output_config={"format": {"type": "json_schema", "schema": schema}})
    assert out.body["text"] == {
        "format": {"type": "json_schema", "name": "output", "schema": schema}
    }
    other = translate(output_config={"format": {"type": "grammar", "grammar": "x"}})
    assert "text" not in other.body and codes(other) == ["output_format_dropped"]
    with pytest.raises(InvalidInput, match=r"output_config\.format"):
        translate(output_config={"format": {"type": "json_schema"}})


def test_user_id_goes_to_the_configured_field_hashed_when_too_long() -> None:
    assert translate(metadata={"user_id": "u1"}).body["safety_identifier"] == "u1"
    assert (
        translate(ResponsesOptions(user_field="user"), metadata={"user_id": "u1"}).body["user"]
        == "u1"
    )
    long = translate(metadata={"user_id": "u" * 129})
    assert len(long.body["safety_identifier"]) == 64 and codes(long) == ["user_id_hashed"]
    assert "safety_identifier" not in translate(metadata={"user_id": "u" * 128}).degradations


def test_stream_prompt_cache_key_and_store() -> None:
    out = translate(ResponsesOptions(prompt_cache_key="k", map_model=str.upper), stream=True)
    assert out.body["prompt_cache_key"] == "k" and out.body["model"] == "CLAUDE-X"
    assert out.body["stream"] is True and out.body["store"] is False
    assert "stream_options" not in out.body
    assert "stream" not in translate(stream=False).body


def test_anthropic_only_fields_are_dropped_with_a_record() -> None:
    out = translate(
        service_tier="auto", context_management={"edits": []}, container="c1", mcp_servers=[{}]
    )
    assert set(out.body) == {"model", "input", "max_output_tokens", "store"}
    assert codes(out) == [
        "service_tier_dropped",
        "context_management_dropped",
        "server_tool_dropped",
        "unsupported_field_dropped",
    ]


# -- request: nothing but InvalidInput escapes ---------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 70000) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
sources = st.sampled_from(
    [
        {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQ="},
        {"type": "base64", "media_type": "image/png", "data": PNG},
        {"type": "url", "url": "https://x"},
        {"type": "file", "file_id": "f"},
        {"type": "text", "data": "t"},
    ]
)
leaf_blocks = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            [
                "text",
                "image",
                "document",
                "tool_use",
                "thinking",
                "redacted_thinking",
                "server_tool_use",
                "web_search_tool_result",
                "mid_conv_system",
                "odd",
            ]
        )
    },
    optional={
        "text": st.text(max_size=5),
        "source": sources | json_values,
        "id": st.sampled_from(["toolu_1", "a:b", "x" * 50]),
        "tool_use_id": st.sampled_from(["toolu_1", "a:b"]),
        "name": st.text(max_size=4),
        "input": st.dictionaries(st.text(max_size=3), json_values, max_size=2),
        "thinking": st.text(max_size=5),
        "signature": st.sampled_from(
            ["", "resp:", "resp:abc", "EqQB", "resp:x:y", "resp:rs_1:abc"]
        ),
        "data": st.text(max_size=5),
        "content": st.text(max_size=4) | json_values,
        "cache_control": st.just({"type": "ephemeral"}),
    },
)
tool_uses = st.fixed_dictionaries(
    {
        "type": st.just("tool_use"),
        "id": st.sampled_from(["toolu_1", "toolu_2", "a:b"]),
        "name": st.sampled_from(["f", "g"]),
        "input": st.dictionaries(st.text(max_size=3), json_values, max_size=2),
    }
)
thinking_blocks = st.fixed_dictionaries(
    {
        "type": st.just("thinking"),
        "thinking": st.text(max_size=5),
        "signature": st.sampled_from(["", "resp:", "resp:abc", "EqQB"]),
    }
)
blocks = (
    leaf_blocks
    | tool_uses
    | thinking_blocks
    | st.fixed_dictionaries(
        {"type": st.just("tool_result"), "tool_use_id": st.sampled_from(["toolu_1", "a:b", "zz"])},
        optional={
            "content": st.text(max_size=4) | st.lists(leaf_blocks, max_size=3),
            "is_error": st.booleans(),
        },
    )
)
requests = st.fixed_dictionaries(
    {
        "model": st.text(max_size=5),
        "max_tokens": st.integers(-2, 200000),
        "messages": st.lists(
            st.fixed_dictionaries(
                {
                    "role": st.sampled_from(["user", "assistant", "user", "assistant", "system"]),
                    "content": st.text(max_size=5) | st.lists(blocks, max_size=4),
                }
            ),
            max_size=5,
        ),
    },
    optional={
        "system": st.text(max_size=5) | json_values,
        "tools": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "name": st.sampled_from(["f", "g", "web_search"]),
                    "type": st.sampled_from(
                        ["custom", "bash_20250124", "web_search_20250305", "zap"]
                    ),
                    "input_schema": st.dictionaries(
                        st.sampled_from(["type", "properties", "$schema"]), json_values, max_size=3
                    ),
                    "strict": st.booleans(),
                },
            ),
            max_size=3,
        ),
        "tool_choice": st.fixed_dictionaries(
            {"type": st.sampled_from(["auto", "any", "tool", "none", "other"])},
            optional={
                "name": st.sampled_from(["f", "web_search"]),
                "disable_parallel_tool_use": st.booleans(),
            },
        ),
        "thinking": st.fixed_dictionaries(
            {"type": st.sampled_from(["enabled", "disabled", "adaptive"])},
            optional={
                "budget_tokens": st.integers(0, 100000),
                "display": st.sampled_from(["omitted", "summarized"]),
            },
        ),
        "output_config": st.fixed_dictionaries(
            {}, optional={"effort": st.sampled_from(["low", "max", "weird"]), "format": json_values}
        ),
        "stop_sequences": st.lists(st.text(max_size=3), max_size=3),
        "metadata": st.fixed_dictionaries({"user_id": st.text(max_size=140)}),
        "temperature": st.floats(0, 1),
        "stream": st.booleans(),
    },
)


def _translate_any(data: Any, options: ResponsesOptions) -> None:
    try:
        out = request(MessagesRequest.parse(data), options)
    except InvalidInput:
        return
    assert_valid_responses(out.body)
    called: set[str] = set()
    answered: set[str] = set()
    for item in out.body["input"]:
        if item["type"] == "function_call":
            called.add(item["call_id"])
        elif item["type"] == "function_call_output":
            assert item["call_id"] in called  # every output answers an earlier call
            answered.add(item["call_id"])
    assert answered == called  # and every call is answered


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests, st.booleans())
def test_near_valid_requests_raise_only_invalid_input(data: dict[str, Any], model: bool) -> None:
    _translate_any(data, ResponsesOptions(reasoning_model=model))


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["model", "max_tokens", "messages", "tools", "system"]), json_values
    )
)
def test_arbitrary_json_raises_only_invalid_input(data: dict[str, Any]) -> None:
    _translate_any(data, ResponsesOptions())


# -- response ------------------------------------------------------------------------------------------


def test_response_envelope() -> None:
    out = answer(
        [
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "hi"}],
            }
        ]
    )
    assert out.body == {
        "id": "msg_resp_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }
    assert codes(out) == ["usage_missing"]


def test_missing_id_gives_a_stable_message_id() -> None:
    raw = {"output": [], "usage": {"input_tokens": 1, "output_tokens": 1}}
    first = response(ResponsesResponse.parse(raw), requested_model="m").body["id"]
    assert first == response(ResponsesResponse.parse(raw), requested_model="m").body["id"]
    assert first.startswith("msg_") and len(first) == 28


def test_reasoning_becomes_thinking_signed_only_when_encrypted() -> None:
    summary = [{"type": "summary_text", "text": "a"}, {"type": "summary_text", "text": "b"}]
    out = answer(
        [
            {"type": "reasoning", "id": "rs_1", "summary": summary, "encrypted_content": ENC},
            {
                "type": "reasoning",
                "id": "rs_2",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": "raw"}],
            },
            {"type": "reasoning", "id": "rs_3", "summary": []},
        ]
    )
    assert out.body["content"] == [
        {"type": "thinking", "thinking": "a\n\nb", "signature": "resp:rs_1:" + ENC},
        {"type": "thinking", "thinking": "raw", "signature": ""},
    ]


def test_function_calls_mean_tool_use_whatever_the_status() -> None:
    call = {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": '{"a": 1}'}
    out = answer([call])
    assert out.body["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}}
    ]
    incomplete = answer(
        [call], status="incomplete", incomplete_details={"reason": "max_output_tokens"}
    )
    assert incomplete.body["stop_reason"] == "tool_use"


def test_bad_arguments_are_kept_and_missing_call_ids_derived() -> None:
    out = answer([{"type": "function_call", "call_id": "", "name": "f", "arguments": "{oops"}])
    block = out.body["content"][0]
    assert block["input"] == {"_raw": "{oops"}
    assert block["id"].startswith("toolu_")
    assert codes(out) == ["tool_arguments_invalid", "tool_call_id_derived", "usage_missing"]


def test_refusal_and_unknown_parts() -> None:
    content = [{"type": "refusal", "refusal": "no"}, {"type": "audio", "data": "x"}]
    out = answer([{"type": "message", "role": "assistant", "content": content}])
    assert out.body["content"] == [{"type": "text", "text": "no"}]
    assert out.body["stop_reason"] == "refusal"
    assert codes(out) == ["output_item_dropped", "usage_missing"]


def test_unknown_incomplete_reason_is_recorded() -> None:
    out = answer([], status="incomplete", incomplete_details={"reason": "context_window"})
    assert out.body["stop_reason"] == "max_tokens"
    assert codes(out) == ["incomplete_reason_unmapped", "usage_missing"]


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        ("failed", {"code": "rate_limit_exceeded", "message": "slow down"}, ErrorKind.RATE_LIMIT),
        ("failed", {"code": "server_error", "message": "oops"}, ErrorKind.API_ERROR),
        ("failed", {"code": "invalid_image_format", "message": "bad"}, ErrorKind.INVALID_REQUEST),
        ("cancelled", None, ErrorKind.API_ERROR),
    ],
)
def test_failed_responses_raise_upstream_errors(
    status: str, error: dict[str, Any] | None, kind: ErrorKind
) -> None:
    raw = {"id": "resp_1", "status": status, "output": [], "error": error}
    with pytest.raises(UpstreamError) as caught:
        response(ResponsesResponse.parse(raw), requested_model="m")
    assert caught.value.kind is kind
    assert caught.value.message == (
        error["message"] if error else "the response has status 'cancelled'"
    )


@pytest.mark.parametrize(
    ("status", "reason", "calls", "refused", "expected"),
    [
        ("completed", None, False, False, "end_turn"),
        (None, None, False, False, "end_turn"),
        ("completed", None, True, False, "tool_use"),
        ("incomplete", "max_output_tokens", True, False, "tool_use"),
        ("incomplete", "max_output_tokens", False, False, "max_tokens"),
        ("incomplete", "content_filter", False, False, "refusal"),
        ("completed", None, False, True, "refusal"),
    ],
)
def test_stop_reason(
    status: str | None, reason: str | None, calls: bool, refused: bool, expected: str
) -> None:
    assert stop_reason(status, reason, has_calls=calls, refused=refused) == expected


def test_usage_takes_cache_reads_and_writes_out_of_input() -> None:
    found = {
        "input_tokens": 3000,
        "output_tokens": 7,
        "input_tokens_details": {"cached_tokens": 2048, "cache_write_tokens": 512},
        "output_tokens_details": {"reasoning_tokens": 5},
    }
    assert usage(found) == {
        "input_tokens": 440,
        "output_tokens": 7,
        "cache_creation_input_tokens": 512,
        "cache_read_input_tokens": 2048,
    }
    odd = {"input_tokens": 10, "output_tokens": True, "input_tokens_details": {"cached_tokens": 99}}
    assert usage(odd) == {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 10,
    }
    assert usage(None)["input_tokens"] == 0


def test_error_kind() -> None:
    assert error_kind("insufficient_quota") is ErrorKind.BILLING
    assert error_kind("image_too_large") is ErrorKind.INVALID_REQUEST
    assert error_kind(None) is ErrorKind.API_ERROR
