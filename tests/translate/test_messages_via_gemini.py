from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic.types
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from anyllm_cli.errors import InvalidInput
from anyllm_cli.models.anthropic import MessagesRequest
from anyllm_cli.models.gemini import GenerateContentRequest, GenerateContentResponse
from anyllm_cli.translate.degradation import Translated
from anyllm_cli.translate.messages_via_gemini import (
    GeminiOptions,
    count_tokens_body,
    gemini_schema,
    request,
    response,
    stop_reason,
    upstream_model,
    usage,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CORPUS = FIXTURES / "messages_via_gemini"
SUBAGENT = FIXTURES / "anthropic" / "claude_code_subagent.request.json"
SIG1 = "CtwFAdHtZ2VtaW5pLXRocmVlLWNhbGwtc2lnbmF0dXJlLTE="
SIG2 = "EpoEAdHtZ2VtaW5pLXRocmVlLXRleHQtc2lnbmF0dXJlLTI="
SIG3 = "Ct4BAdHtdGhvdWdodC1zaWduYXR1cmUtMw=="

# Keywords Gemini's parameters Schema accepts (REST names): anything else is a 400.
SCHEMA_KEYS = {
    "type", "format", "title", "description", "nullable", "enum", "items", "minItems", "maxItems",
    "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
    "pattern", "minimum", "maximum", "default", "example", "anyOf", "propertyOrdering",
}  # fmt: skip
TYPES = {"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT"}
FORMATS = {"STRING": {"enum", "date-time"}, "INTEGER": {"int32", "int64"}}
FORMATS["NUMBER"] = {"float", "double"}


def assert_gemini_schema(schema: Any, path: str = "") -> None:
    assert isinstance(schema, dict), path
    assert set(schema) <= SCHEMA_KEYS, (path, set(schema) - SCHEMA_KEYS)
    if "type" in schema:
        assert schema["type"] in TYPES, path
    if "format" in schema:
        assert schema["format"] in FORMATS.get(schema["type"], set()), path
    if "enum" in schema:
        assert schema["type"] == "STRING" and all(isinstance(v, str) for v in schema["enum"])
    if schema.get("type") == "ARRAY":
        assert "items" in schema, path
    for name, sub in (schema.get("properties") or {}).items():
        assert_gemini_schema(sub, f"{path}.{name}")
    assert set(schema.get("required", [])) <= set(schema.get("properties") or {}), path
    if "items" in schema:
        assert_gemini_schema(schema["items"], f"{path}[]")
    for n, sub in enumerate(schema.get("anyOf", [])):
        assert_gemini_schema(sub, f"{path}.anyOf[{n}]")


def assert_valid_gemini(body: dict[str, Any]) -> None:
    """Our own wire model takes the body back unchanged, and every schema is in Gemini's subset."""
    assert GenerateContentRequest.parse(body).dump() == body
    assert body["contents"], "Gemini refuses an empty contents list"
    for content in body["contents"]:
        assert content["role"] in ("user", "model") and content["parts"]
        for part in content["parts"]:
            data = set(part) - {"thought", "thoughtSignature"}
            assert len(data) == 1, part
    for tool in body.get("tools", []):
        for declaration in tool["functionDeclarations"]:
            if "parameters" in declaration:
                assert declaration["parameters"]["type"] == "OBJECT"
                assert_gemini_schema(declaration["parameters"], declaration["name"])
    schema = body.get("generationConfig", {}).get("responseSchema")
    if schema is not None:
        assert_gemini_schema(schema, "responseSchema")


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


def translate(options: GeminiOptions | None = None, **fields: Any) -> Translated[dict[str, Any]]:
    raw = {"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    raw.update(fields)
    out = request(MessagesRequest.parse(raw), options or GeminiOptions())
    assert_valid_gemini(out.body)
    return out


def answer(raw: dict[str, Any]) -> Translated[dict[str, Any]]:
    out = response(GenerateContentResponse.parse(raw), requested_model="claude-x")
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


def load(name: str) -> dict[str, Any]:
    path = SUBAGENT if name == "claude_code_subagent" else CORPUS / f"{name}.request.json"
    result: dict[str, Any] = json.loads(path.read_text())
    return result


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


# -- the fixture corpus --------------------------------------------------------------------------------

REQUEST_NAMES = sorted(p.name.removesuffix(".request.json") for p in CORPUS.glob("*.request.json"))
REQUEST_CASES: dict[str, tuple[str, GeminiOptions]] = {
    name: (name, GeminiOptions()) for name in [*REQUEST_NAMES, "claude_code_subagent"]
}
REQUEST_CASES.update(
    {
        "round_trip_without_ids_gemini_2_5": (
            "tool_round_trip_gemini3",
            GeminiOptions(map_model=lambda _: "gemini-2.5-pro", call_ids=False),
        ),
        "foreign_with_signature_fallback": (
            "foreign_signatures",
            GeminiOptions(signature_fallback="skip_thought_signature_validator"),
        ),
        "media_without_file_urls_clamped": (
            "media",
            GeminiOptions(file_urls=False, max_output_tokens=512),
        ),
    }
)
RESPONSE_NAMES = sorted(
    p.name.removesuffix(".response.json") for p in CORPUS.glob("*.response.json")
)


def test_corpus_is_large_enough() -> None:
    assert len(REQUEST_NAMES) + len(RESPONSE_NAMES) >= 16


@pytest.mark.parametrize("case", sorted(REQUEST_CASES))
def test_request_corpus(case: str, snapshot_json: SnapshotAssertion) -> None:
    name, options = REQUEST_CASES[case]
    out = request(MessagesRequest.parse(load(name)), options)
    assert_valid_gemini(out.body)
    assert snap(out) == snapshot_json


@pytest.mark.parametrize("name", RESPONSE_NAMES)
def test_response_corpus(name: str, snapshot_json: SnapshotAssertion) -> None:
    raw = json.loads((CORPUS / f"{name}.response.json").read_text())
    out = response(GenerateContentResponse.parse(raw), requested_model="claude-sonnet-4-5")
    assert_valid_anthropic(out.body)
    assert snap(out) == snapshot_json


def test_a_reply_never_puts_thinking_after_text_and_keeps_call_signatures() -> None:
    parts = [
        {"text": "Checking."},
        {"functionCall": {"id": "fc_1", "name": "f", "args": {}}, "thoughtSignature": "c2ln"},
        {"text": "", "thoughtSignature": "dGV4dA=="},
    ]
    raw = {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}]}
    out = response(GenerateContentResponse.parse(raw), requested_model="claude-sonnet-4-5")
    assert [b["type"] for b in out.body["content"]] == ["text", "tool_use"]
    assert "text_signature_dropped" in [d.code for d in out.degradations]
    call = out.body["content"][1]
    history = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": out.body["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"]}]},
    ]
    body = request(MessagesRequest.parse({"model": "g", "max_tokens": 9, "messages": history})).body
    assert body["contents"][1]["parts"][1]["thoughtSignature"] == "c2ln"
    assert body["contents"][1]["parts"][1]["functionCall"]["id"] == "fc_1"
    assert_valid_gemini(body)


def _sdk_config(body: dict[str, Any]) -> dict[str, Any]:
    """The SDK's config object mixes generationConfig with the other top-level fields."""
    config = dict(body.get("generationConfig", {}))
    for key in ("systemInstruction", "tools", "toolConfig", "safetySettings"):
        if key in body:
            config[key] = body[key]
    return config


@pytest.mark.parametrize("case", sorted(REQUEST_CASES))
def test_bodies_validate_against_the_google_genai_types(case: str) -> None:
    types = pytest.importorskip("google.genai.types")
    name, options = REQUEST_CASES[case]
    body = request(MessagesRequest.parse(load(name)), options).body
    types.GenerateContentConfig.model_validate(_sdk_config(body))
    for content in body["contents"]:
        types.Content.model_validate(content)


@pytest.mark.parametrize("name", RESPONSE_NAMES)
def test_response_fixtures_validate_against_the_google_genai_types(name: str) -> None:
    types = pytest.importorskip("google.genai.types")
    types.GenerateContentResponse.model_validate_json(
        (CORPUS / f"{name}.response.json").read_text()
    )


# -- thought signatures: the round trip ----------------------------------------------------------------


def _next_turn(gemini: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    """Gemini answers; the client replays the translated message and answers the tool calls."""
    message = answer(gemini).body
    calls = [b for b in message["content"] if b["type"] == "tool_use"]
    user: list[dict[str, Any]] = [
        {"type": "tool_result", "tool_use_id": c["id"], "content": r["text"]}
        for c, r in zip(calls, results, strict=True)
    ]
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": message["content"]},
        {"role": "user", "content": user or "more"},
    ]
    return translate(messages=messages).body


def test_gemini3_signatures_come_back_on_the_same_parts() -> None:
    raw = json.loads((CORPUS / "function_calls_gemini3.response.json").read_text())
    body = _next_turn(raw, [{"text": "22C"}, {"text": "09:14"}])
    model_parts = body["contents"][1]["parts"]
    original = raw["candidates"][0]["content"]["parts"]
    assert model_parts[0] == original[0]
    assert model_parts[1]["thoughtSignature"] == SIG1
    assert model_parts[1]["functionCall"] == {**original[1]["functionCall"], "id": "toolu_resp1_0"}
    assert "thoughtSignature" not in model_parts[2]
    responses = [p["functionResponse"] for p in body["contents"][2]["parts"]]
    assert responses == [
        {"name": "get_weather", "response": {"result": "22C"}, "id": "toolu_resp1_0"},
        {"name": "get_time", "response": {"result": "09:14"}, "id": "toolu_resp1_1"},
    ]


def test_a_signature_on_answer_text_comes_back_on_that_text() -> None:
    raw = json.loads((CORPUS / "text_with_signature.response.json").read_text())
    message = answer(raw).body
    assert message["content"][0] == {
        "type": "thinking",
        "thinking": "",
        "signature": "gemini:" + SIG2,
    }
    body = _next_turn(raw, [])
    assert body["contents"][1]["parts"] == raw["candidates"][0]["content"]["parts"]


def test_a_trailing_signature_becomes_an_empty_text_part() -> None:
    history = [
        {"type": "text", "text": "Done."},
        {"type": "thinking", "thinking": "", "signature": "gemini:abc"},
        {"type": "thinking", "thinking": "", "signature": "gemini:def"},
    ]
    out = translate(messages=[{"role": "assistant", "content": history}])
    assert out.body["contents"][0]["parts"] == [
        {"text": "Done."},
        {"text": "", "thoughtSignature": "abc"},
        {"text": "", "thoughtSignature": "def"},
    ]


def test_foreign_and_unsigned_thinking_is_dropped_and_never_forged() -> None:
    out = translate(
        messages=[
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "anthropic", "signature": "EqQBCgIY"},
                    {"type": "thinking", "thinking": "bare"},
                    {"type": "thinking", "thinking": "x", "signature": "gemini:"},
                    {"type": "text", "text": "a"},
                ],
            },
        ]
    )
    assert out.body["contents"][1]["parts"] == [{"text": "a"}]
    assert "thoughtSignature" not in json.dumps(out.body)
    assert codes(out).count("foreign_thinking_dropped") == 2
    assert "unsigned_thinking_dropped" in codes(out)


def test_signature_fallback_only_fills_the_first_unsigned_call() -> None:
    options = GeminiOptions(signature_fallback="skip_thought_signature_validator")
    calls = [
        {"type": "tool_use", "id": "t1", "name": "f", "input": {}},
        {"type": "tool_use", "id": "t2", "name": "f", "input": {}},
    ]
    out = translate(options, messages=[{"role": "assistant", "content": calls}])
    parts = out.body["contents"][0]["parts"]
    assert parts[0]["thoughtSignature"] == "skip_thought_signature_validator"
    assert "thoughtSignature" not in parts[1]
    assert "thought_signature_fallback" in codes(out)


# -- request: details ----------------------------------------------------------------------------------


def test_claude_code_subagent_schemas_pass_and_only_real_losses_are_recorded() -> None:
    raw = load("claude_code_subagent")
    out = translate(**raw)
    declarations = out.body["tools"][0]["functionDeclarations"]
    assert [d["name"] for d in declarations] == [t["name"] for t in raw["tools"]]
    dropped = [d for d in out.degradations if d.code == "schema_keywords_dropped"]
    assert {d.path for d in dropped} == {
        "tools[13].input_schema",
        "tools[17].input_schema",
        "tools[18].input_schema",
    }
    status = declarations[17]["parameters"]["properties"]["status"]
    assert status["enum"] == ["pending", "in_progress", "completed", "deleted"]
    limit = declarations[9]["parameters"]["properties"]["limit"]
    assert limit["minimum"] == 1  # exclusiveMinimum 0 on an integer
    assert out.body["systemInstruction"]["parts"][-1]["text"] == raw["messages"][1]["content"]


def test_model_goes_in_the_url() -> None:
    req = MessagesRequest.parse(load("media"))
    options = GeminiOptions(map_model=lambda name: "gemini-2.5-flash")
    assert upstream_model(req, options) == "gemini-2.5-flash"
    assert "model" not in request(req, options).body


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, {"mode": "AUTO"}),
        ({"type": "any"}, {"mode": "ANY"}),
        ({"type": "none"}, {"mode": "NONE"}),
        ({"type": "tool", "name": "f"}, {"mode": "ANY", "allowedFunctionNames": ["f"]}),
    ],
)
def test_tool_choice_forms(choice: dict[str, Any], expected: dict[str, Any]) -> None:
    tools = [{"name": "f", "input_schema": {"type": "object", "properties": {"a": {}}}}]
    out = translate(tools=tools, tool_choice=choice)
    assert out.body["toolConfig"] == {"functionCallingConfig": expected}


def test_tool_choice_of_a_missing_tool_is_dropped_and_a_nameless_one_invalid() -> None:
    tools = [{"name": "f", "input_schema": {"type": "object"}}]
    out = translate(tools=tools, tool_choice={"type": "tool", "name": "g"})
    assert "toolConfig" not in out.body and "tool_choice_dropped" in codes(out)
    assert out.body["tools"] == [{"functionDeclarations": [{"name": "f"}]}]
    with pytest.raises(InvalidInput, match=r"tool_choice\.name"):
        translate(tools=tools, tool_choice={"type": "tool"})


@pytest.mark.parametrize(
    ("thinking", "effort", "model", "expected", "found"),
    [
        ({"type": "enabled", "budget_tokens": 2048}, None, "g", {"thinkingBudget": 2048}, []),
        ({"type": "adaptive"}, None, "gemini-3-pro", {}, []),
        ({"type": "adaptive"}, "low", "gemini-3-pro", {"thinkingLevel": "LOW"}, []),
        ({"type": "adaptive"}, "medium", "gemini-3", {"thinkingLevel": "HIGH"}, ["effort_reduced"]),
        ({"type": "adaptive"}, "max", "gemini-2.5-pro", {"thinkingBudget": 24576}, []),
        ({"type": "adaptive"}, "odd", "gemini-3", {}, ["effort_dropped"]),
    ],
)
def test_thinking_controls(
    thinking: dict[str, Any],
    effort: str | None,
    model: str,
    expected: dict[str, Any],
    found: list[str],
) -> None:
    fields: dict[str, Any] = {"thinking": thinking}
    if effort:
        fields["output_config"] = {"effort": effort}
    out = translate(GeminiOptions(map_model=lambda _: model), **fields)
    config = out.body["generationConfig"]["thinkingConfig"]
    assert config == {**expected, "includeThoughts": True}
    assert codes(out) == found


def test_no_thinking_config_without_thinking_and_display_omitted_hides_thoughts() -> None:
    out = translate(thinking={"type": "disabled"}, output_config={"effort": "low"})
    assert "thinkingConfig" not in out.body["generationConfig"]
    assert codes(out) == ["effort_dropped"]
    hidden = translate(thinking={"type": "enabled", "budget_tokens": 1024, "display": "omitted"})
    assert hidden.body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 1024}


def test_sampling_limits_and_stop_sequences() -> None:
    out = translate(
        GeminiOptions(max_output_tokens=50),
        temperature=0.2,
        top_p=0.5,
        top_k=3,
        stop_sequences=list("abcdefg"),
    )
    assert out.body["generationConfig"] == {
        "maxOutputTokens": 50,
        "temperature": 0.2,
        "topP": 0.5,
        "topK": 3,
        "stopSequences": list("abcde"),
    }
    assert codes(out) == ["max_tokens_clamped", "stop_sequences_truncated"]
    with pytest.raises(InvalidInput, match="max_tokens"):
        translate(max_tokens=-1)


def test_tool_results_are_paired_ordered_and_repaired() -> None:
    out = translate(**load("tool_result_repairs"))
    contents = out.body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    parts = contents[2]["parts"]
    names = [p["functionResponse"]["id"] for p in parts if "functionResponse" in p]
    assert names == ["toolu_a", "toolu_b", "toolu_c"]
    assert parts[1]["functionResponse"]["response"] == {"error": "tool result missing"}
    assert parts[2]["functionResponse"]["response"] == {"error": "city not found"}
    assert any("inlineData" in p for p in parts)
    assert {"tool_result_missing", "orphan_tool_result", "tool_result_attachment_moved"} <= set(
        codes(out)
    )


def test_a_call_left_unanswered_at_the_end_gets_an_answer() -> None:
    call = {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}
    out = translate(
        messages=[{"role": "user", "content": "x"}, {"role": "assistant", "content": [call]}]
    )
    assert out.body["contents"][-1] == {
        "role": "user",
        "parts": [
            {
                "functionResponse": {
                    "name": "f",
                    "response": {"error": "tool result missing"},
                    "id": "t1",
                }
            }
        ],
    }


def test_schema_sanitiser_cases() -> None:
    schema = {
        "type": "object",
        "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
        "properties": {
            "a": {"type": ["string", "null"], "format": "uri"},
            "b": {"$ref": "#/$defs/Node"},
            "c": {"anyOf": [{"type": "integer", "enum": [1, 2]}, {"type": "null"}]},
            "d": {"type": "array"},
            "e": {"type": ["string", "integer"]},
            "f": {"allOf": [{"properties": {"x": {"type": "string"}}}, {"required": ["x"]}]},
            "g": {"type": "number", "exclusiveMaximum": 1.5},
            "h": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "required": ["a", "missing"],
    }
    out, dropped = gemini_schema(schema)
    assert_gemini_schema(out)
    props = out["properties"]
    assert props["a"] == {"type": "STRING", "nullable": True}
    assert props["b"]["properties"]["next"] == {"type": "OBJECT"}  # the cycle is cut
    assert props["c"] == {
        "type": "INTEGER",
        "description": "Allowed values: 1, 2.",
        "nullable": True,
    }
    assert props["d"]["items"] == {"type": "STRING"}
    assert props["e"] == {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]}
    assert props["f"]["properties"] == {"x": {"type": "STRING"}}
    assert props["g"] == {"type": "NUMBER", "maximum": 1.5, "description": "Must be less than 1.5."}
    assert props["h"] == {"type": "OBJECT"}
    assert out["required"] == ["a"]
    assert "format uri" in dropped and "additionalProperties" in dropped


# -- response ------------------------------------------------------------------------------------------


def test_prompt_block_is_a_refusal_that_says_why() -> None:
    raw = json.loads((CORPUS / "prompt_blocked.response.json").read_text())
    body = answer(raw).body
    assert body["stop_reason"] == "refusal"
    assert "PROHIBITED_CONTENT" in body["content"][0]["text"]


def test_usage_takes_the_cache_out_of_input_and_adds_thoughts_to_output() -> None:
    meta = {
        "promptTokenCount": 100,
        "cachedContentTokenCount": 60,
        "candidatesTokenCount": 5,
        "thoughtsTokenCount": 7,
    }
    assert usage(meta) == {
        "input_tokens": 40,
        "output_tokens": 12,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 60,
    }
    assert usage(None)["input_tokens"] == 0


@pytest.mark.parametrize(
    ("finish", "calls", "expected"),
    [
        ("STOP", False, "end_turn"),
        ("STOP", True, "tool_use"),
        (None, True, "tool_use"),
        ("MAX_TOKENS", True, "max_tokens"),
        ("SAFETY", False, "refusal"),
        ("RECITATION", False, "refusal"),
        ("PROHIBITED_CONTENT", False, "refusal"),
        ("BLOCKLIST", False, "refusal"),
        ("SPII", False, "refusal"),
        ("MALFORMED_FUNCTION_CALL", False, "end_turn"),
    ],
)
def test_stop_reason(finish: str | None, calls: bool, expected: str) -> None:
    assert stop_reason(finish, calls) == expected


def test_missing_response_id_gives_a_stable_message_id() -> None:
    raw = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "STOP"}]}
    first, second = answer(raw).body, answer(raw).body
    assert first["id"] == second["id"] and first["id"].startswith("msg_")
    assert codes(answer(raw)) == ["usage_missing"]


# -- nothing but InvalidInput escapes ------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 70000) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
SCHEMA_WORDS = st.sampled_from(
    ["type", "properties", "items", "anyOf", "oneOf", "allOf", "$ref", "$defs", "enum", "const",
     "format", "required", "exclusiveMinimum", "minimum", "nullable", "additionalProperties"]
)  # fmt: skip
schemas = st.recursive(
    st.sampled_from(
        ["string", "integer", ["number", "null"], "null", "#/$defs/A", "date-time", 0, None]
    ),
    lambda inner: (
        st.dictionaries(SCHEMA_WORDS | st.text(max_size=3), inner, max_size=4)
        | st.lists(inner, max_size=3)
    ),
    max_leaves=12,
)
blocks = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            [
                "text",
                "image",
                "document",
                "tool_use",
                "tool_result",
                "thinking",
                "redacted_thinking",
                "server_tool_use",
                "mid_conv_system",
                "odd",
            ]
        )
    },
    optional={
        "text": st.text(max_size=4),
        "id": st.sampled_from(["t1", "t2"]),
        "tool_use_id": st.sampled_from(["t1", "t2", "t3"]),
        "name": st.sampled_from(["f", "g"]),
        "input": st.dictionaries(st.text(max_size=3), json_values, max_size=2),
        "thinking": st.text(max_size=4),
        "signature": st.sampled_from(["", "gemini:", "gemini:s1", "Eq", None]),
        "content": st.text(max_size=4) | json_values,
        "is_error": st.booleans(),
        "data": st.text(max_size=3),
        "source": json_values
        | st.sampled_from(
            [
                {"type": "url", "url": "https://x/a.pdf"},
                {"type": "base64", "media_type": "text/plain", "data": "aGk="},
            ]
        ),
    },
)
requests = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["m", "gemini-2.0-flash"]),
        "max_tokens": st.integers(-1, 99999),
        "messages": st.lists(
            st.fixed_dictionaries(
                {
                    "role": st.sampled_from(["user", "assistant", "system"]),
                    "content": st.text(max_size=4) | st.lists(blocks, max_size=4),
                }
            ),
            max_size=5,
        ),
    },
    optional={
        "tools": st.lists(
            st.fixed_dictionaries(
                {"name": st.sampled_from(["f", "g", "9x"])},
                optional={
                    "input_schema": schemas,
                    "type": st.sampled_from(["custom", "bash_1", "zz"]),
                },
            ),
            max_size=3,
        ),
        "tool_choice": st.fixed_dictionaries(
            {"type": st.sampled_from(["auto", "any", "tool", "none"])},
            optional={"name": st.sampled_from(["f", "z"])},
        ),
        "thinking": st.fixed_dictionaries(
            {"type": st.sampled_from(["enabled", "adaptive", "disabled"])},
            optional={"budget_tokens": st.integers(0, 9999)},
        ),
        "output_config": st.fixed_dictionaries(
            {}, optional={"effort": st.sampled_from(["low", "x"]), "format": json_values}
        ),
        "stop_sequences": st.lists(st.text(max_size=2), max_size=7),
    },
)


def _translate_any(data: Any) -> None:
    try:
        out = request(MessagesRequest.parse(data))
    except InvalidInput:
        return
    assert GenerateContentRequest.parse(out.body).dump() == out.body
    for tool in out.body.get("tools", []):
        for declaration in tool["functionDeclarations"]:
            if "parameters" in declaration:
                assert_gemini_schema(declaration["parameters"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests)
def test_near_valid_requests_raise_only_invalid_input(data: dict[str, Any]) -> None:
    _translate_any(data)


@settings(max_examples=200, deadline=None)
@given(schemas)
def test_any_schema_sanitises_into_the_subset(schema: Any) -> None:
    out, _ = gemini_schema(schema if isinstance(schema, dict) else {"items": schema})
    assert_gemini_schema(out)


PART_KEYS = st.sampled_from(["text", "thought", "thoughtSignature", "functionCall", "inlineData"])
parts = st.dictionaries(PART_KEYS, json_values, max_size=3) | st.sampled_from(
    [
        {"functionCall": {"name": "f", "args": {"a": 1}, "id": "x y"}, "thoughtSignature": "s"},
        {"text": "t", "thought": True},
        {"text": "", "thoughtSignature": "s"},
    ]
)
responses = st.fixed_dictionaries(
    {},
    optional={
        "candidates": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "content": st.fixed_dictionaries({"parts": st.lists(parts, max_size=4)})
                    | json_values,
                    "finishReason": st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY", "ZZ"])
                    | json_values,
                },
            ),
            max_size=2,
        )
        | json_values,
        "promptFeedback": st.fixed_dictionaries({"blockReason": st.sampled_from(["SAFETY", ""])})
        | json_values,
        "usageMetadata": st.dictionaries(
            st.sampled_from(["promptTokenCount", "cachedContentTokenCount", "thoughtsTokenCount"]),
            json_values,
        ),
        "responseId": json_values,
    },
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(responses)
def test_arbitrary_responses_raise_only_invalid_input(data: dict[str, Any]) -> None:
    try:
        parsed = GenerateContentResponse.parse(data)
    except InvalidInput:
        return
    assert_valid_anthropic(response(parsed, requested_model="m").body)


def test_count_tokens_bodies_follow_each_api() -> None:
    content = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "systemInstruction": {"parts": [{"text": "s"}]},
        "tools": [{"functionDeclarations": [{"name": "f"}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
        "generationConfig": {"maxOutputTokens": 1},
    }
    vertex = count_tokens_body(content, "gemini-3-pro", vertex=True)
    assert set(vertex) == {"contents", "systemInstruction", "tools"}
    gemini = count_tokens_body(content, "models/gemini-3-pro", vertex=False)
    assert set(gemini) == {"generateContentRequest"}
    inner = gemini["generateContentRequest"]
    assert inner["model"] == "models/gemini-3-pro" and "generationConfig" not in inner
    assert inner["toolConfig"] == content["toolConfig"]
