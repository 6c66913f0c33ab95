"""Mutation fuzzing of client requests: bad input is a 4xx in the caller's format, never a 500.

Real request shapes (the Claude Code fixture, the translators' request fixtures, one minimal body per
API) are mutated at one to three JSON paths each (wrong types, nulls, huge and odd values, list- and
object-valued `type`s, deletions, unknown keys) and sent to every client route of the app in-process
(httpx ASGITransport), under every backend kind: echo, and Chat, Responses, Anthropic and Gemini
upstreams behind one `httpx.MockTransport` that answers with recorded replies. Every answer must have
a status below 500, an error body in the caller's format when it is an error, and no traceback text.

A few seconds by default; `ANYLLM_FUZZ_EXAMPLES=N` runs N examples per test (10,000 is a good
soak). A failure prints the route, backend and body: add it to the regression cases below.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anyllm_cli.server.app import create_app
from tests.conftest import backend_settings, chat_response, make_settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EXAMPLES = int(os.environ.get("ANYLLM_FUZZ_EXAMPLES", "0")) or None
ANTHROPIC = {"anthropic-version": "2023-06-01", "content-type": "application/json"}
PLAIN = {"content-type": "application/json"}
BACKENDS = ("", "/chat", "/resp", "/anth", "/gem")

# -- the upstreams ----------------------------------------------------------------------------------


def _fixture(path: str) -> bytes:
    return (FIXTURES / path).read_bytes()


_GEMINI_SSE = _fixture("messages_via_gemini/plain_text.sse")
_GEMINI_JSON = _fixture("messages_via_gemini/thinking_and_text.response.json")
_RESPONSES_SSE = _fixture("messages_via_responses/text_only.sse")
_RESPONSES_JSON = _fixture("messages_via_responses/refusal.response.json")
_ANTHROPIC_SSE = _fixture("streams/chat_via_messages/thinking_then_text.sse")
_ANTHROPIC_JSON = _fixture("chat_via_messages/thinking_and_text.response.json")
_CHAT_SSE = _fixture("streams/messages_via_chat/plain_text.sse")


def _upstream(request: httpx.Request) -> httpx.Response:
    """One handler for every upstream kind, told apart by path; it also checks that what the proxy
    sends is JSON a real upstream could read (no NaN, no lone surrogate)."""
    path = request.url.path
    if request.content and not path.endswith("/embeddings"):  # a passthrough relays raw bytes
        json.loads(request.content.decode("utf-8"), parse_constant=_refuse)
    stream = b'"stream":true' in request.content.replace(b" ", b"") or "stream" in path
    sse = {"content-type": "text/event-stream"}
    if path.endswith(":countTokens"):
        return httpx.Response(200, json={"totalTokens": 7})
    if "Content" in path:
        if stream:
            return httpx.Response(200, content=_GEMINI_SSE, headers=sse)
        return httpx.Response(200, content=_GEMINI_JSON)
    if path.endswith("/responses"):
        if stream:
            return httpx.Response(200, content=_RESPONSES_SSE, headers=sse)
        return httpx.Response(200, content=_RESPONSES_JSON)
    if path.endswith("/messages/count_tokens"):
        return httpx.Response(200, json={"input_tokens": 7})
    if path.endswith("/messages"):
        if stream:
            return httpx.Response(200, content=_ANTHROPIC_SSE, headers=sse)
        return httpx.Response(200, content=_ANTHROPIC_JSON)
    if path.endswith("/chat/completions"):
        if stream:
            return httpx.Response(200, content=_CHAT_SSE, headers=sse)
        return httpx.Response(200, json=chat_response())
    return httpx.Response(200, json={"object": "list", "data": []})


def _refuse(constant: str) -> None:
    raise AssertionError(f"the proxy sent {constant} upstream: not JSON")


@pytest.fixture(scope="module")
def proxy() -> Iterator[tuple[BlockingPortal, httpx.AsyncClient]]:
    settings = make_settings(
        backend_settings("echo", kind="echo", base_url="echo://offline"),
        backend_settings("chat"),
        backend_settings("resp", api_format="responses"),
        backend_settings("anth", kind="anthropic", base_url="http://anthropic.test/v1"),
        backend_settings("gem", kind="gemini", base_url="http://gemini.test/v1beta"),
    )
    app = create_app(settings, transport=httpx.MockTransport(_upstream))
    with start_blocking_portal("asyncio") as portal:
        lifespan = app.router.lifespan_context(app)
        portal.call(lifespan.__aenter__)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url="http://proxy", timeout=30)
        try:
            yield portal, client
        finally:
            portal.call(client.aclose)
            portal.call(lifespan.__aexit__, None, None, None)


def _send(
    proxy: tuple[BlockingPortal, httpx.AsyncClient], path: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    portal, client = proxy

    async def post() -> httpx.Response:
        return await client.post(path, content=body, headers=headers)

    return portal.call(post)


# -- what every answer must look like ---------------------------------------------------------------


def check(response: httpx.Response, fmt: str, what: str) -> None:
    text = response.text
    assert response.status_code < 500, f"{what} -> {response.status_code}: {text[:500]}"
    assert "Traceback" not in text and 'File "' not in text, f"{what}: traceback in {text[:500]}"
    if response.status_code < 400:
        if not response.headers["content-type"].startswith("text/event-stream"):
            response.json()
        return
    error = response.json()
    if fmt == "anthropic":
        assert error["type"] == "error", what
        assert isinstance(error["error"]["type"], str) and error["error"]["message"], what
    elif fmt == "openai":
        assert isinstance(error["error"]["type"], str) and error["error"]["message"], what
        assert set(error["error"]) == {"message", "type", "param", "code"}, what
    else:
        assert error["error"]["code"] == response.status_code, what
        assert error["error"]["status"].isupper() and error["error"]["message"], what


# -- the seeds and the routes -----------------------------------------------------------------------


def _load(*paths: str) -> list[dict[str, Any]]:
    return [json.loads(_fixture(p)) for p in paths]


_MESSAGES = [
    {
        "model": "claude-sonnet-4-6",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
    },
    *_load(
        "anthropic/claude_code_subagent.request.json",
        "messages_via_chat/claude_code_full.request.json",
        "messages_via_chat/documents.request.json",
        "messages_via_chat/server_tools.request.json",
        "messages_via_chat/history_repairs.request.json",
        "messages_via_chat/images.request.json",
        "messages_via_chat/adaptive_thinking.request.json",
    ),
]
_CHAT = [
    {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]},
    *_load(
        "chat_via_messages/multi_turn_parallel_tools.request.json",
        "chat_via_messages/images_and_files.request.json",
        "chat_via_messages/response_format_json_schema.request.json",
        "chat_via_messages/reasoning_effort_in_tool_loop.request.json",
        "chat_via_messages/json_object_and_dropped_params.request.json",
    ),
]
_GEMINI = [
    {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    *_load(
        "gemini_via_messages/tool_loop_with_thoughts.request.json",
        "gemini_via_messages/media.request.json",
        "gemini_via_messages/forced_tool_and_sampling.request.json",
        "gemini_via_messages/structured_output_and_dropped.request.json",
    ),
]
# (path after the backend prefix, the caller's format, headers, seeds)
ROUTES: list[tuple[str, str, dict[str, str], list[dict[str, Any]]]] = [
    ("/v1/messages", "anthropic", ANTHROPIC, _MESSAGES),
    ("/v1/messages/count_tokens", "anthropic", ANTHROPIC, _MESSAGES),
    ("/v1/chat/completions", "openai", PLAIN, _CHAT),
    ("/v1beta/models/gemini-2.5-flash:generateContent", "gemini", PLAIN, _GEMINI),
    ("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", "gemini", PLAIN, _GEMINI),
    ("/v1beta/models/gemini-2.5-flash:countTokens", "gemini", PLAIN, _GEMINI),
    ("/v1/models/gemini-2.5-flash:generateContent", "gemini", PLAIN, _GEMINI),
    ("/v1/embeddings", "openai", PLAIN, _CHAT),  # passthrough: relayed, or a 404 off Chat backends
]


def json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from json_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from json_paths(item, (*prefix, index))


# Keys where a wrong shape reaches the most code: half the mutations land on one of them.
KEYS = frozenset(
    {
        "type",
        "role",
        "content",
        "parts",
        "text",
        "tools",
        "tool_choice",
        "stream_options",
        "messages",
        "contents",
        "system",
        "thinking",
        "source",
        "input",
        "arguments",
        "tool_calls",
        "functionCall",
        "functionResponse",
        "generationConfig",
        "response_format",
        "max_tokens",
    }
)
_PATHS = {id(seed): list(json_paths(seed)) for _, _, _, seeds in ROUTES for seed in seeds}
_KEY_PATHS = {
    key: [p for p in paths if p and p[-1] in KEYS] or paths for key, paths in _PATHS.items()
}

# -- mutations --------------------------------------------------------------------------------------

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, -1, 1, 2**31, 2**63, -(2**63), 10**40, 0.5, -0.0, 1e308, 1e-308]),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", " ", "\x00", "\ud800", "\udfff", "\u202e", "nul\x00l", "%2e%2e/", "\\"]),
    st.sampled_from(["text", "image", "tool_use", "tool_result", "function", "user", "assistant"]),
    st.text(max_size=20),
    st.builds(lambda n: "x" * n, st.sampled_from([10_000, 200_000])),
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
_ODD = st.one_of(
    _SCALARS,
    _JSON,
    st.just([]),
    st.just({}),
    st.just([["text"]]),
    st.just({"type": ["text"]}),
    st.just({"type": {"type": "text"}}),
    st.builds(lambda n: [[[[[[[[n]]]]]]]], st.integers()),
    st.builds(lambda n: [0] * n, st.sampled_from([1000, 50_000])),
)


def _mutate(seed: Any, path: tuple[Any, ...], how: str, value: Any) -> Any:
    """A copy of `seed` with the node at `path` replaced, deleted, wrapped, or given a new key."""
    if not path:
        return value if how == "replace" else seed
    root = json.loads(json.dumps(seed))
    parent = root
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if how == "delete":
        del parent[last]
    elif how == "wrap":
        parent[last] = [parent[last]]
    elif how == "extra" and isinstance(parent[last], dict):
        parent[last]["x_unknown"] = value
    elif how == "type" and isinstance(parent[last], dict):
        parent[last]["type"] = value
    else:
        parent[last] = value
    return root


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes, str]:
    route, fmt, headers, seeds = draw(st.sampled_from(ROUTES))
    prefix = draw(st.sampled_from(BACKENDS))
    seed: Any = draw(st.sampled_from(seeds))
    if fmt != "gemini" and draw(st.booleans()) and "count" not in route:
        seed = {**seed, "stream": True}
    body = seed
    for _ in range(draw(st.integers(1, 3))):
        chosen = _KEY_PATHS if draw(st.booleans()) else _PATHS
        paths = chosen.get(id(body)) or list(json_paths(body))
        path = draw(st.sampled_from(paths))
        how = draw(st.sampled_from(["replace", "replace", "delete", "wrap", "extra", "type"]))
        value = draw(_ODD)
        body = _mutate(body, path, how, value)
    raw = json.dumps(body, ensure_ascii=draw(st.booleans()), allow_nan=False)
    encoded = raw.encode("utf-8", "surrogatepass")
    what = f"POST {prefix}{route} {raw[:2000]}"
    return prefix + route, fmt, headers, encoded, what


@settings(
    max_examples=EXAMPLES or 80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(request=requests())
def test_mutated_requests_never_fail_the_proxy(
    proxy: tuple[BlockingPortal, httpx.AsyncClient], request: tuple[str, str, dict, bytes, str]
) -> None:
    path, fmt, headers, body, what = request
    check(_send(proxy, path, body, headers), fmt, what)


# -- raw bodies that are not JSON objects ------------------------------------------------------------

_RAW = st.one_of(
    st.sampled_from(
        [
            b"",
            b"null",
            b"[]",
            b"1e999",
            b'{"a":NaN}',
            b"\xef\xbb\xbf{}",
            b"\xff\xfe{",
            b'{"model":"\xed\xa0\x80"}',
            b'{"model":"m","messages":' + b"[" * 10_000 + b"]" * 10_000 + b"}",
            b'{"contents":' + b'{"a":' * 5_000 + b"1" + b"}" * 5_000 + b"}",
            b'{"model":"\\ud800","max_tokens":1,"messages":[]}',
        ]
    ),
    st.binary(max_size=64),
    st.text(max_size=64).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


@settings(max_examples=EXAMPLES or 40, deadline=None)
@given(raw=_RAW, route=st.sampled_from(ROUTES), prefix=st.sampled_from(BACKENDS))
def test_bodies_that_are_not_requests(
    proxy: tuple[BlockingPortal, httpx.AsyncClient],
    raw: bytes,
    route: tuple[str, str, dict[str, str], list[Any]],
    prefix: str,
) -> None:
    path, fmt, headers, _ = route
    check(_send(proxy, prefix + path, raw, headers), fmt, f"POST {prefix}{path} {raw[:200]!r}")


# -- the causes found by the first fuzzing, on every route they can reach -------------------------

_DEEP = b"[" * 10_000 + b"]" * 10_000


@pytest.mark.parametrize("prefix", BACKENDS)
@pytest.mark.parametrize(
    ("path", "fmt", "headers", "body", "field"),
    [
        (
            "/v1/messages",
            "anthropic",
            ANTHROPIC,
            b'{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":["text"],"text":"x"}]}]}',
            "messages[0].content[0].type",
        ),
        (
            "/v1/messages/count_tokens",
            "anthropic",
            ANTHROPIC,
            b'{"model":"m","messages":[{"role":"user","content":[{"type":{"a":1},"text":"x"}]}]}',
            "messages[0].content[0].type",
        ),
        (
            "/v1/messages",
            "anthropic",
            ANTHROPIC,
            b'{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result",'
            b'"tool_use_id":"t","content":[{"type":{}}]}]}]}',
            "messages[0].content[0].content[0].type",
        ),
        (
            "/v1/chat/completions",
            "openai",
            PLAIN,
            b'{"model":"m","messages":[{"role":"user","content":[{"type":{},"text":"x"}]}]}',
            "messages[0].content[0].type",
        ),
        ("/v1/messages", "anthropic", ANTHROPIC, b'{"messages":' + _DEEP + b"}", "nested"),
        ("/v1/messages/count_tokens", "anthropic", ANTHROPIC, _DEEP, "nested"),
        ("/v1/chat/completions", "openai", PLAIN, _DEEP, "nested"),
        ("/v1beta/models/g:generateContent", "gemini", PLAIN, _DEEP, "nested"),
        ("/v1beta/models/g:countTokens", "gemini", PLAIN, _DEEP, "nested"),
        (
            "/v1beta/models/g:generateContent",
            "gemini",
            PLAIN,
            b'{"contents":[{"role":"user","parts":[{"text":"\\ud800"}]}]}',
            "contents[0].parts[0].text",
        ),
        (
            "/v1beta/models/g:streamGenerateContent?alt=sse",
            "gemini",
            PLAIN,
            b'{"contents":[{"role":"user","parts":[{"text":"a\\udc00"}]}]}',
            "contents[0].parts[0].text",
        ),
        (
            "/v1beta/models/g:countTokens",
            "gemini",
            PLAIN,
            b'{"contents":[{"role":"user","parts":[{"text":"\\ud800"}]}]}',
            "contents[0].parts[0].text",
        ),
        (
            "/v1/messages",
            "anthropic",
            ANTHROPIC,
            b'{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"\\ud800"}]}',
            "messages[0].content",
        ),
    ],
)
def test_found_causes_are_400s_naming_the_field(
    proxy: tuple[BlockingPortal, httpx.AsyncClient],
    prefix: str,
    path: str,
    fmt: str,
    headers: dict[str, str],
    body: bytes,
    field: str,
) -> None:
    r = _send(proxy, prefix + path, body, headers)
    check(r, fmt, path)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error.get("type", error.get("status")) in {"invalid_request_error", "INVALID_ARGUMENT"}
    assert field in error["message"]
    if fmt == "openai" and field != "nested":
        assert error["param"] == field


@pytest.mark.parametrize("prefix", BACKENDS)
@pytest.mark.parametrize("stream", [True, False])
def test_stream_options_null_is_absent(
    proxy: tuple[BlockingPortal, httpx.AsyncClient], prefix: str, stream: bool
) -> None:
    """OpenAI documents `stream_options` as nullable: null is its default, not an error."""
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    raw = json.dumps({**body, "stream_options": None}).encode()
    r = _send(proxy, prefix + "/v1/chat/completions", raw, PLAIN)
    check(r, "openai", "stream_options null")
    assert r.status_code == 200, r.text
