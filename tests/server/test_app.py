"""The app in-process: every route, with the real OpenAI backend over an httpx.MockTransport."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from anyllm_cli.server.app import create_app
from tests.conftest import MockChat, backend_settings, make_settings

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
