from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import types
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from anyllm_cli.errors import InvalidInput
from anyllm_cli.models.anthropic import MessagesResponse
from anyllm_cli.models.gemini import GenerateContentRequest
from anyllm_cli.translate.degradation import Translated
from anyllm_cli.translate.gemini_via_messages import (
    GeminiClientOptions,
    finish_reason,
    parse_request,
    request,
    response,
    usage_metadata,
)
from tests.translate.test_chat_via_messages import assert_valid_anthropic

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gemini_via_messages"
REQUESTS = sorted(FIXTURES.glob("*.request.json"))
VALID_REQUESTS = [p for p in REQUESTS if not p.name.startswith("invalid_")]
INVALID_REQUESTS = [p for p in REQUESTS if p.name.startswith("invalid_")]
RESPONSES = sorted(FIXTURES.glob("*.response.json"))
MODEL = "gemini-2.5-pro"


def _stem(path: Path) -> str:
    return path.name.split(".")[0]


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


def _snap(out: Translated[dict[str, Any]]) -> dict[str, Any]:
    return {"body": out.body, "degradations": [dataclasses.asdict(d) for d in out.degradations]}


def translate(body: dict[str, Any], **options: Any) -> Translated[dict[str, Any]]:
    out = request(
        parse_request(body),
        model=f"models/{MODEL}",
        stream=False,
        options=GeminiClientOptions(**options),
    )
    thinking = out.body.get("thinking")
    if thinking is not None and thinking["type"] == "disabled":  # the rules check enabled only
        assert_valid_anthropic({k: v for k, v in out.body.items() if k != "thinking"})
    else:
        assert_valid_anthropic(out.body)
    return out


def codes(out: Translated[dict[str, Any]]) -> list[str]:
    return [d.code for d in out.degradations]


def user(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "parts": list(parts)}


def model(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "model", "parts": list(parts)}


def sdk_response(body: dict[str, Any]) -> types.GenerateContentResponse:
    return types.GenerateContentResponse.model_validate(body)


# -- fixtures ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", VALID_REQUESTS, ids=_stem)
def test_request_fixture(path: Path, snapshot_json: SnapshotAssertion) -> None:
    out = translate(json.loads(path.read_text()), map_model=lambda m: f"claude-for-{m}")
    assert out.body["model"] == f"claude-for-{MODEL}"
    assert _snap(out) == snapshot_json


@pytest.mark.parametrize("path", INVALID_REQUESTS, ids=_stem)
def test_invalid_request_fixture(path: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        translate(json.loads(path.read_text()))
    assert caught.value.path == "generationConfig.candidateCount"


@pytest.mark.parametrize("path", RESPONSES, ids=_stem)
def test_response_fixture(path: Path, snapshot_json: SnapshotAssertion) -> None:
    resp = MessagesResponse.parse(path.read_bytes())
    out = response(resp, model=MODEL)
    parsed = sdk_response(out.body)
    texts = [b.text for b in resp.content if b.type == "text" and b.text]  # type: ignore[union-attr]
    assert (parsed.text or "") == "".join(texts)
    calls = [(c.id, c.name, c.args) for c in parsed.function_calls or []]
    uses = [b for b in resp.content if b.type == "tool_use"]
    assert calls == [(b.id, b.name, b.input) for b in uses]  # type: ignore[union-attr]
    assert parsed.response_id == resp.id and parsed.model_version == MODEL
    assert _snap(out) == snapshot_json


# -- request details ---------------------------------------------------------------------------------


def test_tool_loop_keeps_signatures_and_pairs_results_by_name_and_order() -> None:
    out = translate(json.loads((FIXTURES / "tool_loop_with_thoughts.request.json").read_text()))
    assistant = out.body["messages"][1]["content"]
    assert assistant[0] == {
        "type": "thinking",
        "thinking": "**Planning** two lookups",
        "signature": "gemini:" + base64.b64encode(b"thought-sig").decode(),
    }
    assert assistant[1]["signature"] == "gemini:" + base64.b64encode(b"call-sig").decode()
    assert [b["id"] for b in assistant[2:]] == ["toolu_0", "toolu_1"]
    results = out.body["messages"][2]["content"]
    assert [(r["tool_use_id"], r.get("is_error")) for r in results] == [
        ("toolu_0", None),
        ("toolu_1", True),
    ]
    assert results[1]["content"] == [{"type": "text", "text": "rate limited"}]
    assert out.body["messages"][4]["content"][0]["content"][0]["text"] == '{"lines": 2}'
    # the turn of the current loop (read_file) has no signed thought: Anthropic would refuse it
    assert "thinking" not in out.body and "thinking_disabled" in codes(out)
    assert out.body["temperature"] == 0 and "top_p" not in out.body


def test_responses_match_by_id_before_name() -> None:
    body = {
        "contents": [
            user({"text": "go"}),
            model(
                {"functionCall": {"name": "f", "args": {"n": 1}, "id": "c1"}},
                {"functionCall": {"name": "f", "args": {"n": 2}, "id": "c2"}},
            ),
            user(
                {"text": "both done"},
                {"functionResponse": {"name": "f", "id": "c2", "response": {"result": "two"}}},
                {"functionResponse": {"name": "f", "response": {"output": "one"}}},
            ),
        ]
    }
    blocks = translate(body).body["messages"][2]["content"]
    assert [(b["type"], b.get("tool_use_id")) for b in blocks] == [
        ("tool_result", "c1"),
        ("tool_result", "c2"),
        ("text", None),
    ]
    assert blocks[0]["content"][0]["text"] == "one"


def test_missing_and_orphan_results_are_repaired() -> None:
    out = translate(json.loads((FIXTURES / "pairing_repairs.request.json").read_text()))
    messages = out.body["messages"]
    assert messages[0] == {"role": "user", "content": [{"type": "text", "text": "."}]}
    results = [b for b in messages[2]["content"] if b["type"] == "tool_result"]
    assert [r.get("is_error") for r in results] == [None, True]
    assert {"user_turn_inserted", "tool_result_missing", "orphan_tool_result"} <= set(codes(out))
    assert "unsigned_thinking_dropped" in codes(out)
    assert "thinking_disabled" in codes(out)  # a prefill ends the conversation
    assert messages[-1]["content"][-1]["text"] == "Let me think"


def test_a_final_call_without_a_response_gets_an_error_result() -> None:
    body = {"contents": [user({"text": "hi"}), model({"functionCall": {"name": "f"}})]}
    messages = translate(body).body["messages"]
    assert messages[-1]["role"] == "user"
    assert messages[-1]["content"][0]["tool_use_id"] == "toolu_0"


def test_signature_on_a_text_part_precedes_it_and_on_an_empty_part_signs_the_thought() -> None:
    body = {
        "contents": [
            user({"text": "hi"}),
            model(
                {"text": "a", "thought": True},
                {"text": "b", "thought": True},
                {"text": "", "thoughtSignature": "czE="},
                {"text": "answer", "thoughtSignature": "czI="},
            ),
            user({"text": "more"}),
        ]
    }
    assert translate(body).body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "ab", "signature": "gemini:czE="},
        {"type": "thinking", "thinking": "", "signature": "gemini:czI="},
        {"type": "text", "text": "answer"},
    ]


@pytest.mark.parametrize(
    ("config", "expected", "code"),
    [
        ({"thinkingBudget": 0}, {"type": "disabled"}, None),
        (
            {"thinkingBudget": 300},
            {"type": "enabled", "budget_tokens": 1024},
            "thinking_budget_raised",
        ),
        (
            {"thinkingBudget": -1},
            {"type": "enabled", "budget_tokens": 8192},
            "thinking_budget_chosen",
        ),
        ({"thinkingLevel": "LOW"}, {"type": "enabled", "budget_tokens": 2048}, None),
        ({"thinkingLevel": "MINIMAL"}, {"type": "disabled"}, None),
        ({"includeThoughts": True}, None, "thinking_not_enabled"),
    ],
)
def test_thinking_config(
    config: dict[str, Any], expected: dict[str, Any] | None, code: str | None
) -> None:
    body = {
        "contents": [user({"text": "hi"})],
        "generationConfig": {"thinkingConfig": config, "maxOutputTokens": 500, "topK": 3},
    }
    out = translate(body)
    assert out.body.get("thinking") == expected
    if expected and expected["type"] == "enabled":
        assert out.body["max_tokens"] == expected["budget_tokens"] + 4096
        assert "top_k" not in out.body
        assert "max_tokens_raised" in codes(out)
    if code:
        assert code in codes(out)


def test_tool_choice_modes() -> None:
    def choice(config: dict[str, Any]) -> Any:
        body = {
            "contents": [user({"text": "hi"})],
            "tools": [{"functionDeclarations": [{"name": "f"}, {"name": "g"}]}],
            "toolConfig": {"functionCallingConfig": config},
        }
        return translate(body).body.get("tool_choice")

    assert choice({"mode": "AUTO"}) == {"type": "auto"}
    assert choice({"mode": "ANY"}) == {"type": "any"}
    assert choice({"mode": "NONE"}) == {"type": "none"}
    assert choice({"mode": "ANY", "allowedFunctionNames": ["g"]}) == {"type": "tool", "name": "g"}
    with pytest.raises(InvalidInput):
        choice({"mode": "SOMETIMES"})


def test_schemas_become_json_schema() -> None:
    body = json.loads((FIXTURES / "structured_output_and_dropped.request.json").read_text())
    out = translate(body)
    schema = out.body["output_config"]["format"]["schema"]
    item = schema["properties"]["colours"]["items"]
    assert item["properties"]["hex"] == {"type": ["string", "null"]}
    assert schema["additionalProperties"] is False and item["additionalProperties"] is False
    assert {
        "safety_settings_dropped",
        "cached_content_dropped",
        "labels_dropped",
        "parameter_dropped",
    } <= set(codes(out))


def test_json_without_a_schema_is_asked_for_in_the_system_prompt() -> None:
    body = {
        "contents": [user({"text": "hi"})],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"responseMimeType": "application/json"},
    }
    out = translate(body)
    assert out.body["system"].startswith("Be brief.\n\nRespond with a single valid JSON object")
    assert codes(out) == ["json_object_emulated"]


def test_stream_flag_and_default_max_tokens() -> None:
    req = GenerateContentRequest.parse({"contents": [user({"text": "hi"})]})
    out = request(
        req, model="gemini-x", stream=True, options=GeminiClientOptions(default_max_tokens=77)
    )
    assert out.body == {
        "model": "gemini-x",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "max_tokens": 77,
        "stream": True,
    }
    assert out.degradations == []


@pytest.mark.parametrize(
    "body",
    [
        {"contents": []},
        {"contents": [{"role": "system", "parts": [{"text": "x"}]}]},
        {"contents": [user({"inlineData": {"mimeType": "text/plain", "data": "%%%"}})]},
        {"contents": [user({"text": "x"})], "generationConfig": {"maxOutputTokens": -1}},
        {
            "contents": [user({"text": "x"})],
            "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "STRING"}}]}],
        },
    ],
)
def test_bad_requests_raise_invalid_input(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        translate(body)


# -- response details --------------------------------------------------------------------------------


def _message(content: list[dict[str, Any]], **extra: Any) -> MessagesResponse:
    base = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": content,
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 5, "output_tokens": 2},
    }
    return MessagesResponse.parse({**base, **extra})


def test_response_signatures_ours_kept_foreign_omitted() -> None:
    resp = _message(
        [
            {"type": "thinking", "thinking": "t", "signature": "EqQBforeign"},
            {"type": "thinking", "thinking": "", "signature": "gemini:czE="},
            {"type": "thinking", "thinking": "u", "signature": "gemini:czI="},
            {"type": "text", "text": "hi"},
            {"type": "thinking", "thinking": "", "signature": "gemini:czM="},
        ]
    )
    out = response(resp, model=MODEL)
    assert out.body["candidates"][0]["content"]["parts"] == [
        {"text": "t", "thought": True},
        {"text": "", "thoughtSignature": "czE="},
        {"text": "u", "thought": True, "thoughtSignature": "czI="},
        {"text": "hi"},
        {"text": "", "thoughtSignature": "czM="},
    ]
    assert codes(out) == ["thinking_signature_dropped"]
    assert sdk_response(out.body).text == "hi"


def test_finish_reasons_and_usage() -> None:
    assert finish_reason("refusal") == ("SAFETY", None)
    assert finish_reason("max_tokens") == ("MAX_TOKENS", None)
    assert finish_reason("pause_turn") == ("STOP", "pause_turn_as_stop")
    assert finish_reason("new_reason") == ("STOP", "stop_reason_unmapped")
    usage = {
        "input_tokens": 10,
        "cache_read_input_tokens": 5,
        "cache_creation_input_tokens": 2,
        "output_tokens": 30,
        "output_tokens_details": {"thinking_tokens": 12},
    }
    meta = usage_metadata(usage)
    assert meta == {
        "promptTokenCount": 17,
        "candidatesTokenCount": 18,
        "totalTokenCount": 47,
        "cachedContentTokenCount": 5,
        "thoughtsTokenCount": 12,
    }
    parsed = types.GenerateContentResponseUsageMetadata.model_validate(meta)
    assert parsed.thoughts_token_count == 12


def test_empty_content_has_no_parts() -> None:
    out = response(_message([], stop_reason="max_tokens"), model=MODEL)
    assert out.body["candidates"][0] == {
        "content": {"role": "model"},
        "finishReason": "MAX_TOKENS",
        "index": 0,
    }
    assert sdk_response(out.body).text is None


# -- the google-genai SDK end to end -----------------------------------------------------------------


def test_google_genai_client_round_trip_through_both_translators() -> None:
    """The real SDK sends its body; we translate it, answer as Anthropic, translate back."""
    seen: list[dict[str, Any]] = []
    replies = [json.loads((FIXTURES / "gemini_signatures_and_calls.response.json").read_text())]

    def handler(http: httpx.Request) -> httpx.Response:
        model_name = http.url.path.split("/models/")[1].split(":")[0]
        out = translate(json.loads(http.content)).body
        seen.append(out)
        reply = response(MessagesResponse.parse(replies[0]), model=model_name)
        return httpx.Response(200, json=reply.body)

    transport = httpx.Client(transport=httpx.MockTransport(handler))
    options = types.HttpOptions(base_url="http://gemini.test", httpx_client=transport)
    client = genai.Client(api_key="k", http_options=options)
    config = types.GenerateContentConfig(
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration(name="get_weather")])],
    )
    first = client.models.generate_content(model=MODEL, contents="Weather?", config=config)
    assert first.text == "Checking both."
    assert [c.args for c in first.function_calls or []] == [{"city": "Paris"}, {"city": "Rome"}]
    assert first.usage_metadata is not None and first.usage_metadata.thoughts_token_count == 40
    history = [
        types.Content(role="user", parts=[types.Part.from_text(text="Weather?")]),
        first.candidates[0].content if first.candidates else None,
        types.Content(
            role="user",
            parts=[
                types.Part.from_function_response(name="get_weather", response={"output": "22C"}),
                types.Part.from_function_response(name="get_weather", response={"output": "25C"}),
            ],
        ),
    ]
    client.models.generate_content(model=MODEL, contents=history, config=config)  # type: ignore[arg-type]
    assistant, results = seen[1]["messages"][1:3]
    original = replies[0]["content"]
    assert assistant["content"] == original  # every block and signature came back as it was
    assert [r["tool_use_id"] for r in results["content"]] == ["toolu_gem_abc_0", "toolu_gem_abc_1"]


# -- properties --------------------------------------------------------------------------------------

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_KEYS = st.sampled_from(
    [
        "contents", "role", "parts", "text", "thought", "thoughtSignature", "inlineData",
        "mimeType", "data", "fileData", "fileUri", "functionCall", "functionResponse", "name",
        "args", "id", "response", "output", "error", "tools", "functionDeclarations",
        "parameters", "parametersJsonSchema", "type", "properties", "items", "nullable",
        "toolConfig", "functionCallingConfig", "mode", "allowedFunctionNames",
        "generationConfig", "thinkingConfig", "thinkingBudget", "thinkingLevel",
        "responseMimeType", "responseSchema", "maxOutputTokens", "systemInstruction",
    ]
)  # fmt: skip
_LEAF = st.one_of(
    _JSON,
    st.sampled_from(["user", "model", "OBJECT", "STRING", "ANY", "application/json", "image/png"]),
)
_NODE = st.recursive(
    _LEAF,
    lambda inner: st.dictionaries(_KEYS, inner, max_size=4) | st.lists(inner, max_size=3),
    max_leaves=14,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_KEYS, _NODE, max_size=5) | _JSON)
def test_arbitrary_json_raises_only_invalid_input(body: Any) -> None:
    try:
        req = parse_request(body)
        out = request(req, model="m", stream=False)
    except InvalidInput:
        return
    json.dumps(out.body)
