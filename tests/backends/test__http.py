"""The shared HTTP path: retries, Retry-After, error mapping, stream failures, the real transports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import anyio
import httpx
import pytest

from anyllm_cli.backends._http import (
    HTTPUpstream,
    RetryPolicy,
    build_client,
    parse_retry_after,
)
from anyllm_cli.config import BackendSettings
from anyllm_cli.errors import ErrorKind, InvalidInput, UpstreamError

pytestmark = pytest.mark.anyio

SETTINGS = BackendSettings(
    name="up", kind="openai", base_url="http://up.test/v1", api_key="k", max_retries=2
)
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def upstream(
    handler: Handler, sleeps: Sleeps, settings: BackendSettings = SETTINGS
) -> HTTPUpstream:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    policy = RetryPolicy(jitter=lambda: 0.0, sleep=sleeps, clock=lambda: 1_000_000.0)
    return HTTPUpstream(client, settings, policy)


def scripted(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return handler, seen


def error_body(etype: str, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": etype, "param": None, "code": None}}


OK = {"id": "chatcmpl-1", "choices": []}


async def test_429_then_success_honours_retry_after() -> None:
    sleeps = Sleeps()
    handler, seen = scripted(
        httpx.Response(
            429, json=error_body("rate_limit_error", "slow"), headers={"retry-after": "3"}
        ),
        httpx.Response(200, json=OK),
    )
    reply = await upstream(handler, sleeps).send_json("/chat/completions", {"a": 1}, {})
    assert reply.status == 200 and reply.body == OK
    assert sleeps.calls == [3.0]
    assert len(seen) == 2
    assert str(seen[0].url) == "http://up.test/v1/chat/completions"
    assert json.loads(seen[1].content) == {"a": 1}


async def test_retry_after_as_http_date_and_ms() -> None:
    sleeps = Sleeps()
    date = "Mon, 12 Jan 1970 13:46:42 GMT"  # 1_000_002 s after the epoch: 2 s after the clock
    handler, _ = scripted(
        httpx.Response(503, headers={"retry-after": date}),
        httpx.Response(529, headers={"retry-after-ms": "250"}),
        httpx.Response(200, json=OK),
    )
    await upstream(handler, sleeps).send_json("/x", {}, {})
    assert sleeps.calls == [2.0, 0.25]


async def test_backoff_then_error_keeps_status_and_kind() -> None:
    sleeps = Sleeps()
    handler, seen = scripted(*(httpx.Response(500, json=error_body("server_error", "boom")),) * 3)
    with pytest.raises(UpstreamError) as info:
        await upstream(handler, sleeps).send_json("/x", {}, {})
    assert (info.value.kind, info.value.status, info.value.message) == (
        ErrorKind.API_ERROR,
        500,
        "boom",
    )
    assert len(seen) == 3
    assert sleeps.calls == [0.25, 0.5]  # base 0.5 * 2**n, jitter 0: half of each step


async def test_long_retry_after_goes_to_the_caller() -> None:
    sleeps = Sleeps()
    handler, seen = scripted(
        httpx.Response(
            429, json=error_body("rate_limit_error", "later"), headers={"retry-after": "120"}
        )
    )
    with pytest.raises(UpstreamError) as info:
        await upstream(handler, sleeps).send_json("/x", {}, {})
    assert (info.value.kind, info.value.status, info.value.retry_after) == (
        ErrorKind.RATE_LIMIT,
        429,
        120.0,
    )
    assert sleeps.calls == [] and len(seen) == 1


@pytest.mark.parametrize(
    ("status", "body", "kind", "attempts"),
    [
        (400, error_body("invalid_request_error", "bad"), ErrorKind.INVALID_REQUEST, 1),
        (401, error_body("invalid_request_error", "bad key"), ErrorKind.BAD_GATEWAY, 1),
        (
            403,
            {"error": {"message": "no", "type": "authentication_error"}},
            ErrorKind.BAD_GATEWAY,
            1,
        ),
        (404, "not here", ErrorKind.NOT_FOUND, 1),
        (429, error_body("insufficient_quota", "pay"), ErrorKind.BILLING, 1),
        (429, error_body("requests", "slow down"), ErrorKind.RATE_LIMIT, 3),
        (500, "<html>oops</html>", ErrorKind.API_ERROR, 3),
        (503, error_body("server_error", "busy"), ErrorKind.UNAVAILABLE, 3),
        (
            529,
            {"type": "error", "error": {"type": "overloaded_error", "message": "o"}},
            ErrorKind.OVERLOADED,
            3,
        ),
    ],
)
async def test_error_mapping(status: int, body: Any, kind: ErrorKind, attempts: int) -> None:
    sleeps = Sleeps()

    def make() -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    handler, seen = scripted(*(make() for _ in range(attempts)))
    with pytest.raises(UpstreamError) as info:
        await upstream(handler, sleeps).send_json("/x", {}, {})
    kept = 502 if kind is ErrorKind.BAD_GATEWAY else status  # the proxy's key refused: its 502
    assert (info.value.kind, info.value.status) == (kind, kept)
    assert len(seen) == attempts


async def test_should_retry_header_wins() -> None:
    sleeps = Sleeps()
    handler, seen = scripted(httpx.Response(503, headers={"x-should-retry": "false"}))
    with pytest.raises(UpstreamError):
        await upstream(handler, sleeps).send_json("/x", {}, {})
    assert len(seen) == 1
    handler, seen = scripted(
        httpx.Response(409, headers={"x-should-retry": "true"}), httpx.Response(200, json=OK)
    )
    await upstream(handler, sleeps).send_json("/x", {}, {})
    assert len(seen) == 2


async def test_connect_error_retried_then_reported() -> None:
    sleeps = Sleeps()
    handler, seen = scripted(httpx.ConnectError("refused"), httpx.Response(200, json=OK))
    assert (await upstream(handler, sleeps).send_json("/x", {}, {})).body == OK
    handler, seen = scripted(*(httpx.ConnectError("refused"),) * 3)
    with pytest.raises(UpstreamError) as info:
        await upstream(handler, sleeps).send_json("/x", {}, {})
    assert (info.value.kind, info.value.status) == (ErrorKind.BAD_GATEWAY, 502)
    assert info.value.message == "backend up could not be reached (ConnectError)"
    assert "up.test" not in info.value.message  # the address goes to the log, not the client
    assert len(seen) == 3


async def test_a_malformed_reply_is_a_bad_gateway() -> None:
    handler, _ = scripted(*(httpx.RemoteProtocolError("illegal header 10.0.0.5:8080"),) * 3)
    # a HEAD-style reply with a body, garbage for a status line: h11 says RemoteProtocolError
    with pytest.raises(UpstreamError) as info:
        await upstream(handler, Sleeps()).send_json("/x", {}, {})
    assert (info.value.kind, info.value.status) == (ErrorKind.BAD_GATEWAY, 502)
    assert "malformed" in info.value.message and "10.0.0.5" not in info.value.message


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_credentials_are_the_proxys_problem_and_the_echo_stays_in_the_log(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    echo = error_body("invalid_request_error", "Incorrect API key provided: sk-proj-****abcd.")
    handler, _ = scripted(httpx.Response(status, json=echo))
    with pytest.raises(UpstreamError) as info:
        await upstream(handler, Sleeps()).send_json("/x", {}, {})
    assert (info.value.kind, info.value.status) == (ErrorKind.BAD_GATEWAY, 502)
    assert "refused the proxy's upstream credentials" in info.value.message
    assert "abcd" not in info.value.message
    assert "sk-proj" not in caplog.text  # logged, masked


async def test_key_like_text_in_other_errors_is_masked() -> None:
    handler, _ = scripted(
        httpx.Response(400, json=error_body("invalid_request_error", "key sk-abc123xyz is bad"))
    )
    with pytest.raises(UpstreamError) as info:
        await upstream(handler, Sleeps()).send_json("/x", {}, {})
    assert info.value.message == "key [redacted] is bad"


@pytest.mark.parametrize(
    "headers", [{"content-type": "text/html"}, {"content-type": "application/json"}, {}]
)
async def test_a_stream_answered_with_another_media_type_is_a_bad_gateway(
    headers: dict[str, str],
) -> None:
    body = Body([b"<html>captive portal</html>"])
    handler, _ = scripted(httpx.Response(200, headers=headers, stream=body))
    with pytest.raises(UpstreamError) as info:
        async with upstream(handler, Sleeps()).stream_json("/x", {}, {}):
            pytest.fail("entered")
    assert (info.value.kind, info.value.status) == (ErrorKind.BAD_GATEWAY, 502)
    assert repr(headers.get("content-type", "none")) in info.value.message
    assert body.closed


async def test_the_shared_client_keeps_no_cookies() -> None:
    sent: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("cookie"))
        return httpx.Response(200, json=OK, headers={"set-cookie": "session=alice; Path=/"})

    client = build_client(httpx.MockTransport(handler))
    up = HTTPUpstream(client, SETTINGS, RetryPolicy(sleep=Sleeps()))
    await up.send_json("/x", {}, {})
    await up.send_json("/x", {}, {})
    assert sent == [None, None]
    assert not client.cookies
    await client.aclose()


async def test_read_timeout_is_a_timeout_without_retry() -> None:
    sleeps = Sleeps()
    handler, seen = scripted(httpx.ReadTimeout("slow"))
    with pytest.raises(UpstreamError) as info:
        await upstream(handler, sleeps).send_json("/x", {}, {})
    assert info.value.kind is ErrorKind.TIMEOUT
    assert len(seen) == 1


async def test_non_json_success_body() -> None:
    handler, _ = scripted(httpx.Response(200, text="hello"))
    with pytest.raises(UpstreamError, match="not JSON"):
        await upstream(handler, Sleeps()).send_json("/x", {}, {})


async def test_timeouts_are_per_request() -> None:
    settings = replace(SETTINGS, connect_timeout=3.0, read_timeout=42.0)
    handler, seen = scripted(httpx.Response(200, json=OK))
    await upstream(handler, Sleeps(), settings).send_json("/x", {}, {})
    timeout = seen[0].extensions["timeout"]
    assert (timeout["connect"], timeout["read"], timeout["pool"]) == (3.0, 42.0, None)


# -- streams -----------------------------------------------------------------------------------------


class Body(httpx.AsyncByteStream):
    """Chunks, then optionally an error, as a transport would raise it mid-body."""

    def __init__(self, chunks: list[bytes], fail: Exception | None = None) -> None:
        self.chunks, self.fail, self.closed = chunks, fail, False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.fail:
            raise self.fail

    async def aclose(self) -> None:
        self.closed = True


SSE = {"content-type": "text/event-stream; charset=utf-8"}


async def test_stream_retries_before_entering_then_yields_chunks() -> None:
    sleeps = Sleeps()
    body = Body([b"data: 1\n\n", b"data: 2\n\n"])
    handler, seen = scripted(httpx.Response(502), httpx.Response(200, headers=SSE, stream=body))
    up = upstream(handler, sleeps)
    async with up.stream_json("/chat/completions", {}, {}) as stream:
        assert stream.status == 200
        assert [c async for c in stream] == [b"data: 1\n\n", b"data: 2\n\n"]
    assert len(seen) == 2 and body.closed


async def test_stream_error_status_raises_on_entering() -> None:
    handler, _ = scripted(
        httpx.Response(429, json=error_body("rate_limit_error", "x"), headers={"retry-after": "99"})
    )
    with pytest.raises(UpstreamError) as info:
        async with upstream(handler, Sleeps()).stream_json("/x", {}, {}):
            pytest.fail("entered")
    assert (info.value.status, info.value.retry_after) == (429, 99.0)


@pytest.mark.parametrize(
    ("fail", "kind"),
    [
        (httpx.ReadTimeout("idle"), ErrorKind.TIMEOUT),
        (httpx.RemoteProtocolError("peer closed"), ErrorKind.API_ERROR),
        (httpx.ReadError("reset"), ErrorKind.API_ERROR),
        (httpx.ConnectTimeout("disconnected"), ErrorKind.API_ERROR),
    ],
)
async def test_no_retry_after_first_byte(fail: Exception, kind: ErrorKind) -> None:
    body = Body([b"data: 1\n\n"], fail)
    handler, seen = scripted(httpx.Response(200, headers=SSE, stream=body))
    got: list[bytes] = []
    with pytest.raises(UpstreamError) as info:
        async with upstream(handler, Sleeps()).stream_json("/x", {}, {}) as stream:
            async for chunk in stream:
                got.append(chunk)
    assert got == [b"data: 1\n\n"]
    assert info.value.kind is kind
    assert len(seen) == 1 and body.closed


async def test_raw_stream_hands_over_error_status() -> None:
    handler, _ = scripted(httpx.Response(400, json=error_body("invalid_request_error", "no")))
    async with upstream(handler, Sleeps()).stream_raw("POST", "/embeddings", b"{}", {}) as stream:
        assert stream.status == 400
        body = b"".join([c async for c in stream])
    assert json.loads(body)["error"]["message"] == "no"
    assert "content-length" not in stream.headers


@pytest.mark.parametrize("status", [401, 403])
async def test_a_passthrough_refused_for_the_proxys_key_never_relays_the_echo(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    echo = error_body("invalid_request_error", "Incorrect API key provided: sk-proj-****abcd.")
    handler, _ = scripted(httpx.Response(status, json=echo))
    with pytest.raises(UpstreamError) as info:
        async with upstream(handler, Sleeps()).stream_raw("POST", "/embeddings", b"{}", {}):
            pass
    assert (info.value.kind, info.value.status) == (ErrorKind.BAD_GATEWAY, 502)
    assert "abcd" not in info.value.message
    assert "sk-proj" not in caplog.text


@pytest.mark.parametrize("path", ["/../admin", "/embeddings/../../admin", "/.."])
async def test_raw_stream_stays_under_the_base_url(path: str) -> None:
    """The last guard of a passthrough: the joined, normalised URL starts with the base URL."""
    handler, seen = scripted(httpx.Response(200, stream=Body([b"x"])))
    with pytest.raises(InvalidInput, match="leaves backend"):
        upstream(handler, Sleeps()).stream_raw("POST", path, b"{}", {})
    assert seen == []


async def test_context_can_be_awaited_first() -> None:
    handler, _ = scripted(httpx.Response(200, stream=Body([b"x"])))
    async with await upstream(handler, Sleeps()).stream_raw("GET", "/models", b"", {}) as stream:
        assert [c async for c in stream] == [b"x"]


def test_parse_retry_after() -> None:
    assert parse_retry_after({"retry-after": "1.5"}, 0) == 1.5
    assert parse_retry_after({"retry-after": "-3"}, 0) == 0.0
    assert parse_retry_after({"retry-after": "soon"}, 0) is None
    assert parse_retry_after({"retry-after": "nan"}, 0) is None
    assert parse_retry_after({}, 0) is None
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}, 0) == 1.5


# -- the real transports against a real server on loopback ------------------------------------------


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


class Server:
    """A raw HTTP/1.1 server on 127.0.0.1:0 whose answer is a script the test controls."""

    def __init__(self) -> None:
        self.step = asyncio.Event()  # the test lets the server go on
        self.closed = asyncio.Event()  # the client's connection went away
        self.mode = "stream"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        await reader.readexactly(length)
        writer.write(HEAD + chunk(b"data: one\n\n"))
        await writer.drain()
        if self.mode == "drop":
            writer.transport.abort()
            return
        await self.step.wait()
        if self.mode == "stream":
            writer.write(chunk(b"data: two\n\n"))
            await writer.drain()
        # now hold the stream open until the client goes away
        while await reader.read(1024):
            pass
        self.closed.set()
        writer.close()


@pytest.fixture
async def server() -> AsyncIterator[tuple[Server, str]]:
    state = Server()
    listener = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    yield state, f"http://127.0.0.1:{port}/v1"
    listener.close()
    await listener.wait_closed()


@pytest.mark.parametrize("engine", ["aiohttp", "httpx"])
async def test_real_server_streams_chunk_by_chunk_and_closes(
    server: tuple[Server, str], engine: Any
) -> None:
    state, url = server
    client = build_client(engine=engine, trust_env=False)
    up = HTTPUpstream(client, replace(SETTINGS, base_url=url))
    try:
        with anyio.fail_after(5):
            async with up.stream_json("/chat/completions", {"stream": True}, {}) as stream:
                chunks = aiter(stream)
                # the server holds "two" back until we have "one": proof of no buffering
                assert await anext(chunks) == b"data: one\n\n"
                state.step.set()
                assert await anext(chunks) == b"data: two\n\n"
            await state.closed.wait()  # leaving the context closed the upstream connection
    finally:
        await client.aclose()


@pytest.mark.parametrize("engine", ["aiohttp", "httpx"])
async def test_real_server_cancelled_reader_closes_upstream(
    server: tuple[Server, str], engine: Any
) -> None:
    state, url = server
    state.mode = "stall"
    client = build_client(engine=engine, trust_env=False)
    up = HTTPUpstream(client, replace(SETTINGS, base_url=url))
    try:
        with anyio.fail_after(5):
            with anyio.CancelScope() as scope:  # as when the client of the proxy goes away
                async with up.stream_json("/chat/completions", {}, {}) as stream:
                    async for _ in stream:
                        scope.cancel()
            assert scope.cancelled_caught
            state.step.set()
            await state.closed.wait()
    finally:
        await client.aclose()


@pytest.mark.parametrize("engine", ["aiohttp", "httpx"])
async def test_real_server_drop_mid_stream(server: tuple[Server, str], engine: Any) -> None:
    state, url = server
    state.mode = "drop"
    client = build_client(engine=engine, trust_env=False)
    up = HTTPUpstream(client, replace(SETTINGS, base_url=url))
    try:
        with anyio.fail_after(5), pytest.raises(UpstreamError) as info:
            async with up.stream_json("/chat/completions", {}, {}) as stream:
                async for _ in stream:
                    pass
        assert info.value.kind is ErrorKind.API_ERROR
    finally:
        await client.aclose()


@pytest.mark.parametrize("engine", ["aiohttp", "httpx"])
async def test_real_server_idle_stream_times_out(server: tuple[Server, str], engine: Any) -> None:
    state, url = server
    state.mode = "stall"
    client = build_client(engine=engine, trust_env=False)
    up = HTTPUpstream(client, replace(SETTINGS, base_url=url, read_timeout=0.3))
    try:
        with anyio.fail_after(5), pytest.raises(UpstreamError) as info:
            async with up.stream_json("/chat/completions", {}, {}) as stream:
                async for _ in stream:
                    pass
        assert info.value.kind is ErrorKind.TIMEOUT
        state.step.set()
    finally:
        await client.aclose()


async def test_connection_refused_on_real_socket() -> None:
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    client = build_client(trust_env=False)
    sleeps = Sleeps()
    up = HTTPUpstream(
        client, replace(SETTINGS, base_url=f"http://127.0.0.1:{port}/v1"), RetryPolicy(sleep=sleeps)
    )
    try:
        with pytest.raises(UpstreamError) as info:
            await up.send_json("/chat/completions", {}, {})
        assert info.value.status == 502
        assert len(sleeps.calls) == 2
    finally:
        await client.aclose()


def test_build_client_prefers_aiohttp() -> None:
    from httpx_aiohttp import AiohttpTransport

    client = build_client()
    assert isinstance(client._transport, AiohttpTransport)
    assert isinstance(build_client(engine="httpx")._transport, httpx.AsyncHTTPTransport)
    mock = httpx.MockTransport(lambda r: httpx.Response(200))
    assert build_client(mock)._transport is mock
