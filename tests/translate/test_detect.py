from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anyllm_cli.errors import InvalidInput
from anyllm_cli.models import anthropic
from anyllm_cli.translate.detect import (
    ANTHROPIC_BLOCKS,
    ANTHROPIC_EVENTS,
    Detected,
    detect,
    pair,
    parse_json,
    sniff,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CLI = FIXTURES / "cli"
HI = [{"role": "user", "content": "hi"}]


def request(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": HI, **fields}


# -- requests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        request(max_tokens=10, system="be brief"),
        request(max_tokens=10, top_k=5),
        request(max_tokens=10, thinking={"type": "adaptive"}),
        request(max_tokens=10, tool_choice={"type": "any"}),
        request(max_tokens=10, tools=[{"name": "t", "input_schema": {"type": "object"}}]),
        request(max_tokens=10, tools=[{"type": "web_search_20250305", "name": "web_search"}]),
        request(
            max_tokens=10,
            messages=[
                {"role": "user", "content": [{"type": "text", "text": "x", "cache_control": {}}]}
            ],
        ),
        request(
            max_tokens=10,
            messages=[
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "t"}]},
            ],
        ),
        request(
            max_tokens=10,
            messages=[{"role": "user", "content": [{"type": "web_search_tool_result"}]}],
        ),
        # no max_tokens, but unmistakably Anthropic: detected as such so parsing names what is missing
        request(system="s"),
    ],
)
def test_anthropic_requests(body: dict[str, Any]) -> None:
    assert detect(body) == Detected("anthropic", "openai", "request")


@pytest.mark.parametrize(
    "body",
    [
        request(),  # Anthropic requires max_tokens
        request(max_tokens=10, messages=[{"role": "system", "content": "s"}, *HI]),
        request(max_completion_tokens=10),
        request(max_tokens=10, stream_options={"include_usage": True}),
        request(max_tokens=10, tool_choice="auto"),
        request(max_tokens=10, tool_choice={"type": "function", "function": {"name": "t"}}),
        request(max_tokens=10, tools=[{"type": "function", "function": {"name": "t"}}]),
        request(max_tokens=10, messages=[{"role": "developer", "content": "d"}, *HI]),
        request(
            max_tokens=10, messages=[*HI, {"role": "tool", "tool_call_id": "c", "content": ""}]
        ),
        request(max_tokens=10, messages=[{"role": "assistant", "tool_calls": []}]),
        request(
            max_tokens=10,
            messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
        ),
    ],
)
def test_openai_requests(body: dict[str, Any]) -> None:
    assert detect(body) == Detected("openai", "anthropic", "request")


def test_a_request_valid_in_both_apis_is_anthropic_whose_required_max_tokens_it_has() -> None:
    readme = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Hello"}],
    }
    assert detect(readme) == Detected("anthropic", "openai", "request")
    assert detect(request(max_tokens=10)) == Detected("anthropic", "openai", "request")


@pytest.mark.parametrize(
    ("body", "target"),
    [
        (request(max_tokens=10, top_k=1), "anthropic"),
        (request(max_completion_tokens=10), "openai"),
        ({"type": "message", "role": "assistant", "content": [], "model": "m"}, "anthropic"),
        ({"object": "chat.completion", "choices": []}, "openai"),
        ({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, "gemini"),
        ({"model": "m", "input": "hi"}, "responses"),
    ],
)
def test_input_already_in_the_target_api_is_routed_to_itself(
    body: dict[str, Any], target: Any
) -> None:
    found = detect(body, target=target)
    assert (found.source, found.target) == (target, target)


def test_to_another_api_still_reads_an_unmarked_request_as_anthropic() -> None:
    assert detect(request(max_tokens=10), target="gemini").source == "anthropic"
    assert detect(request(max_tokens=10, top_k=1, seed=2), target="openai").source == "anthropic"


@pytest.mark.parametrize(
    "body",
    [
        {"modelId": "m", "messages": [{"role": "user", "content": [{"text": "hi"}]}]},
        {"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
        {"messages": HI, "inferenceConfig": {"maxTokens": 5}},
    ],
)
def test_converse_requests_are_bedrock(body: dict[str, Any]) -> None:
    assert detect(body).source == "bedrock"


def test_a_converse_stream_is_told_by_its_event_keys() -> None:
    head = b'data: {"messageStart": {"role": "assistant"}}\n\n'
    assert sniff(head, at_eof=True) == ("sse", "bedrock")


def test_marks_of_both_apis_are_named() -> None:
    with pytest.raises(InvalidInput, match="`top_k` is Anthropic's, `seed` is OpenAI's"):
        detect(request(max_tokens=10, top_k=1, seed=2))


def test_claude_code_request_is_anthropic_despite_its_system_role_message() -> None:
    body = json.loads((FIXTURES / "anthropic/claude_code_subagent.request.json").read_text())
    assert detect(body) == Detected("anthropic", "openai", "request")


def test_from_or_to_settles_an_ambiguous_request() -> None:
    body = request(max_tokens=10)
    assert detect(body, source="anthropic") == Detected("anthropic", "openai", "request")
    assert detect(body, target="anthropic") == Detected("openai", "anthropic", "request")
    assert detect(body, source="openai", target="anthropic").source == "openai"


def test_from_wins_over_marks() -> None:
    assert detect(request(top_k=1), source="openai").source == "openai"


def test_pair() -> None:
    assert pair(None, None) == (None, None)
    assert pair("openai", None) == ("openai", "anthropic")
    assert pair(None, "openai") == ("anthropic", "openai")
    assert pair("openai", "openai") == ("openai", "openai")  # checked and written as is


# -- responses and other bodies ----------------------------------------------------------------------


def test_responses() -> None:
    anthropic_body = json.loads((CLI / "anthropic_response.json").read_text())
    openai_body = json.loads((CLI / "openai_response.json").read_text())
    assert detect(anthropic_body) == Detected("anthropic", "openai", "response")
    assert detect(openai_body) == Detected("openai", "anthropic", "response")
    assert detect({"object": "chat.completion"}).source == "openai"


def test_a_response_of_both_shapes_needs_from() -> None:
    with pytest.raises(InvalidInput, match="Anthropic or an OpenAI response"):
        detect({"type": "message", "choices": []})
    assert detect({"type": "message", "choices": []}, source="openai").source == "openai"


def test_kind_forces() -> None:
    assert detect({"id": "x"}, source="openai", kind="response").kind == "response"
    assert detect({"messages": []}, source="openai", kind="response").kind == "response"
    with pytest.raises(InvalidInput, match="Anthropic or an OpenAI response"):
        detect({"id": "x"}, kind="response")
    with pytest.raises(InvalidInput, match="--kind stream expects SSE"):
        detect(request(), kind="stream")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([1, 2], "expected a JSON object, got list"),
        ("text", "expected a JSON object, got str"),
        ({"object": "chat.completion.chunk", "choices": []}, "one stream event"),
        ({"type": "message_start", "message": {}}, "one stream event"),
        ({"type": "error", "error": {"type": "x", "message": "y"}}, "one stream event"),
        ({"error": {"message": "y"}}, "an error body"),
        ({"model": "m"}, "cannot tell what this is"),
    ],
)
def test_bodies_that_are_not_translatable(body: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        detect(body)


# -- parse_json --------------------------------------------------------------------------------------


def test_parse_json_names_line_and_column() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_json(b'{\n  "a": 1,\n  oops\n}')
    assert caught.value.path == "line 3 column 3"
    assert "invalid JSON" in caught.value.problem


def test_parse_json_with_a_line_number_for_json_lines() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_json(b'{"a": }', line=7)
    assert caught.value.path == "line 7 column 7"


def test_parse_json_refuses_bytes_that_are_not_utf8() -> None:
    with pytest.raises(InvalidInput, match="not UTF-8"):
        parse_json(b'{"a": "\xff\xfe"}')


def test_parse_json_refuses_absurd_nesting_without_a_recursion_error() -> None:
    with pytest.raises(InvalidInput, match="nested too deeply"):
        parse_json(b"[" * 100_000 + b"]" * 100_000)


# -- sniff -------------------------------------------------------------------------------------------

ANTHROPIC_SSE = (CLI / "anthropic_stream.sse").read_bytes()
OPENAI_SSE = (CLI / "openai_stream.sse").read_bytes()
PRETTY = (CLI / "anthropic_request.json").read_bytes()
JSONL = (CLI / "requests.jsonl").read_bytes()
ONE_LINE = b'{"model":"m","messages":[]}\n'


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (PRETTY, ("json", None)),
        (ONE_LINE, ("json", None)),
        (ONE_LINE + b"\n  \n", ("json", None)),
        (b"\xef\xbb\xbf" + ONE_LINE, ("json", None)),
        (JSONL, ("jsonl", None)),
        (b"not json at all", ("json", None)),  # the JSON parser says what is wrong
        (ANTHROPIC_SSE, ("sse", "anthropic")),
        (OPENAI_SSE, ("sse", "openai")),
        (b"data: [DONE]\n\n", ("sse", "openai")),
        (b': keepalive\n\ndata: {"type":"ping"}\n\n', ("sse", "anthropic")),
        (b'data: {"error":{"message":"boom"}}\n\n', ("sse", "openai")),
    ],
)
def test_sniff_at_the_end(head: bytes, expected: tuple[str, str | None]) -> None:
    assert sniff(head, at_eof=True) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"  \n",
        b'{"model":',  # one line, not finished
        ONE_LINE,  # a whole line: JSON Lines if another follows
        ONE_LINE + b"   ",
        b"dat",  # an SSE field name, cut
        b"event: message_start\n",  # the event is not complete yet
        b": keepalive\n\n",
    ],
)
def test_sniff_asks_for_more(head: bytes) -> None:
    assert sniff(head, at_eof=False) is None


def test_sniff_does_not_look_into_a_stream_whose_api_is_known() -> None:
    assert sniff(b"event: message_start\n", at_eof=False, source="anthropic") == (
        "sse",
        "anthropic",
    )


def test_sniff_refuses_empty_input_and_unknown_streams() -> None:
    with pytest.raises(InvalidInput, match="no input"):
        sniff(b" \n ", at_eof=True)
    with pytest.raises(InvalidInput, match=r"whose stream.*--from"):
        sniff(b"data: {}\n\ndata: nope\n\n", at_eof=True)


@given(st.sampled_from([PRETTY, JSONL, ONE_LINE, ANTHROPIC_SSE, OPENAI_SSE]), st.data())
def test_a_prefix_never_decides_differently_from_the_whole(
    head: bytes, data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(head)))
    early = sniff(head[:cut], at_eof=False)
    assert early is None or early == sniff(head, at_eof=True)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["messages", "role", "content", "type", "tools", "choices", "max_tokens"]
            )
            | st.text(max_size=6),
            inner,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@given(JSON)
def test_any_json_is_detected_or_refused_with_invalid_input(body: Any) -> None:
    with contextlib.suppress(InvalidInput):
        assert detect(body).kind in ("request", "response")


@given(st.binary(max_size=200), st.booleans())
def test_any_bytes_are_sniffed_or_refused_with_invalid_input(head: bytes, at_eof: bool) -> None:
    try:
        found = sniff(head, at_eof=at_eof)
    except InvalidInput:
        return
    assert found is not None or not at_eof


# -- kept in step with the wire models ---------------------------------------------------------------


def test_names_match_the_wire_models() -> None:
    assert ANTHROPIC_EVENTS == anthropic.STREAM_EVENT_TYPES
    assert anthropic._BLOCK_TAGS - {"text"} == ANTHROPIC_BLOCKS
    assert all(name.endswith("_tool_result") for name in anthropic.SERVER_TOOL_RESULT_TYPES)
