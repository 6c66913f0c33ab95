"""The app in-process: every route, with the real OpenAI backend over an httpx.MockTransport."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from anyllm_cli.errors import ErrorKind, UpstreamError
from anyllm_cli.pipeline import ANONYMOUS, Candidate, Principal
from anyllm_cli.server.app import create_app
from anyllm_cli.server.context import PRINCIPAL_KEY
from tests.conftest import MockChat, Recorder, backend_settings, make_settings

pytestmark = pytest.mark.anyio
ANTHROPIC = {"anthropic-version": "2023-06-01"}
MESSAGE = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "hi"}],
}
CHAT = {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def upstream() -> MockChat:
    return MockChat()


@pytest.fixture
async def client(upstream: MockChat) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        backend_settings(big_model="big-up"),
        backend_settings("echo", kind="echo", base_url="echo://offline"),
        degradation_header=True,
    )
    app = create_app(settings, transport=upstream.transport())
    async with _serving(app) as c:
        yield c


class _serving:
    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.lifespan = app.router.lifespan_context(app)

    async def __aenter__(self) -> httpx.AsyncClient:
        await self.lifespan.__aenter__()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://proxy"
        )
        return self.client

    async def __aexit__(self, *exc: Any) -> None:
        await self.client.aclose()
        await self.lifespan.__aexit__(*exc)


async def test_messages(client: httpx.AsyncClient, upstream: MockChat) -> None:
    r = await client.post("/v1/messages?beta=true", json=MESSAGE, headers=ANTHROPIC)
    assert r.status_code == 200
    assert r.json()["content"] == [{"type": "text", "text": "hi"}]
    assert upstream.bodies()[0]["model"] == "big-up"
    assert upstream.requests[0].headers["authorization"] == "Bearer upstream-key"


async def test_messages_stream(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/messages", json={**MESSAGE, "stream": True}, headers=ANTHROPIC)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert "event: message_start" in r.text
    assert r.text.rstrip().endswith('data: {"type":"message_stop"}')


async def test_upstream_errors_keep_their_status(
    client: httpx.AsyncClient, upstream: MockChat
) -> None:
    upstream.script["busy"] = lambda body: httpx.Response(
        429,
        json={"error": {"message": "slow", "type": "rate_limit_error"}},
        headers={"retry-after": "9"},
    )
    r = await client.post("/v1/messages", json={**MESSAGE, "model": "busy"}, headers=ANTHROPIC)
    assert r.status_code == 429
    assert r.headers["retry-after"] == "9"
    assert r.json()["error"] == {"type": "rate_limit_error", "message": "slow"}
    chat = await client.post("/v1/chat/completions", json={**CHAT, "model": "busy", "stream": True})
    assert chat.status_code == 429
    assert chat.json()["error"]["code"] == "rate_limit_exceeded"


async def test_bad_requests_name_the_field(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/messages", json={"model": "m", "messages": []}, headers=ANTHROPIC)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "max_tokens: Field required"
    chat = await client.post("/v1/chat/completions", json={"messages": []})
    assert chat.status_code == 400
    assert chat.json()["error"]["param"] == "model"


async def test_degradation_header(client: httpx.AsyncClient) -> None:
    body = {**MESSAGE, "top_k": 5}
    r = await client.post("/v1/messages", json=body, headers=ANTHROPIC)
    assert r.status_code == 200
    assert "top_k" in r.headers["x-anyllm-degradation"]


async def test_chat(client: httpx.AsyncClient, upstream: MockChat) -> None:
    r = await client.post("/v1/chat/completions", json=CHAT)
    assert r.json()["choices"][0]["message"]["content"] == "hi"
    assert upstream.bodies()[0] == CHAT
    stream = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert stream.text.endswith("data: [DONE]\n\n")


async def test_count_tokens(client: httpx.AsyncClient, upstream: MockChat) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hello world"}]}
    r = await client.post("/v1/messages/count_tokens", json=body, headers=ANTHROPIC)
    assert r.status_code == 200
    assert r.json()["input_tokens"] > 0
    assert upstream.requests == []


async def test_models_in_both_shapes(client: httpx.AsyncClient) -> None:
    anthropic = (await client.get("/v1/models?limit=3", headers=ANTHROPIC)).json()
    assert len(anthropic["data"]) == 3
    assert anthropic["has_more"] is True
    assert anthropic["data"][0]["type"] == "model"
    openai = (await client.get("/v1/models")).json()
    assert openai["object"] == "list"
    assert "big-up" in [m["id"] for m in openai["data"]]
    one = await client.get("/v1/models/claude-sonnet-4-6", headers=ANTHROPIC)
    assert one.json()["id"] == "claude-sonnet-4-6"
    missing = await client.get("/v1/models/nope", headers=ANTHROPIC)
    assert missing.status_code == 404


async def test_probes(client: httpx.AsyncClient) -> None:
    assert (await client.head("/")).status_code == 200
    assert (await client.get("/")).json()["name"] == "anyllm"
    assert (await client.get("/health")).json() == {"status": "ok"}
    await client.post("/v1/messages", json=MESSAGE, headers=ANTHROPIC)
    metrics = await client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'anyllm_requests_total{backend="mock",model="claude-sonnet-4-6"' in metrics.text


async def test_named_backends(client: httpx.AsyncClient, upstream: MockChat) -> None:
    r = await client.post("/echo/v1/messages", json=MESSAGE, headers=ANTHROPIC)
    assert r.json()["content"] == [{"type": "text", "text": "hi"}]
    assert upstream.requests == []
    unknown = await client.post("/nope/v1/messages", json=MESSAGE, headers=ANTHROPIC)
    assert unknown.status_code == 404
    assert "nope" in unknown.json()["error"]["message"]


async def test_unknown_routes_and_methods(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2/whatever")
    assert r.status_code == 404
    assert r.json()["type"] == "error"
    wrong_method = await client.get("/v1/messages", headers=ANTHROPIC)
    assert wrong_method.status_code == 404
    assert wrong_method.json()["error"]["type"] == "not_found_error"


async def test_passthrough(client: httpx.AsyncClient, upstream: MockChat) -> None:
    upstream.script["embed"] = lambda body: httpx.Response(
        200, json={"object": "list", "data": []}, headers={"x-ratelimit-limit-requests": "3"}
    )
    r = await client.post(
        "/v1/embeddings?x=1",
        json={"model": "embed", "input": "hi"},
        headers={"authorization": "Bearer client-secret"},
    )
    assert r.status_code == 200
    assert r.json() == {"object": "list", "data": []}
    assert r.headers["x-ratelimit-limit-requests"] == "3"
    sent = upstream.requests[-1]
    assert str(sent.url) == "http://upstream.test/v1/embeddings?x=1"
    assert sent.headers["authorization"] == "Bearer upstream-key"
    echo = await client.post("/echo/v1/embeddings", json={"model": "e", "input": "x"})
    assert echo.status_code == 404


async def test_passthrough_keeps_upstream_error_statuses(
    client: httpx.AsyncClient, upstream: MockChat
) -> None:
    upstream.script["bad"] = lambda body: httpx.Response(400, json={"error": {"message": "no"}})
    r = await client.post("/v1/embeddings", json={"model": "bad", "input": "hi"})
    assert r.status_code == 400
    assert json.loads(r.content) == {"error": {"message": "no"}}


# -- the seams: a guard and an observer see every call once -----------------------------------------


@pytest.fixture
def recorder() -> Recorder:
    return Recorder(headers={"x-guard": "ok"})


@pytest.fixture
async def guarded(upstream: MockChat, recorder: Recorder) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(backend_settings(big_model="big-up"))
    app = create_app(settings, transport=upstream.transport(), guard=recorder, observers=[recorder])
    async with _serving(app) as c:
        yield c


async def test_a_json_call_is_admitted_then_settled_once(
    guarded: httpx.AsyncClient, recorder: Recorder
) -> None:
    r = await guarded.post("/v1/messages", json=MESSAGE, headers=ANTHROPIC)
    assert r.status_code == 200
    assert r.headers["x-guard"] == "ok"
    outcome = recorder.one()
    assert outcome.candidate == Candidate("mock", "claude-sonnet-4-6", "big-up")
    assert (outcome.status, outcome.error, outcome.stream) == (200, None, False)
    assert (outcome.usage.input_tokens, outcome.usage.output_tokens) == (10, 3)
    assert outcome.request.principal == ANONYMOUS
    assert outcome.request.request_id == r.headers["x-request-id"]
    assert outcome.response is None  # nobody asked for bodies


async def test_a_stream_completes_once_after_its_last_byte(
    guarded: httpx.AsyncClient, recorder: Recorder
) -> None:
    r = await guarded.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert r.text.endswith("data: [DONE]\n\n")
    outcome = recorder.one()
    assert (outcome.status, outcome.stream, outcome.disconnected) == (200, True, False)
    assert outcome.ttft_s is not None and outcome.duration_s >= outcome.ttft_s


async def test_an_upstream_error_before_the_first_byte_completes_once(
    guarded: httpx.AsyncClient, upstream: MockChat, recorder: Recorder
) -> None:
    upstream.script["busy"] = lambda body: httpx.Response(
        429, json={"error": {"message": "slow", "type": "rate_limit_error"}}
    )
    r = await guarded.post("/v1/chat/completions", json={**CHAT, "model": "busy", "stream": True})
    assert r.status_code == 429
    outcome = recorder.one()
    assert (outcome.status, outcome.error) == (429, ErrorKind.RATE_LIMIT)


async def test_a_passthrough_goes_through_the_guard(
    guarded: httpx.AsyncClient, upstream: MockChat, recorder: Recorder
) -> None:
    usage = {"prompt_tokens": 4, "total_tokens": 4}
    upstream.script["embed"] = lambda body: httpx.Response(
        200, json={"object": "list", "data": [], "usage": usage}
    )
    r = await guarded.post("/v1/embeddings", json={"model": "embed", "input": "hi"})
    assert r.status_code == 200
    assert r.headers["x-guard"] == "ok"
    outcome = recorder.one()
    assert outcome.request.api == "forward"
    assert outcome.candidate == Candidate("mock", "embed", "embed")
    assert (outcome.status, outcome.usage.input_tokens) == (200, 4)


async def test_a_refusal_is_rendered_and_observed_but_not_settled(
    guarded: httpx.AsyncClient, recorder: Recorder
) -> None:
    recorder.refuse = UpstreamError(ErrorKind.RATE_LIMIT, "key over its rpm", retry_after=3)
    r = await guarded.post("/v1/messages", json=MESSAGE, headers=ANTHROPIC)
    assert r.status_code == 429
    assert r.headers["retry-after"] == "3"
    outcome = recorder.one()
    assert recorder.settled == []
    assert (outcome.status, outcome.error) == (429, ErrorKind.RATE_LIMIT)


async def test_bad_input_is_observed_without_a_candidate(
    guarded: httpx.AsyncClient, recorder: Recorder
) -> None:
    r = await guarded.post("/v1/messages", json={"model": "m"}, headers=ANTHROPIC)
    assert r.status_code == 400
    outcome = recorder.one()
    assert outcome.candidate is None
    assert (outcome.status, outcome.error) == (400, ErrorKind.INVALID_REQUEST)


async def test_the_principal_comes_from_the_scope(upstream: MockChat, recorder: Recorder) -> None:
    app = create_app(make_settings(), transport=upstream.transport(), observers=[recorder])
    principal = Principal("key_1", "ci", "virtual")

    async def auth(scope: Scope, receive: Receive, send: Send) -> None:
        scope[PRINCIPAL_KEY] = principal
        await app(scope, receive, send)

    async with _serving(app) as c:
        c._transport = httpx.ASGITransport(app=auth)
        await c.post("/v1/chat/completions", json=CHAT)
    assert recorder.one().request.principal == principal
