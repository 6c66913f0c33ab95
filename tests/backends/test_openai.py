"""The OpenAI-compatible backend: our credentials only, extra headers, paths, stream and forward."""

from __future__ import annotations

import json
from dataclasses import replace

import httpx
import pytest

from anyllm_cli.backends.openai import OpenAIBackend, upstream_headers
from anyllm_cli.config import BackendSettings

pytestmark = pytest.mark.anyio

SETTINGS = BackendSettings(
    name="up",
    kind="openai",
    base_url="http://up.test/v1",
    api_key="sk-upstream",
    extra_headers={"X-Team": "blue"},
)
CLIENT_HEADERS = {
    "Authorization": "Bearer client-proxy-key",
    "x-api-key": "client-proxy-key",
    "Cookie": "a=b",
    "Host": "proxy.local",
    "Content-Length": "999",
    "x-request-id": "req-1",
}


def backend(seen: list[httpx.Request], response: httpx.Response) -> OpenAIBackend:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return response

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return OpenAIBackend(SETTINGS, client)


def test_api_follows_the_api_format() -> None:
    client = httpx.AsyncClient()
    assert OpenAIBackend(SETTINGS, client).api == "chat"
    assert OpenAIBackend(replace(SETTINGS, api_format="responses"), client).api == "responses"


async def test_send_uses_our_key_never_the_clients() -> None:
    seen: list[httpx.Request] = []
    reply = await backend(seen, httpx.Response(200, json={"ok": True})).send(
        "/chat/completions", {"model": "m"}, CLIENT_HEADERS
    )
    assert reply.body == {"ok": True}
    request = seen[0]
    assert str(request.url) == "http://up.test/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-upstream"
    assert "x-api-key" not in request.headers and "cookie" not in request.headers
    assert request.headers["host"] == "up.test"
    assert request.headers["x-team"] == "blue"
    assert request.headers["x-request-id"] == "req-1"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("anyllm/")
    assert int(request.headers["content-length"]) == len(request.content)
    assert json.loads(request.content) == {"model": "m"}


async def test_stream_asks_for_events_uncompressed() -> None:
    seen: list[httpx.Request] = []
    sse = {"content-type": "text/event-stream"}
    up = backend(seen, httpx.Response(200, headers=sse, content=b"data: [DONE]\n\n"))
    async with up.stream("/chat/completions", {"stream": True}) as stream:
        assert b"".join([c async for c in stream]) == b"data: [DONE]\n\n"
    assert seen[0].headers["accept"] == "text/event-stream"
    assert seen[0].headers["accept-encoding"] == "identity"


async def test_forward_passes_body_and_status_through() -> None:
    seen: list[httpx.Request] = []
    up = backend(seen, httpx.Response(404, json={"error": {"message": "nope"}}))
    headers = {**CLIENT_HEADERS, "content-type": "application/json"}
    async with await up.forward("POST", "/embeddings?x=1", b'{"input":"a"}', headers) as stream:
        assert stream.status == 404
        assert json.loads(b"".join([c async for c in stream])) == {"error": {"message": "nope"}}
    request = seen[0]
    assert str(request.url) == "http://up.test/v1/embeddings?x=1"
    assert request.content == b'{"input":"a"}'
    assert request.headers["authorization"] == "Bearer sk-upstream"
    assert request.headers["content-type"] == "application/json"


def test_no_key_sends_no_authorization_and_extra_headers_win() -> None:
    settings = replace(SETTINGS, api_key=None, extra_headers={"Authorization": "Token custom"})
    assert upstream_headers(settings, CLIENT_HEADERS, {})["authorization"] == "Token custom"
    keyless = upstream_headers(replace(SETTINGS, api_key=None), CLIENT_HEADERS, {})
    assert "authorization" not in keyless


async def test_aclose_leaves_the_shared_client_open() -> None:
    seen: list[httpx.Request] = []
    up = backend(seen, httpx.Response(200, json={}))
    await up.aclose()
    await up.send("/chat/completions", {})
    assert len(seen) == 1
