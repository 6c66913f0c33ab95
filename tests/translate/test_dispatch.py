from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anyllm_cli.config.model_map import ModelMap
from anyllm_cli.errors import InvalidInput
from anyllm_cli.translate.dispatch import (
    ROUTES,
    BodyRoute,
    RouteKey,
    RouteOptions,
    StreamRoute,
    degradations,
    open_stream,
    route,
    translate,
)
from anyllm_cli.translate.streams.sse import SSEDecoder

CLI = Path(__file__).resolve().parents[1] / "fixtures" / "cli"
MAPPED = RouteOptions(map_model=ModelMap({"claude-sonnet-4-5": "gpt-4o", "gpt-4o": "claude-x"}))


def load(name: str) -> Any:
    return json.loads((CLI / name).read_text())


def events(data: bytes) -> list[tuple[str | None, Any]]:
    decoder = SSEDecoder()
    out = decoder.decode(data) + decoder.flush()
    return [(e.event, e.data if e.data == "[DONE]" else json.loads(e.data)) for e in out]


def test_every_direction_and_kind_has_one_route() -> None:
    both_ways = [
        (source, target, kind)
        for source, target in (("anthropic", "openai"), ("openai", "anthropic"))
        for kind in ("request", "response", "stream")
    ]
    upstreams = [
        (source, target, kind)
        for api in ("responses", "gemini", "bedrock")
        for source, target, kind in (
            ("anthropic", api, "request"),
            (api, "anthropic", "response"),
            (api, "anthropic", "stream"),
        )
    ]
    gemini_clients = [
        ("gemini", "anthropic", "request"),
        ("anthropic", "gemini", "response"),
        ("anthropic", "gemini", "stream"),
    ]
    assert sorted(ROUTES) == sorted(both_ways + upstreams + gemini_clients)
    for (_, _, kind), found in ROUTES.items():
        assert isinstance(found, StreamRoute if kind == "stream" else BodyRoute)


def test_an_unknown_route_names_the_supported_ones_one_pair_a_line() -> None:
    key: Any = ("openai", "gemini", "request")
    with pytest.raises(InvalidInput, match=r"Routes:\n  anthropic -> openai: request, response, "):
        route(key)


def test_a_route_to_the_same_api_checks_the_body_with_that_apis_model() -> None:
    body = load("openai_request.json")
    assert translate(body, ("openai", "openai", "request"), MAPPED).body == body
    with pytest.raises(InvalidInput, match="messages"):
        translate({"model": "m"}, ("openai", "openai", "request"), MAPPED)
    with pytest.raises(InvalidInput, match="already anthropic's"):
        route(("anthropic", "anthropic", "stream"))


def test_anthropic_request_to_openai() -> None:
    out = translate(load("anthropic_request.json"), ("anthropic", "openai", "request"), MAPPED)
    assert out.body["model"] == "gpt-4o"
    assert out.body["messages"][0] == {"role": "system", "content": "You are a terse assistant."}
    assert out.body["tools"][0]["type"] == "function"
    assert out.degradations == []


def test_lossy_steps_come_back_as_degradations() -> None:
    body = load("anthropic_request_lossy.json")
    out = translate(body, ("anthropic", "openai", "request"), RouteOptions())
    assert "top_k" not in out.body
    assert [d.code for d in out.degradations] == ["top_k_dropped"]


def test_openai_request_to_anthropic() -> None:
    out = translate(load("openai_request.json"), ("openai", "anthropic", "request"), MAPPED)
    assert out.body["model"] == "claude-x"
    assert out.body["system"] == "You are a terse assistant."
    assert out.body["max_tokens"] == 512


def test_openai_response_to_anthropic_is_named_after_the_mapped_model() -> None:
    out = translate(load("openai_response.json"), ("openai", "anthropic", "response"), MAPPED)
    assert out.body["type"] == "message"
    assert out.body["model"] == "claude-x"
    assert out.body["content"] == [{"type": "text", "text": "It is 18 C and clear in Paris."}]


def test_anthropic_response_to_openai_takes_created_from_the_options() -> None:
    options = RouteOptions(created=1_700_000_000)
    out = translate(load("anthropic_response.json"), ("anthropic", "openai", "response"), options)
    assert out.body["object"] == "chat.completion"
    assert out.body["created"] == 1_700_000_000
    assert out.body["choices"][0]["finish_reason"] == "tool_calls"


def test_bad_bodies_raise_invalid_input_with_a_path() -> None:
    with pytest.raises(InvalidInput) as caught:
        translate(load("bad_request.json"), ("anthropic", "openai", "request"), RouteOptions())
    assert caught.value.path == "messages[0].content[0].text"
    with pytest.raises(InvalidInput, match=r"expected a JSON object|valid dictionary"):
        translate([1], ("openai", "anthropic", "response"), RouteOptions())


def test_bodies_and_streams_do_not_mix() -> None:
    with pytest.raises(InvalidInput, match="SSE text, not one JSON body"):
        translate({}, ("openai", "anthropic", "stream"), RouteOptions())
    with pytest.raises(InvalidInput, match="one JSON body, not an SSE stream"):
        open_stream(("openai", "anthropic", "request"), RouteOptions())


def test_openai_stream_to_anthropic() -> None:
    pump = open_stream(("openai", "anthropic", "stream"), MAPPED)
    out = events(pump.feed((CLI / "openai_stream.sse").read_bytes()) + pump.finish())
    assert [name for name, _ in out][:2] == ["message_start", "content_block_start"]
    assert out[0][1]["message"]["model"] == "claude-x"
    assert out[-1] == ("message_stop", {"type": "message_stop"})
    assert degradations(pump) == []


def test_anthropic_stream_to_openai() -> None:
    options = RouteOptions(map_model=MAPPED.map_model, created=42)
    pump = open_stream(("anthropic", "openai", "stream"), options)
    out = events(pump.feed((CLI / "anthropic_stream.sse").read_bytes()) + pump.finish())
    assert out[-1] == (None, "[DONE]")
    chunks = [data for _, data in out[:-1]]
    assert {c["model"] for c in chunks} == {"gpt-4o"}
    assert {c["created"] for c in chunks} == {42}
    assert chunks[-1]["usage"]["completion_tokens"] == 12  # usage is kept


FIXTURES = CLI.parent


@pytest.mark.parametrize(
    ("api", "response", "stream"),
    [
        (
            "responses",
            "messages_via_responses/content_filter.response.json",
            "messages_via_responses/content_filter.sse",
        ),
        (
            "gemini",
            "messages_via_gemini/call_with_id_cached.response.json",
            "messages_via_gemini/crlf_cached_usage.sse",
        ),
        ("bedrock", "messages_via_converse/tool_use.response.json", None),
    ],
)
def test_other_upstream_apis_translate_to_and_from_anthropic(
    api: Any, response: str, stream: str | None
) -> None:
    request = load("anthropic_request.json")
    assert translate(request, ("anthropic", api, "request"), MAPPED).body
    body = json.loads((FIXTURES / response).read_text())
    assert translate(body, (api, "anthropic", "response"), RouteOptions()).body["type"] == "message"
    if stream is not None:
        pump = open_stream((api, "anthropic", "stream"), RouteOptions())
        out = pump.feed((FIXTURES / stream).read_bytes()) + pump.finish()
        names = [name for name, _ in events(out)]
        assert names[0] == "message_start" and names[-1] in ("message_stop", "error")


@pytest.mark.parametrize(
    "key", [("openai", "anthropic", "stream"), ("anthropic", "openai", "stream")]
)
def test_an_empty_stream_still_finishes(key: RouteKey) -> None:
    pump = open_stream(key, RouteOptions())
    assert pump.feed(b"") == b""
    pump.finish()  # whatever the translator says about nothing, it says it without raising
    assert pump.finish() == b""


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 1400), max_size=8))
def test_rechunking_the_input_never_changes_the_output(cuts: list[int]) -> None:
    data = (CLI / "openai_stream.sse").read_bytes()
    whole = open_stream(("openai", "anthropic", "stream"), RouteOptions())
    expected = whole.feed(data) + whole.finish()
    pump = open_stream(("openai", "anthropic", "stream"), RouteOptions())
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    out = b"".join(pump.feed(data[a:b]) for a, b in pairwise(bounds))
    assert out + pump.finish() == expected


def test_gemini_clients_translate_through_anthropic() -> None:
    body = {"model": "gemini-2.5-pro", "contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}
    req = translate(body, ("gemini", "anthropic", "request"), RouteOptions()).body
    assert req["model"] == "gemini-2.5-pro" and req["messages"][0]["role"] == "user"
    resp = translate(
        load("anthropic_response.json"), ("anthropic", "gemini", "response"), RouteOptions()
    )
    assert resp.body["candidates"][0]["content"]["role"] == "model"
    pump = open_stream(("anthropic", "gemini", "stream"), RouteOptions())
    out = pump.feed((CLI / "anthropic_stream.sse").read_bytes()) + pump.finish()
    chunks = [data for _, data in events(out)]
    assert chunks[-1]["candidates"][0]["finishReason"]
