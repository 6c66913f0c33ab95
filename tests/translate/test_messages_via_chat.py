from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic.types
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.chat.completion_create_params import (
    CompletionCreateParamsNonStreaming,
    CompletionCreateParamsStreaming,
)
from pydantic import BaseModel, TypeAdapter
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from anyllm_cli.errors import InvalidInput
from anyllm_cli.models.anthropic import MessagesRequest
from anyllm_cli.models.openai_chat import ChatResponse
from anyllm_cli.translate.degradation import Translated
from anyllm_cli.translate.messages_via_chat import (
    ChatOptions,
    chat_tool_id,
    parse_arguments,
    request,
    response,
    stop_reason,
    usage,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CORPUS = FIXTURES / "messages_via_chat"
SUBAGENT = FIXTURES / "anthropic" / "claude_code_subagent.request.json"
PNG = "iVBORw0KGgo="
PDF = "JVBERi0xLjQ="

# -- checks every translation passes -----------------------------------------------------------------

_OPENAI = {
    False: TypeAdapter(CompletionCreateParamsNonStreaming),
    True: TypeAdapter(CompletionCreateParamsStreaming),
}


def _drain(value: Any) -> Any:
    """Pydantic validates `Iterable[...]` lazily: walk the result so every item is validated."""
    if isinstance(value, dict):
        return {k: _drain(v) for k, v in value.items()}
    if isinstance(value, list | tuple) or type(value).__name__ == "ValidatorIterator":
        return [_drain(v) for v in value]
    return value


def assert_valid_openai(body: dict[str, Any], reasoning_field: str = "reasoning_content") -> None:
    """The SDK's request TypedDict accepts the body, and drops nothing from it (no invented fields).

    The one vendor field we send on purpose (the reasoning history) is taken out first.
    """
    expected = json.loads(json.dumps(body))
    for msg in expected["messages"]:
        msg.pop(reasoning_field, None)
    validated = _drain(_OPENAI[bool(body.get("stream"))].validate_python(expected))
    assert validated == expected


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


def translate(options: ChatOptions | None = None, **fields: Any) -> Translated[dict[str, Any]]:
    raw = {"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    raw.update(fields)
    out = request(MessagesRequest.parse(raw), options or ChatOptions())
    field = (options or ChatOptions()).reasoning_field or "reasoning_content"
    assert_valid_openai(out.body, field)
    return out


def answer(**fields: Any) -> Translated[dict[str, Any]]:
    raw = {"id": "chatcmpl-1", "choices": [{"index": 0, "message": {"role": "assistant"}}]}
    raw["choices"][0]["message"].update(fields.pop("message", {}))
    raw["choices"][0].update(fields)
    out = response(ChatResponse.parse(raw), requested_model="claude-x")
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
REQUEST_FILES["claude_code_subagent"] = SUBAGENT
REQUEST_CASES: dict[str, tuple[str, ChatOptions]] = {
    name: (name, ChatOptions()) for name in REQUEST_FILES
}
REQUEST_CASES.update(
    {
        "reasoning_model": ("reasoning_model", ChatOptions(reasoning_model=True)),
        "pdf_without_file_parts": ("pdf", ChatOptions(file_parts=False)),
        "sampling_clamped": ("sampling", ChatOptions(max_output_tokens=8192)),
        "claude_code_full_options": (
            "claude_code_full",
            ChatOptions(
                map_model=lambda name: "gpt-4.1" if "sonnet" in name else name,
                prompt_cache_key="project-42",
                include_usage=False,
                reasoning_field="reasoning",
            ),
        ),
        "claude_code_full_no_reasoning_field": (
            "claude_code_full",
            ChatOptions(reasoning_field=None),
        ),
    }
)
RESPONSE_FILES = {p.name.removesuffix(".response.json"): p for p in CORPUS.glob("*.response.json")}


def test_corpus_is_large_enough() -> None:
    assert len(REQUEST_FILES) + len(RESPONSE_FILES) >= 18


@pytest.mark.parametrize("case", sorted(REQUEST_CASES))
def test_request_corpus(case: str, snapshot_json: SnapshotAssertion) -> None:
    name, options = REQUEST_CASES[case]
    raw = json.loads(REQUEST_FILES[name].read_text())
    out = request(MessagesRequest.parse(raw), options)
    assert_valid_openai(out.body, options.reasoning_field or "reasoning_content")
    assert "signature" not in json.dumps(out.body)
    assert snap(out) == snapshot_json


@pytest.mark.parametrize("name", sorted(RESPONSE_FILES))
def test_response_corpus(name: str, snapshot_json: SnapshotAssertion) -> None:
    raw = json.loads(RESPONSE_FILES[name].read_text())
    out = response(ChatResponse.parse(raw), requested_model="claude-sonnet-4-5")
    assert_valid_anthropic(out.body)
    assert snap(out) == snapshot_json


# -- request: real Claude Code shapes ------------------------------------------------------------------


def test_claude_code_subagent_request_keeps_its_mid_conversation_system_message() -> None:
    raw = json.loads(SUBAGENT.read_text())
    out = request(MessagesRequest.parse(raw))
    roles = [m["role"] for m in out.body["messages"]]
    assert roles == ["system", "user", "system"]
    assert out.body["messages"][2]["content"] == raw["messages"][1]["content"]
    assert "reasoning_effort" not in out.body  # thinking is disabled
    assert len(out.body["tools"]) == len(raw["tools"])
    assert all("$schema" not in t["function"]["parameters"] for t in out.body["tools"])
    assert codes(out).count("cache_control_dropped") == 1


def test_claude_code_parallel_tool_round_trip() -> None:
    raw = json.loads((CORPUS / "claude_code_full.request.json").read_text())
    messages = request(MessagesRequest.parse(raw)).body["messages"]
    roles = [m["role"] for m in messages]
    assert roles == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "tool",
        "user",
        "assistant",
        "tool",
    ]
    ids = [c["id"] for c in messages[2]["tool_calls"]]
    assert [m["tool_call_id"] for m in messages[3:6]] == ids
    assert messages[5]["content"].startswith("[tool error] ")
    follow = messages[6]["content"]
    assert follow[1]["type"] == "image_url"
    assert follow[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert follow[-1] == {"type": "text", "text": "Focus on the 401 first."}


# -- request: system and roles -------------------------------------------------------------------------


def test_model_goes_through_the_map() -> None:
    out = translate(ChatOptions(map_model=str.upper))
    assert out.body["model"] == "CLAUDE-X"


def test_system_blocks_are_joined_and_cache_control_is_recorded_once() -> None:
    cached = {"cache_control": {"type": "ephemeral"}}
    out = translate(
        system=[{"type": "text", "text": "a", **cached}, {"type": "text", "text": "b", **cached}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "q", **cached}]}],
    )
    assert out.body["messages"][0] == {"role": "system", "content": "a\n\nb"}
    assert codes(out) == ["cache_control_dropped"]
    assert "3 cache" in out.degradations[0].detail


def test_empty_system_sends_no_system_message() -> None:
    assert translate(system="").body["messages"] == [{"role": "user", "content": "hi"}]


def test_mid_conversation_system_block_splits_the_turn() -> None:
    content = [
        {"type": "text", "text": "before"},
        {"type": "mid_conv_system", "content": "rule"},
        {"type": "text", "text": "after"},
    ]
    out = translate(messages=[{"role": "user", "content": content}])
    assert out.body["messages"] == [
        {"role": "user", "content": "before"},
        {"role": "system", "content": "rule"},
        {"role": "user", "content": "after"},
    ]


def test_reasoning_model_uses_developer_role_and_max_completion_tokens() -> None:
    out = translate(ChatOptions(reasoning_model=True), system="s", temperature=0.5, top_p=0.9)
    assert out.body["messages"][0]["role"] == "developer"
    assert out.body["max_completion_tokens"] == 100
    assert "max_tokens" not in out.body and "temperature" not in out.body
    assert "top_p" not in out.body
    assert codes(out) == ["temperature_dropped", "top_p_dropped"]


def test_consecutive_same_role_messages_are_merged() -> None:
    out = translate(
        messages=[
            {"role": "user", "content": "a"},
            {"role": "user", "content": [{"type": "text", "text": "b"}]},
            {"role": "assistant", "content": "c"},
            {"role": "assistant", "content": "d"},
            {"role": "user", "content": "e"},
        ]
    )
    assert [m["content"] for m in out.body["messages"]] == ["a\n\nb", "c\n\nd", "e"]


def test_empty_text_blocks_and_empty_messages_are_dropped() -> None:
    out = translate(
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": ""}, {"type": "text", "text": "q"}],
            },
            {"role": "assistant", "content": [{"type": "text", "text": ""}]},
            {"role": "user", "content": "r"},
        ]
    )
    assert out.body["messages"] == [{"role": "user", "content": "q\n\nr"}]
    assert codes(out) == ["empty_message_dropped"]


def test_trailing_assistant_prefill_is_kept_and_recorded() -> None:
    out = translate(
        messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "{"}]
    )
    assert out.body["messages"][-1] == {"role": "assistant", "content": "{"}
    assert codes(out) == ["assistant_prefill_unsupported"]


# -- request: tool use and results ---------------------------------------------------------------------


def tool_turns(*results: dict[str, Any], extra: list[dict[str, Any]] | None = None) -> list[Any]:
    return [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"x": "é"}}],
        },
        {"role": "user", "content": [*results, *(extra or [])]},
    ]


def test_tool_use_becomes_tool_calls_with_null_content() -> None:
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}
    messages = translate(messages=tool_turns(result)).body["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "f", "arguments": '{"x": "é"}'},
            }
        ],
    }
    assert messages[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "ok"}


def test_tool_results_come_before_the_users_text_whatever_their_order() -> None:
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}
    text = {"type": "text", "text": "next"}
    turns = tool_turns()
    turns[2]["content"] = [text, result]
    roles = [m["role"] for m in translate(messages=turns).body["messages"]]
    assert roles == ["user", "assistant", "tool", "user"]


def test_tool_error_is_marked_in_the_text() -> None:
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "boom", "is_error": True}
    assert (
        translate(messages=tool_turns(result)).body["messages"][2]["content"] == "[tool error] boom"
    )


def test_images_in_tool_results_move_to_the_next_user_message() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": [image]}
    out = translate(messages=tool_turns(result, extra=[{"type": "text", "text": "see?"}]))
    tool, user = out.body["messages"][2:]
    assert tool["content"] == "[1 attachment(s) follow in the next user message]"
    assert user["content"] == [
        {"type": "text", "text": "Attachments from tool result toolu_1:"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "text", "text": "see?"},
    ]
    assert out.degradations == []


def test_empty_tool_result_is_an_empty_tool_message() -> None:
    result = {"type": "tool_result", "tool_use_id": "toolu_1"}
    assert translate(messages=tool_turns(result)).body["messages"][2]["content"] == ""


def test_missing_tool_result_is_written_and_orphans_become_user_text() -> None:
    orphan = {"type": "tool_result", "tool_use_id": "toolu_9", "content": "late"}
    out = translate(messages=tool_turns(orphan))
    assert out.body["messages"][2:] == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": "[tool result missing]"},
        {"role": "user", "content": "[result of tool call toolu_9]\nlate"},
    ]
    assert sorted(codes(out)) == ["orphan_tool_result", "tool_result_missing"]


def test_system_message_between_call_and_result_waits_for_the_results() -> None:
    turns = tool_turns({"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"})
    turns.insert(2, {"role": "system", "content": "note"})
    roles = [m["role"] for m in translate(messages=turns).body["messages"]]
    assert roles == ["user", "assistant", "tool", "system"]


@pytest.mark.parametrize(
    "raw",
    ["chatcmpl-tool-0f8e7d6c5b4a39281706f5e4d3c2b1a0", "functions.get:1", "a" * 41, "x|y"],
)
def test_illegal_tool_ids_are_rewritten_deterministically(raw: str) -> None:
    new = chat_tool_id(raw)
    assert len(new) <= 40 and new == chat_tool_id(raw)
    assert all(c.isalnum() or c in "_-" for c in new)
    out = translate(
        messages=[
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": raw, "name": "f", "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": raw, "content": "ok"}],
            },
        ]
    )
    messages = out.body["messages"]
    assert messages[1]["tool_calls"][0]["id"] == messages[2]["tool_call_id"] == new
    assert codes(out) == ["tool_id_rewritten"]


def test_legal_tool_ids_are_kept_and_near_misses_stay_distinct() -> None:
    assert chat_tool_id("toolu_01A09q90qw90lq917835lq9") == "toolu_01A09q90qw90lq917835lq9"
    assert chat_tool_id("a.b") != chat_tool_id("a:b")


# -- request: content blocks ---------------------------------------------------------------------------


def user_parts(*blocks: dict[str, Any], options: ChatOptions | None = None) -> Any:
    out = translate(options, messages=[{"role": "user", "content": list(blocks)}])
    return out.body["messages"][0]["content"], codes(out)


def test_images_become_data_urls_or_urls() -> None:
    parts, found = user_parts(
        {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
    )
    assert [p["image_url"]["url"] for p in parts] == [
        f"data:image/gif;base64,{PNG}",
        "https://x/y.png",
    ]
    assert found == []


def test_image_file_ids_become_a_note() -> None:
    image = {"type": "image", "source": {"type": "file", "file_id": "file_1"}}
    assert user_parts(image) == ("[image file_1 could not be attached]", ["image_degraded"])


def test_pdf_becomes_a_file_part() -> None:
    doc = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
    }
    parts, found = user_parts(doc, {"type": "text", "text": "sum up"})
    assert parts[0] == {
        "type": "file",
        "file": {"filename": "document.pdf", "file_data": f"data:application/pdf;base64,{PDF}"},
    }
    assert found == []


def test_pdf_without_file_parts_degrades_to_a_note() -> None:
    doc = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
    }
    text, found = user_parts(doc, options=ChatOptions(file_parts=False))
    assert "PDF could not be attached" in text
    assert found == ["document_degraded"]


def test_text_document_keeps_title_and_context() -> None:
    doc = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "body"},
        "title": "T",
        "context": "C",
    }
    assert user_parts(doc) == ("Document: T\nC\nbody", [])


@pytest.mark.parametrize(
    "source",
    [{"type": "url", "url": "https://x/y.pdf"}, {"type": "file", "file_id": "file_1"}],
)
def test_unreachable_documents_become_a_clear_note(source: dict[str, Any]) -> None:
    text, found = user_parts({"type": "document", "source": source})
    assert text.startswith("[document ") and "not attached" in text
    assert found == ["document_degraded"]


def test_search_result_becomes_text() -> None:
    block = {
        "type": "search_result",
        "source": "https://s",
        "title": "T",
        "content": [{"type": "text", "text": "a"}],
    }
    assert user_parts(block) == ("Search result: T\nSource: https://s\na", [])


def test_server_and_unknown_blocks_in_history_are_dropped_with_a_record() -> None:
    out = translate(
        messages=[
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "server_tool_use",
                        "id": "srvtoolu_1",
                        "name": "web_search",
                        "input": {},
                    },
                    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                    {"type": "holo_block"},
                    {"type": "text", "text": "a"},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "container_upload", "file_id": "f"},
                    {"type": "text", "text": "b"},
                ],
            },
        ]
    )
    assert [m["content"] for m in out.body["messages"]] == ["q", "a", "b"]
    assert codes(out) == [
        "server_tool_dropped",
        "server_tool_dropped",
        "unknown_block_dropped",
        "server_tool_dropped",
    ]


# -- request: thinking history -------------------------------------------------------------------------

THOUGHTFUL = [
    {"role": "user", "content": "q"},
    {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "SIGNATURE-VALUE"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "a"},
        ],
    },
    {"role": "user", "content": "r"},
]


def test_thinking_history_goes_to_reasoning_content_without_signatures() -> None:
    out = translate(messages=THOUGHTFUL)
    assert out.body["messages"][1] == {
        "role": "assistant",
        "content": "a",
        "reasoning_content": "hmm",
    }
    assert "SIGNATURE-VALUE" not in json.dumps(out.body) and "opaque" not in json.dumps(out.body)
    assert codes(out) == ["redacted_thinking_dropped"]


def test_reasoning_field_is_configurable_or_off() -> None:
    named = translate(ChatOptions(reasoning_field="reasoning"), messages=THOUGHTFUL)
    assert named.body["messages"][1]["reasoning"] == "hmm"
    off = translate(ChatOptions(reasoning_field=None), messages=THOUGHTFUL)
    assert off.body["messages"][1] == {"role": "assistant", "content": "a"}
    assert "thinking_dropped" in codes(off)


def test_thinking_only_turn_keeps_an_empty_content() -> None:
    turns = [
        THOUGHTFUL[0],
        {"role": "assistant", "content": [THOUGHTFUL[1]["content"][0]]},
        THOUGHTFUL[2],
    ]
    msg = translate(messages=turns).body["messages"][1]
    assert msg == {"role": "assistant", "content": "", "reasoning_content": "hmm"}


# -- request: limits and sampling ----------------------------------------------------------------------


def test_max_tokens_is_clamped() -> None:
    out = translate(ChatOptions(max_output_tokens=50))
    assert out.body["max_tokens"] == 50
    assert codes(out) == ["max_tokens_clamped"]
    assert translate(max_tokens=0).body["max_tokens"] == 1


def test_negative_max_tokens_is_invalid() -> None:
    with pytest.raises(InvalidInput) as err:
        translate(max_tokens=-1)
    assert err.value.path == "max_tokens"


def test_sampling_and_stop_sequences() -> None:
    out = translate(temperature=0.3, top_p=0.8, top_k=5, stop_sequences=list("abcdef"))
    assert out.body["temperature"] == 0.3 and out.body["top_p"] == 0.8
    assert out.body["stop"] == ["a", "b", "c", "d"]
    assert codes(out) == ["top_k_dropped", "stop_sequences_truncated"]


# -- request: tools and tool choice --------------------------------------------------------------------

F = {"name": "f", "input_schema": {"type": "object", "properties": {"a": {"type": "string"}}}}


def test_tool_schema_is_normalised_and_otherwise_kept() -> None:
    schema = {"$schema": "x", "$defs": {"d": {"type": "string"}}, "required": []}
    out = translate(
        tools=[{"name": "g", "description": "G", "input_schema": schema, "strict": True}]
    )
    assert out.body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "g",
                "description": "G",
                "parameters": {
                    "$defs": {"d": {"type": "string"}},
                    "required": [],
                    "type": "object",
                    "properties": {},
                },
                "strict": True,
            },
        }
    ]


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("bash_20250124", "bash"),
        ("text_editor_20250728", "str_replace_based_edit_tool"),
        ("memory_20250818", "memory"),
        ("computer_20251124", "computer"),
    ],
)
def test_anthropic_defined_client_tools_get_a_written_schema(kind: str, name: str) -> None:
    out = translate(tools=[{"type": kind, "name": name}])
    function = out.body["tools"][0]["function"]
    assert function["name"] == name and function["parameters"]["type"] == "object"
    assert function["parameters"]["properties"]
    assert codes(out) == ["anthropic_tool_schema_synthesized"]


@pytest.mark.parametrize(
    "kind",
    [
        "web_search_20250305",
        "web_fetch_20250910",
        "code_execution_20250825",
        "tool_search_tool_regex_20251119",
        "mcp_toolset",
    ],
)
def test_server_tools_are_dropped(kind: str) -> None:
    out = translate(tools=[{"type": kind, "name": "s"}], tool_choice={"type": "any"})
    assert "tools" not in out.body and "tool_choice" not in out.body
    assert codes(out) == ["server_tool_dropped"]


def test_unknown_schema_less_tool_is_dropped() -> None:
    out = translate(tools=[{"type": "warp_20270101", "name": "warp"}, F])
    assert [t["function"]["name"] for t in out.body["tools"]] == ["f"]
    assert codes(out) == ["unknown_tool_dropped"]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
    ],
)
def test_tool_choice_forms(choice: dict[str, Any], expected: Any) -> None:
    out = translate(tools=[F], tool_choice=choice)
    assert out.body["tool_choice"] == expected
    assert "parallel_tool_calls" not in out.body
    parallel = translate(tools=[F], tool_choice={**choice, "disable_parallel_tool_use": True})
    assert parallel.body["parallel_tool_calls"] is False


def test_tool_choice_of_a_dropped_tool_is_dropped() -> None:
    out = translate(
        tools=[F, {"type": "web_search_20250305", "name": "web_search"}],
        tool_choice={"type": "tool", "name": "web_search"},
    )
    assert "tool_choice" not in out.body
    assert codes(out) == ["server_tool_dropped", "tool_choice_dropped"]


def test_named_tool_choice_needs_a_name() -> None:
    with pytest.raises(InvalidInput) as err:
        translate(tools=[F], tool_choice={"type": "tool"})
    assert err.value.path == "tool_choice.name"


def test_tool_choice_without_tools_is_left_out() -> None:
    assert "tool_choice" not in translate(tool_choice={"type": "auto"}).body


# -- request: reasoning, output format, identity, stream -----------------------------------------------


@pytest.mark.parametrize(
    ("budget", "effort"),
    [
        (1024, "low"),
        (4096, "low"),
        (4097, "medium"),
        (16384, "medium"),
        (16385, "high"),
        (64000, "high"),
    ],
)
def test_thinking_budget_maps_to_effort(budget: int, effort: str) -> None:
    out = translate(thinking={"type": "enabled", "budget_tokens": budget})
    assert out.body["reasoning_effort"] == effort
    assert codes(out) == ["thinking_budget_mapped"]


@pytest.mark.parametrize(
    ("effort", "expected", "found"),
    [
        ("low", "low", []),
        ("medium", "medium", []),
        ("high", "high", []),
        ("xhigh", "high", ["effort_reduced"]),
        ("max", "high", ["effort_reduced"]),
    ],
)
def test_adaptive_thinking_uses_the_effort(effort: str, expected: str, found: list[str]) -> None:
    out = translate(thinking={"type": "adaptive"}, output_config={"effort": effort})
    assert out.body["reasoning_effort"] == expected
    assert codes(out) == found


def test_no_reasoning_effort_without_thinking() -> None:
    assert "reasoning_effort" not in translate(thinking={"type": "adaptive"}).body
    disabled = translate(thinking={"type": "disabled"}, output_config={"effort": "high"})
    assert "reasoning_effort" not in disabled.body
    assert codes(disabled) == ["effort_dropped"]


def test_output_format_becomes_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    out = translate(output_config={"format": {"type": "json_schema", "schema": schema}})
    assert out.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }
    other = translate(output_config={"format": {"type": "grammar", "grammar": "x"}})
    assert "response_format" not in other.body
    assert codes(other) == ["output_format_dropped"]


def test_user_id_is_passed_or_hashed() -> None:
    assert translate(metadata={"user_id": "u1"}).body["user"] == "u1"
    long = translate(metadata={"user_id": "u" * 65})
    assert len(long.body["user"]) == 64 and long.body["user"] != "u" * 64
    assert long.body["user"] == translate(metadata={"user_id": "u" * 65}).body["user"]
    assert codes(long) == ["user_id_hashed"]


def test_prompt_cache_key_and_stream_usage() -> None:
    out = translate(ChatOptions(prompt_cache_key="k"), stream=True)
    assert out.body["prompt_cache_key"] == "k"
    assert out.body["stream_options"] == {"include_usage": True}
    quiet = translate(ChatOptions(include_usage=False), stream=True)
    assert quiet.body["stream"] is True and "stream_options" not in quiet.body
    assert "stream" not in translate(stream=False).body


def test_anthropic_only_fields_are_dropped_with_a_record() -> None:
    out = translate(
        service_tier="auto", context_management={"edits": []}, container="c1", speed="fast"
    )
    assert set(out.body) == {"model", "messages", "max_tokens"}
    assert codes(out) == [
        "service_tier_dropped",
        "context_management_dropped",
        "unsupported_field_dropped",
    ]
    assert out.degradations[-1].detail == "container, speed"


# -- request: nothing but InvalidInput escapes ---------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 70000)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
sources = st.sampled_from(
    [
        {"type": "base64", "media_type": "application/pdf", "data": PDF},
        {"type": "base64", "media_type": "text/plain", "data": "aGk="},
        {"type": "base64", "media_type": "text/plain", "data": "!!"},
        {"type": "url", "url": "https://x"},
        {"type": "file", "file_id": "f"},
        {"type": "text", "data": "t"},
        {
            "type": "content",
            "content": [{"type": "text", "text": "c"}, {"type": "image"}, {"type": "x"}],
        },
    ]
)
leaf_blocks = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            [
                "text",
                "image",
                "document",
                "search_result",
                "tool_use",
                "thinking",
                "redacted_thinking",
                "server_tool_use",
                "web_search_tool_result",
                "container_upload",
                "tool_reference",
                "mid_conv_system",
                "odd",
            ]
        )
    },
    optional={
        "text": st.text(max_size=5),
        "source": sources | json_values,
        "id": st.sampled_from(["toolu_1", "a:b", "x" * 50]),
        "tool_use_id": st.sampled_from(["toolu_1", "a:b", "x" * 50]),
        "name": st.text(max_size=4),
        "input": st.dictionaries(st.text(max_size=3), json_values, max_size=2),
        "thinking": st.text(max_size=5),
        "data": st.text(max_size=5),
        "title": st.text(max_size=4),
        "content": st.text(max_size=4)
        | st.lists(
            st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=3)}),
            max_size=2,
        ),
        "tool_name": st.text(max_size=4),
        "file_id": st.text(max_size=4),
        "cache_control": st.just({"type": "ephemeral"}),
        "citations": json_values,
    },
)
blocks = leaf_blocks | st.fixed_dictionaries(
    {"type": st.just("tool_result"), "tool_use_id": st.sampled_from(["toolu_1", "a:b"])},
    optional={
        "content": st.text(max_size=4) | st.lists(leaf_blocks, max_size=3),
        "is_error": st.booleans(),
    },
)
messages = st.lists(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(["user", "assistant", "system", "tool"]),
            "content": st.text(max_size=5) | st.lists(blocks, max_size=4),
        }
    ),
    max_size=5,
)
tools = st.lists(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["f", "g", "web_search"])},
        optional={
            "type": st.sampled_from(
                ["custom", "bash_20250124", "web_search_20250305", "zap_1", "computer_1"]
            ),
            "input_schema": st.dictionaries(
                st.sampled_from(["type", "properties", "$schema"]), json_values, max_size=3
            ),
            "strict": st.booleans(),
        },
    ),
    max_size=3,
)
requests = st.fixed_dictionaries(
    {"model": st.text(max_size=5), "max_tokens": st.integers(-2, 200000), "messages": messages},
    optional={
        "system": st.text(max_size=5)
        | st.lists(
            st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=4)}),
            max_size=2,
        ),
        "tools": tools,
        "tool_choice": st.fixed_dictionaries(
            {"type": st.sampled_from(["auto", "any", "tool", "none", "other"])},
            optional={
                "name": st.sampled_from(["f", "web_search", "zz"]),
                "disable_parallel_tool_use": st.booleans(),
            },
        ),
        "thinking": st.fixed_dictionaries(
            {"type": st.sampled_from(["enabled", "disabled", "adaptive"])},
            optional={"budget_tokens": st.integers(0, 100000)},
        ),
        "output_config": st.fixed_dictionaries(
            {},
            optional={"effort": st.sampled_from(["low", "max", "weird"]), "format": json_values},
        ),
        "stop_sequences": st.lists(st.text(max_size=3), max_size=6),
        "metadata": st.fixed_dictionaries({"user_id": st.text(max_size=80)}),
        "top_k": st.integers(0, 5),
        "temperature": st.floats(0, 1),
        "stream": st.booleans(),
        "cache_control": json_values,
    },
)


def _translate_any(data: Any) -> None:
    try:
        out = request(MessagesRequest.parse(data))
    except InvalidInput:
        return
    assert_valid_openai(out.body)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests)
def test_near_valid_requests_raise_only_invalid_input(data: dict[str, Any]) -> None:
    _translate_any(data)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["model", "max_tokens", "messages", "tools", "system"]), json_values
    )
)
def test_arbitrary_json_raises_only_invalid_input(data: dict[str, Any]) -> None:
    _translate_any(data)


# -- response ------------------------------------------------------------------------------------------


def test_response_envelope() -> None:
    out = answer(message={"content": "hi"}, finish_reason="stop")
    assert out.body == {
        "id": "msg_chatcmpl-1",
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


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_becomes_a_leading_thinking_block_without_a_signature(field: str) -> None:
    out = answer(message={"content": "a", field: "why"})
    assert out.body["content"][0] == {"type": "thinking", "thinking": "why", "signature": ""}


def test_refusal_becomes_text_and_stop_reason_refusal() -> None:
    out = answer(message={"refusal": "no"}, finish_reason="stop")
    assert out.body["content"] == [{"type": "text", "text": "no"}]
    assert out.body["stop_reason"] == "refusal"


def call(arguments: str, call_id: str = "call_1") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "f", "arguments": arguments}}


@pytest.mark.parametrize(
    ("arguments", "expected", "found"),
    [
        ("", {}, []),
        ('{"a": 1}', {"a": 1}, []),
        ('```json\n{"a": 1}\n```', {"a": 1}, []),
        ('{"a": ', {"_raw": '{"a": '}, ["tool_arguments_invalid"]),
        ("[1]", {"_raw": "[1]"}, ["tool_arguments_invalid"]),
    ],
)
def test_tool_call_arguments_are_parsed_leniently(
    arguments: str, expected: Any, found: list[str]
) -> None:
    out = answer(message={"tool_calls": [call(arguments)]}, finish_reason="tool_calls")
    assert out.body["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "f", "input": expected}
    ]
    assert [c for c in codes(out) if c != "usage_missing"] == found


def test_stop_with_tool_calls_is_tool_use() -> None:
    out = answer(message={"content": "x", "tool_calls": [call("{}")]}, finish_reason="stop")
    assert out.body["stop_reason"] == "tool_use"


def test_empty_tool_call_ids_are_derived_deterministically() -> None:
    first = answer(message={"tool_calls": [call("{}", ""), call("{}", "")]})
    again = answer(message={"tool_calls": [call("{}", ""), call("{}", "")]})
    ids = [b["id"] for b in first.body["content"]]
    assert ids == [b["id"] for b in again.body["content"]]
    assert len(set(ids)) == 2 and all(i.startswith("toolu_") for i in ids)
    assert codes(first).count("tool_call_id_derived") == 2


def test_cached_tokens_are_taken_out_of_input_tokens() -> None:
    raw = {
        "id": "c",
        "choices": [{"message": {"content": "x"}, "finish_reason": "length"}],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 7,
            "prompt_tokens_details": {"cached_tokens": 60},
        },
    }
    out = response(ChatResponse.parse(raw), requested_model="m")
    assert out.body["usage"] == {
        "input_tokens": 40,
        "output_tokens": 7,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 60,
    }
    assert out.body["stop_reason"] == "max_tokens"


def test_no_choices_is_an_empty_message() -> None:
    out = response(ChatResponse.parse({"id": "c", "choices": []}), requested_model="m")
    assert out.body["content"] == [] and out.body["stop_reason"] == "end_turn"
    assert "no_choices" in codes(out)


def test_missing_upstream_id_gives_a_stable_message_id() -> None:
    raw = {"choices": [{"message": {"content": "x"}}]}
    first = response(ChatResponse.parse(raw), requested_model="m").body["id"]
    assert (
        first.startswith("msg_")
        and first == response(ChatResponse.parse(raw), requested_model="m").body["id"]
    )


def test_legacy_function_call_becomes_tool_use() -> None:
    out = answer(
        message={"function_call": {"name": "f", "arguments": '{"a": 2}'}},
        finish_reason="function_call",
    )
    block = out.body["content"][0]
    assert (block["name"], block["input"], block["id"].startswith("toolu_")) == (
        "f",
        {"a": 2},
        True,
    )
    assert out.body["stop_reason"] == "tool_use"


# -- shared helpers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("finish", "has_calls", "expected"),
    [
        ("stop", False, "end_turn"),
        ("length", True, "max_tokens"),
        ("content_filter", False, "refusal"),
        (None, True, "tool_use"),
        ("eos", False, "end_turn"),
    ],
)
def test_stop_reason(finish: str | None, has_calls: bool, expected: str) -> None:
    assert stop_reason(finish, has_calls) == expected


def test_usage_reads_deepseek_cache_hits() -> None:
    assert (
        usage({"prompt_tokens": 10, "prompt_cache_hit_tokens": 4})["cache_read_input_tokens"] == 4
    )
    assert usage(None)["input_tokens"] == 0


def test_parse_arguments_never_drops_text() -> None:
    assert parse_arguments("nope") == ({"_raw": "nope"}, True)
    assert parse_arguments(None) == ({}, False)


def test_gemini_openai_signatures_ride_in_the_tool_id_and_go_back_as_extra_content() -> None:
    """Gemini's OpenAI-compatible endpoint (the gemini-openai preset) signs tool calls in
    extra_content; Gemini 3 refuses the next turn without it."""
    signed = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "f", "arguments": "{}"},
        "extra_content": {"google": {"thought_signature": "c2ln"}},
    }
    reply = answer(message={"content": "Checking.", "tool_calls": [signed]}).body
    call = reply["content"][-1]
    assert call["id"].startswith("call_1__gsig_")
    history = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": reply["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"]}]},
    ]
    raw = {"model": "m", "max_tokens": 9, "messages": history}
    body = request(MessagesRequest.parse(raw), ChatOptions()).body
    assert body["messages"][1]["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "f", "arguments": "{}"},
            "extra_content": {"google": {"thought_signature": "c2ln"}},
        }
    ]
    assert body["messages"][2]["tool_call_id"] == "call_1"
