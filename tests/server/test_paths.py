"""Passthrough paths stay under the backend's API prefix: the rule, then through the app in-process
(the raw ASGI `raw_path`, since HTTP clients normalise `..` away before sending)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from anyllm_cli.server.app import create_app
from anyllm_cli.server.paths import BadPath, passthrough_path
from tests.conftest import MockChat, backend_settings, make_settings

ESCAPES = [
    b"/v1/../admin",
    b"/v1/../../admin",
    b"/v1/%2e%2e/%2e%2e/admin",
    b"/v1/%2E%2E/admin",
    b"/v1/.%2e/admin",
    b"/v1/..%2fadmin",
    b"/v1/..%2Fadmin",
    b"/v1/%252e%252e/%252e%252e/admin",
    b"/v1/%25252e%25252e/admin",
    b"/v1/embeddings/./x",
    b"/v1/embeddings/%2e",
    b"/v1/a%3fb",
    b"/v1/a%3Fadmin=1",
    b"/v1/a%23b",
    b"/v1/a%253fb",
    b"/v1/a%00b",
    b"/v1/a%0d%0aHost:%20evil",
    b"/v1/a%7fb",
    b"/v1/a%5c..%5cadmin",
    b"/v1/a\\b",
    b"/v1/..\\admin",
    b"/v1/embeddings%2f..%2f..%2fadmin",
]


@pytest.mark.parametrize("raw", ESCAPES)
def test_escapes_are_refused(raw: bytes) -> None:
    with pytest.raises(BadPath):
        passthrough_path(raw, 1)
    with pytest.raises(BadPath):
        passthrough_path(b"/mock" + raw, 2)


@pytest.mark.parametrize(
    ("raw", "query", "sent"),
    [
        (b"/v1/embeddings", b"", "/embeddings"),
        (b"/v1/embeddings", b"x=1&y=a%20b", "/embeddings?x=1&y=a%20b"),
        (b"/v1/files/file-abc/content", b"", "/files/file-abc/content"),
        (b"/v1/files/a%20b", b"", "/files/a%20b"),
        (b"/v1/files/a%2520b", b"", "/files/a%2520b"),  # the client meant "a%20b": sent as is
        (b"/v1/files/a:b@c", b"", "/files/a:b@c"),
        (b"/v1/caf%C3%A9", b"", "/caf%C3%A9"),
        (b"/v1/x/%ff", b"", "/x/%FF"),  # not UTF-8: the same bytes leave
        (b"/v1/.well-known", b"", "/.well-known"),
        (b"/v1/", b"", "/"),
        (b"/v1/a", b"q=#frag", "/a?q=%23frag"),
    ],
)
def test_paths_that_stay_are_encoded_again(raw: bytes, query: bytes, sent: str) -> None:
    assert passthrough_path(raw, 1, query) == sent
    assert passthrough_path(b"/mock" + raw, 2, query) == sent


# -- through the app -------------------------------------------------------------------------------


@pytest.fixture
def upstream() -> MockChat:
    return MockChat()


@pytest.fixture
async def app(upstream: MockChat) -> AsyncIterator[Starlette]:
    app = create_app(make_settings(backend_settings()), transport=upstream.transport())
    async with app.router.lifespan_context(app):
        yield app


async def call(app: Starlette, raw_path: bytes, query: bytes = b"") -> tuple[int, Any]:
    """One POST straight into the ASGI app, with the request target exactly as given."""
    from urllib.parse import unquote_to_bytes

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": unquote_to_bytes(raw_path).decode("utf-8", "replace"),
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"host", b"proxy")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }
    messages: list[dict[str, Any]] = []
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": b'{"input":"x"}', "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return status, json.loads(body)


@pytest.mark.anyio
@pytest.mark.parametrize("raw", ESCAPES)
async def test_the_app_refuses_escapes_in_the_callers_format(
    app: Starlette, upstream: MockChat, raw: bytes
) -> None:
    for target in (raw, b"/mock" + raw):
        status, body = await call(app, target)
        assert status == 404, (target, body)
        assert body["error"]["type"] == "not_found_error"
        # a decoded line break matches no route pattern at all: the same 404, from the router
        assert "passthrough path segment" in body["error"]["message"] or b"%0d" in raw
    assert upstream.requests == []


@pytest.mark.anyio
async def test_the_app_sends_what_stays_under_the_base_url(
    app: Starlette, upstream: MockChat
) -> None:
    status, _ = await call(app, b"/mock/v1/files/a%2520b/content", b"limit=2&after=x%20y")
    assert status == 200
    (request,) = upstream.requests
    assert request.url.raw_path == b"/v1/files/a%2520b/content?limit=2&after=x%20y"
    assert str(request.url).startswith("http://upstream.test/v1/")


@pytest.mark.anyio
async def test_percent_encoded_escapes_through_an_http_client(
    app: Starlette, upstream: MockChat
) -> None:
    """What an HTTP client sends as is (it only normalises literal dots)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
        for path in ("/v1/%2e%2e/%2e%2e/admin", "/v1/%252e%252e/admin", "/v1/a%00b"):
            r = await client.post(path, json={"input": "x"})
            assert r.status_code == 404, path
            assert r.json()["error"]["type"] == "not_found_error"
    assert upstream.requests == []
