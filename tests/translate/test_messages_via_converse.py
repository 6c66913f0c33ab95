from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic.types
import pytest
from botocore.session import get_session
from botocore.validate import ParamValidator
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from anyllm_cli.errors import ErrorKind, InvalidInput
from anyllm_cli.models.anthropic import MessagesRequest
from anyllm_cli.translate.degradation import Translated
from anyllm_cli.translate.messages_via_converse import (
    ConverseOptions,
    bedrock_error,
    request,
    response,
)

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "messages_via_converse"
REQUESTS = sorted(p.name.removesuffix(".request.json") for p in CORPUS.glob("*.request.json"))
RESPONSES = sorted(p.name.removesuffix(".response.json") for p in CORPUS.glob("*.response.json"))
SERVICE = get_session().get_service_model("bedrock-runtime")
CONVERSE_INPUT = SERVICE.operation_model("Converse").input_shape
CONVERSE_OUTPUT = SERVICE.operation_model("Converse").output_shape


def assert_valid_converse(body: dict[str, Any]) -> None:
    report = ParamValidator().validate(body, CONVERSE_INPUT)
    assert not report.has_errors(), report.generate_report()


def assert_valid_anthropic(body: dict[str, Any]) -> None:
    message = anthropic.types.Message.model_validate(body)
    assert message.model_dump(mode="json", exclude_unset=True) == body


def translate(options: ConverseOptions | None = None, **fields: Any) -> Translated[dict[str, Any]]:
    raw = {
        "model": "anthropic.claude-x",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    }
    raw.update(fields)
    out = request(MessagesRequest.parse(raw), options or ConverseOptions())
    assert_valid_converse(out.body)
    return out


def codes(out: Translated[dict[str, Any]]) -> list[str]:
    return [d.code for d in out.degradations]


def snap(out: Translated[dict[str, Any]]) -> dict[str, Any]:
    return {"body": out.body, "degradations": [str(d) for d in out.degradations]}


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("name", REQUESTS)
def test_request_corpus(name: str, snapshot_json: SnapshotAssertion) -> None:
    raw = json.loads((CORPUS / f"{name}.request.json").read_text())
    out = request(MessagesRequest.parse(raw))
    assert_valid_converse(out.body)
    assert snap(out) == snapshot_json


@pytest.mark.parametrize("name", RESPONSES)
def test_response_corpus(name: str, snapshot_json: SnapshotAssertion) -> None:
    raw = json.loads((CORPUS / f"{name}.response.json").read_text())
    out = response(raw, requested_model="claude-x")
    assert_valid_anthropic(out.body)
    assert snap(out) == snapshot_json


def test_claude_history_keeps_signed_thinking_and_sends_reasoning_fields() -> None:
    raw = json.loads((CORPUS / "tool_loop_with_thinking.request.json").read_text())
    out = request(
        MessagesRequest.parse(raw),
        ConverseOptions(map_model=lambda m: "us.anthropic.claude-x", anthropic_beta=("b-1",)),
    )
    body = out.body
    assert body["modelId"] == "us.anthropic.claude-x"
    assert body["messages"][1]["content"][0] == {
        "reasoningContent": {
            "reasoningText": {"text": "Call the tool.", "signature": "EqQBCkYIBBgC"}
        }
    }
    assert body["additionalModelRequestFields"] == {
        "top_k": 40,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "anthropic_beta": ["b-1"],
    }
    assert body["system"] == [{"text": "You are terse."}, {"cachePoint": {"type": "default"}}]
    assert body["toolConfig"]["toolChoice"] == {"auto": {}}
    assert "server_tool_dropped" in codes(out)
    assert "parallel_tool_use_unsupported" in codes(out)


def test_other_models_lose_claude_only_fields_and_say_so() -> None:
    raw = json.loads((CORPUS / "lossy_other_model.request.json").read_text())
    out = request(MessagesRequest.parse(raw), ConverseOptions(max_output_tokens=4096))
    assert "additionalModelRequestFields" not in out.body
    assert out.body["inferenceConfig"] == {"maxTokens": 4096, "topP": 0.9, "stopSequences": ["END"]}
    assert set(codes(out)) >= {
        "max_tokens_clamped",
        "top_k_dropped",
        "thinking_dropped",
        "metadata_dropped",
        "image_degraded",
        "tool_id_rewritten",
        "tool_definitions_synthesized",
        "tool_choice_none_unsupported",
    }
    # consecutive user turns merged; the rewritten id pairs the call with its result
    roles = [m["role"] for m in out.body["messages"]]
    assert roles == ["user", "assistant", "user"]
    use = out.body["messages"][1]["content"][0]["toolUse"]
    result = out.body["messages"][2]["content"][0]["toolResult"]
    assert use["toolUseId"] == result["toolUseId"] != "call:1.x"
    assert result["status"] == "error"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, {"auto": {}}),
        ({"type": "any"}, {"any": {}}),
        ({"type": "tool", "name": "t"}, {"tool": {"name": "t"}}),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: dict[str, Any]) -> None:
    out = translate(tools=[{"name": "t", "input_schema": {"type": "object"}}], tool_choice=choice)
    assert out.body["toolConfig"]["toolChoice"] == expected


def test_tool_choice_none_without_history_omits_tools() -> None:
    out = translate(tools=[{"name": "t", "input_schema": {}}], tool_choice={"type": "none"})
    assert "toolConfig" not in out.body


def test_a_named_tool_choice_needs_a_name() -> None:
    with pytest.raises(InvalidInput):
        translate(tools=[{"name": "t", "input_schema": {}}], tool_choice={"type": "tool"})


def test_sampling_parameters() -> None:
    out = translate(temperature=0.2, top_p=0.5, stop_sequences=["a", ""])
    assert out.body["inferenceConfig"] == {
        "maxTokens": 100,
        "temperature": 0.2,
        "topP": 0.5,
        "stopSequences": ["a"],
    }
    assert out.degradations == []


def test_response_usage_and_stop_reasons() -> None:
    out = response(
        {
            "output": {"message": {"content": [{"text": "x"}]}},
            "stopReason": "content_filtered",
            "usage": {
                "inputTokens": 1,
                "outputTokens": 2,
                "cacheReadInputTokens": 3,
                "cacheWriteInputTokens": 4,
            },
        },
        requested_model="m",
    )
    assert out.body["stop_reason"] == "refusal"
    assert out.body["usage"] == {
        "input_tokens": 1,
        "output_tokens": 2,
        "cache_creation_input_tokens": 4,
        "cache_read_input_tokens": 3,
    }


def test_response_without_content_is_invalid() -> None:
    with pytest.raises(InvalidInput):
        response({"output": {}}, requested_model="m")


@pytest.mark.parametrize(
    ("name", "kind", "status"),
    [
        ("ThrottlingException", ErrorKind.RATE_LIMIT, 429),
        ("serviceUnavailableException", ErrorKind.OVERLOADED, 529),
        ("ValidationException:http://internal.amazon.com/coral/", ErrorKind.INVALID_REQUEST, 400),
        ("AccessDeniedException", ErrorKind.PERMISSION, 403),
        ("ModelTimeoutException", ErrorKind.TIMEOUT, 504),
        ("ResourceNotFoundException", ErrorKind.NOT_FOUND, 404),
    ],
)
def test_bedrock_error_names(name: str, kind: ErrorKind, status: int) -> None:
    assert bedrock_error(name) == (kind, status)
    assert bedrock_error("SomethingNew") is None
