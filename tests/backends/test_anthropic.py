"""The Anthropic backend: our key as x-api-key, the client's version and betas, nothing of its own."""

from __future__ import annotations

import httpx
import pytest

from anyllm_cli.backends import build_backend
from anyllm_cli.backends.anthropic import AnthropicBackend
from anyllm_cli.config import BackendSettings

pytestmark = pytest.mark.anyio

SETTINGS = BackendSettings(
    name="claude",
    kind="anthropic",
    base_url="http://anthropic.test/v1",
    api_key="sk-ant-upstream",
    max_retries=0,
)
CLIENT = {
    "x-api-key": "client-proxy-key",
    "Authorization": "Bearer client-proxy-key",
    "anthropic-beta": "interleaved-thinking-2025-05-14",
}


def _backend(seen: list[httpx.Request], response: httpx.Response) -> AnthropicBackend:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return response

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    backend = build_backend(SETTINGS, client)
    assert isinstance(backend, AnthropicBackend)
    return backend


def test_api_is_messages() -> None:
    assert AnthropicBackend.api == "messages"


async def test_send_uses_our_key_and_a_default_version() -> None:
    seen: list[httpx.Request] = []
    backend = _backend(seen, httpx.Response(200, json={"type": "message"}))
    reply = await backend.send("/messages", {"model": "claude-x"}, CLIENT)
    assert reply.body == {"type": "message"}
    sent = seen[0]
    assert str(sent.url) == "http://anthropic.test/v1/messages"
    assert sent.headers["x-api-key"] == "sk-ant-upstream"
    assert "authorization" not in sent.headers
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"


async def test_the_clients_version_wins_over_the_default() -> None:
    seen: list[httpx.Request] = []
    backend = _backend(seen, httpx.Response(200, json={}))
    await backend.send("/messages", {}, {"Anthropic-Version": "2099-01-01"})
    assert seen[0].headers["anthropic-version"] == "2099-01-01"


async def test_stream_asks_for_uncompressed_sse() -> None:
    seen: list[httpx.Request] = []
    events = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    response = httpx.Response(200, content=events, headers={"content-type": "text/event-stream"})
    backend = _backend(seen, response)
    async with backend.stream("/messages", {"stream": True}, CLIENT) as stream:
        body = b"".join([chunk async for chunk in stream])
    assert body == events
    assert seen[0].headers["accept"] == "text/event-stream"
    assert seen[0].headers["accept-encoding"] == "identity"
    assert seen[0].headers["x-api-key"] == "sk-ant-upstream"
