"""The pure-ASGI middleware, each around a tiny app, driven in-process."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from anyllm_cli.keys import manage
from anyllm_cli.keys.manage import KeyOptions
from anyllm_cli.keys.resolver import KeyResolver
from anyllm_cli.server.context import context
from anyllm_cli.server.metrics import Metrics
from anyllm_cli.server.middleware import (
    PRINCIPAL_KEY,
    Auth,
    BodyLimit,
    ConcurrencyLimit,
    RequestScope,
)
from anyllm_cli.stores import open_store
from anyllm_cli.translate.degradation import Degradation

pytestmark = pytest.mark.anyio
ANTHROPIC = {"anthropic-version": "2023-06-01"}


async def ok_app(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"read %d" % len(body)})


def client(app: ASGIApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy")


# -- RequestScope ------------------------------------------------------------------------------------


async def test_request_id_is_echoed_or_made() -> None:
    async with client(RequestScope(ok_app, metrics=Metrics())) as c:
        given = await c.get("/v1/models", headers={"x-request-id": "abc-123"})
        made = await c.post("/v1/messages")
        odd = await c.get("/", headers={"x-request-id": "bad id\n"})
    assert given.headers["x-request-id"] == "abc-123"
    assert made.headers["x-request-id"].startswith("req_")
    assert made.headers["request-id"] == made.headers["x-request-id"]
    assert "request-id" not in given.headers  # OpenAI-format callers get x-request-id only
    assert odd.headers["x-request-id"].startswith("req_")
    assert float(made.headers["x-anyllm-overhead-ms"]) >= 0


async def test_crash_is_a_500_in_the_callers_format(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    caplog.set_level(logging.ERROR, "anyllm")
    async with client(RequestScope(broken, metrics=Metrics())) as c:
        anthropic = await c.post("/v1/messages")
        openai = await c.post("/v1/chat/completions")
    assert anthropic.status_code == 500
    assert anthropic.json() == {
        "type": "error",
        "error": {"type": "api_error", "message": "internal error in the proxy"},
    }
    assert openai.status_code == 500
    assert openai.json()["error"]["type"] == "server_error"
    assert "boom" not in anthropic.text
    assert anthropic.headers["x-request-id"] in caplog.text


async def test_upstream_headers_and_degradations_reach_the_client() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        ctx = context(scope)
        assert ctx is not None
        ctx.call.upstream_headers = {"x-ratelimit-limit-requests": "7", "retry-after": "2"}
        ctx.call.degradations.append(Degradation("top_k_dropped", "no top_k"))
        await ok_app(scope, receive, send)

    async with client(RequestScope(app, metrics=Metrics(), degradation_header=True)) as c:
        anthropic = await c.post("/v1/messages")
        openai = await c.post("/v1/chat/completions")
    assert anthropic.headers["anthropic-ratelimit-requests-limit"] == "7"
    assert anthropic.headers["retry-after"] == "2"
    assert anthropic.headers["x-anyllm-degradation"] == "top_k_dropped"
    assert openai.headers["x-ratelimit-limit-requests"] == "7"


async def test_every_request_is_logged_and_metered(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    caplog.set_level(logging.INFO, "anyllm.access")
    async with client(RequestScope(ok_app, metrics=metrics)) as c:
        await c.post("/v1/messages", headers={"x-api-key": "secret-key"})
        await c.get("/health")
    assert "POST /v1/messages 200" in caplog.text
    assert "secret-key" not in caplog.text
    assert 'route="other",status="200"' in metrics.render()
    assert "/health" not in metrics.render()


# -- Auth --------------------------------------------------------------------------------------------


async def test_auth_accepts_either_header() -> None:
    app = RequestScope(Auth(ok_app, keys=["k1", "k2"]), metrics=Metrics())
    async with client(app) as c:
        assert (await c.post("/v1/messages", headers={"x-api-key": "k2"})).status_code == 200
        bearer = {"authorization": "Bearer k1"}
        assert (await c.post("/v1/chat/completions", headers=bearer)).status_code == 200
        goog = {"x-goog-api-key": "k1"}
        assert (await c.post("/v1beta/models/m:generateContent", headers=goog)).status_code == 200
        assert (await c.get("/health")).status_code == 200
        assert (await c.head("/")).status_code == 200
        assert (await c.get("/metrics")).status_code == 200


async def test_auth_rejects_in_the_callers_format() -> None:
    app = RequestScope(Auth(ok_app, keys=["k1"], metrics_auth=True), metrics=Metrics())
    async with client(app) as c:
        wrong = await c.post("/v1/messages", headers={"x-api-key": "nope"})
        missing = await c.post("/v1/chat/completions")
        metrics = await c.get("/metrics")
    assert wrong.status_code == 401
    assert wrong.json()["error"]["type"] == "authentication_error"
    assert "invalid" in wrong.json()["error"]["message"]
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "invalid_api_key"
    assert "missing" in missing.json()["error"]["message"]
    assert metrics.status_code == 401


async def test_auth_is_open_without_keys() -> None:
    async with client(Auth(ok_app, keys=[])) as c:
        assert (await c.post("/v1/messages")).status_code == 200


async def principal_app(scope: Scope, receive: Receive, send: Send) -> None:
    p = scope.get(PRINCIPAL_KEY)
    body = f"{p.kind}:{p.id}:{p.name}".encode() if p else b"none"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def test_auth_resolves_virtual_static_and_master_keys(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await open_store(f"sqlite://{tmp_path / 'a.db'}")
    resolver = KeyResolver(store, refresh_s=0)
    auth = Auth(principal_app, keys=[], resolver=lambda: resolver, master_key="mk")
    async with client(RequestScope(auth, metrics=Metrics())) as c:
        open_ = await c.post("/v1/messages")
        assert open_.text == "anonymous:anonymous:"  # no active key in the store: open
        record, secret = await manage.create(store, KeyOptions(name="ci"), time.time())
        closed = await c.post("/v1/messages")
        assert closed.status_code == 401 and "missing API key" in closed.text
        ok = await c.post("/v1/messages", headers={"x-api-key": secret})
        assert ok.text == f"virtual:{record.id}:ci"
        bearer = await c.post("/v1/chat/completions", headers={"authorization": f"Bearer {secret}"})
        assert bearer.text == ok.text
        wrong = await c.post("/v1/messages", headers={"x-api-key": secret[:-2] + "xx"})
        assert wrong.status_code == 401 and "invalid API key" in wrong.text
        caplog.set_level(logging.WARNING, "anyllm")
        master = await c.post("/v1/messages", headers={"x-api-key": "mk"})
        assert master.text == "master:master:master"
        assert "used the master key" in caplog.text
        await manage.revoke(store, record.id, time.time())
        revoked = await c.post("/v1/messages", headers={"x-api-key": secret})
        assert revoked.status_code == 401
        assert revoked.json()["error"]["message"] == "this API key was revoked"
        await store.close()
        down = await c.post("/v1/chat/completions", headers={"authorization": f"Bearer {secret}"})
        assert down.status_code == 503 and down.headers["retry-after"] == "1"
        assert "key store is unavailable" in down.json()["error"]["message"]
    assert secret not in caplog.text


async def test_admin_routes_take_only_the_master_key() -> None:
    async with client(Auth(principal_app, keys=["k1"], master_key="mk")) as c:
        assert (await c.get("/admin/keys", headers={"x-api-key": "k1"})).status_code == 401
        assert (await c.get("/key/list", headers={"authorization": "Bearer mk"})).status_code == 200
        named = await c.post("/key/v1/messages", headers={"x-api-key": "k1"})
        assert named.text == "static:static:static"  # a backend named "key" is not the admin API
    async with client(Auth(principal_app, keys=[])) as c:
        off = await c.get("/admin/keys/key_1", headers={"x-api-key": "anything"})
        assert off.status_code == 401 and "ANYLLM_MASTER_KEY" in off.text


# -- limits ------------------------------------------------------------------------------------------


async def test_body_limit_by_length_and_by_counting() -> None:
    app = RequestScope(BodyLimit(ok_app, max_bytes=10), metrics=Metrics())

    async def body() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"xxxx"

    async with client(app) as c:
        small = await c.post("/v1/messages", content=b"0123456789")
        declared = await c.post("/v1/messages", content=b"x" * 11)
        counted = await c.post("/v1/chat/completions", content=body())
    assert small.text == "read 10"
    assert declared.status_code == 413
    assert declared.json()["error"]["type"] == "request_too_large"
    assert counted.status_code == 413
    assert counted.json()["error"]["code"] == "request_too_large"


async def test_concurrency_limit() -> None:
    entered, release = anyio.Event(), anyio.Event()

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] != "/health":
            entered.set()
            await release.wait()
        await ok_app(scope, receive, send)

    limit = ConcurrencyLimit(slow, limit=1)
    results: dict[str, Any] = {}
    async with client(RequestScope(limit, metrics=Metrics())) as c:

        async def first() -> None:
            results["first"] = await c.post("/v1/messages")

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(first)
                await entered.wait()
                results["anthropic"] = await c.post("/v1/messages")
                results["openai"] = await c.post("/v1/chat/completions")
                results["health"] = await c.get("/health")
                release.set()
    assert results["first"].status_code == 200
    assert results["anthropic"].status_code == 529
    assert results["anthropic"].json()["error"]["type"] == "overloaded_error"
    assert results["anthropic"].headers["retry-after"] == "1"
    assert results["openai"].status_code == 503
    assert results["health"].status_code == 200
    assert limit.in_flight == 0


async def test_a_body_that_does_not_arrive_in_time_is_a_408_in_the_callers_format() -> None:
    app = RequestScope(BodyLimit(ok_app, max_bytes=100, timeout=0.2), metrics=Metrics())

    async def trickle() -> AsyncIterator[bytes]:
        yield b"x"
        await anyio.sleep(5)
        yield b"y"

    async with client(app) as c:
        with anyio.fail_after(3):
            anthropic = await c.post("/v1/messages", content=trickle())
            gemini = await c.post("/v1beta/models/g:generateContent", content=trickle())
    assert anthropic.status_code == 408
    assert anthropic.json()["error"]["type"] == "timeout_error"
    assert anthropic.headers["connection"] == "close"
    assert gemini.status_code == 408
    assert gemini.json()["error"] == {
        "code": 408,
        "message": "the request body did not arrive within 0.2 s",
        "status": "DEADLINE_EXCEEDED",
    }


async def test_the_body_is_read_before_a_concurrency_slot_is_taken() -> None:
    """The limit sits inside the body reader: the inner app sees one whole body, and a request
    whose body is still coming does not count as in flight."""
    seen: list[int] = []
    limit = ConcurrencyLimit(ok_app, limit=1)
    entered = anyio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b"x" * 10
        seen.append(limit.in_flight)
        entered.set()
        yield b"y" * 10

    app = RequestScope(BodyLimit(limit, max_bytes=100), metrics=Metrics())
    async with client(app) as c:
        r = await c.post("/v1/messages", content=body())
    assert r.text == "read 20"
    assert seen == [0] and limit.in_flight == 0


async def test_a_rejected_body_is_read_before_the_response_ends() -> None:
    """The 413 goes out at once, but its end waits until the rest of the body has been read:
    Hypercorn closes the connection when a response ends, and unread data would reset it."""
    messages: list[dict[str, Any]] = []
    chunks = [{"type": "http.request", "body": b"x" * 8, "more_body": True}] * 4
    chunks.append({"type": "http.request", "body": b"", "more_body": False})

    async def receive() -> dict[str, Any]:
        return chunks.pop(0)

    async def send(message: dict[str, Any]) -> None:
        messages.append({**message, "unread": len(chunks)})

    scope = {"type": "http", "path": "/v1/messages", "headers": [], "method": "POST"}
    await BodyLimit(ok_app, max_bytes=10)(scope, receive, send)
    start, first, last = messages
    assert start["status"] == 413 and (b"connection", b"close") in start["headers"]
    assert first["more_body"] is True and first["unread"] > 0
    assert last == {"type": "http.response.body", "body": b"", "unread": 0}
