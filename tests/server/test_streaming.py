"""The streaming driver with a scripted upstream and a fake ASGI client: status timing, pings,
failures before and after the first byte, and disconnects."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from anyllm_cli.backends.base import UpstreamStream
from anyllm_cli.errors import ErrorKind, UpstreamError
from anyllm_cli.pipeline import Call, ClientRequest, StreamReply
from anyllm_cli.pipeline.completion import Completion
from anyllm_cli.pipeline.seams import ClientAPI
from anyllm_cli.server.context import RequestContext
from anyllm_cli.server.formats import ClientFormat
from anyllm_cli.server.streaming import StreamDriver
from anyllm_cli.translate.streams.messages_via_chat import MessagesViaChatStream
from anyllm_cli.translate.streams.sse import KEEPALIVE_COMMENT, PING, encode_anthropic
from tests.conftest import Recorder, chat_chunk, sse

pytestmark = pytest.mark.anyio

FIRST = sse(chat_chunk({"role": "assistant", "content": ""}), chat_chunk({"content": "hi"}))
REST = sse(chat_chunk({}, "stop"), "[DONE]")
Item = bytes | Exception


class Upstream:
    """Chunks the test pushes (or raises) while the driver reads; records whether it was closed."""

    def __init__(self, open_error: Exception | None = None) -> None:
        self.tx: MemoryObjectSendStream[Item]
        self.rx: MemoryObjectReceiveStream[Item]
        self.tx, self.rx = anyio.create_memory_object_stream[Item](100)
        self.open_error = open_error
        self.closed = False
        self.status = 200
        self.headers: dict[str, str] = {}

    def push(self, *items: Item) -> None:
        for item in items:
            self.tx.send_nowait(item)

    def end(self) -> None:
        self.tx.close()

    async def _chunks(self) -> AsyncIterator[bytes]:
        async for item in self.rx:
            if isinstance(item, Exception):
                raise item
            yield item

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    @asynccontextmanager
    async def open(self) -> AsyncIterator[UpstreamStream]:
        try:
            if self.open_error is not None:
                raise self.open_error
            yield self
        finally:
            self.closed = True
            self.tx.close()
            self.rx.close()


class Client:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.gone = anyio.Event()
        self.on_body: Any = None

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Any) -> None:
        self.messages.append(message)
        if message["type"] == "http.response.body" and self.on_body is not None:
            self.on_body(message["body"])

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.messages[0]["headers"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])

    def events(self) -> list[dict[str, Any]]:
        return [
            json.loads(line[6:])
            for line in self.body.decode().splitlines()
            if line.startswith("data: ")
        ]


def _driver(
    upstream: Upstream,
    *,
    fmt: ClientFormat = ClientFormat.ANTHROPIC,
    keepalive: bytes = PING,
    recorder: Recorder | None = None,
) -> tuple[StreamDriver, RequestContext]:
    ctx = RequestContext(request_id="req_t", fmt=fmt, start=0.0)
    api: ClientAPI = "messages" if fmt is ClientFormat.ANTHROPIC else "chat"
    observers = (recorder,) if recorder is not None else ()
    completion = Completion(ClientRequest(api, b""), observers=observers)
    completion.call.stream = True
    reply = StreamReply(
        upstream.open,
        MessagesViaChatStream(requested_model="claude-x", input_tokens=5),
        encode_anthropic,  # type: ignore[arg-type]
        completion,
        keepalive=keepalive,
    )
    ctx.call = reply.call
    return StreamDriver(reply, ctx, ping_interval=0.01), ctx


async def _run(driver: StreamDriver, client: Client) -> None:
    with anyio.fail_after(5):
        await driver(client.receive, client.send)


async def test_a_whole_stream() -> None:
    upstream, client = Upstream(), Client()
    upstream.push(FIRST, REST)
    upstream.end()
    recorder = Recorder()
    driver, _ = _driver(upstream, recorder=recorder)
    await _run(driver, client)
    assert client.status == 200
    assert client.headers[b"content-type"].startswith(b"text/event-stream")
    types = [e["type"] for e in client.events()]
    assert types[0] == "message_start"
    assert types[-1] == "message_stop"
    assert client.messages[-1]["more_body"] is False
    assert upstream.closed
    outcome = recorder.one()
    assert (outcome.status, outcome.error, outcome.disconnected) == (200, None, False)
    assert outcome.ttft_s is not None and outcome.stream


async def test_an_upstream_refusal_is_an_http_error_with_retry_after() -> None:
    error = UpstreamError(ErrorKind.RATE_LIMIT, "slow down", status=429, retry_after=4)
    upstream, client = Upstream(open_error=error), Client()
    recorder = Recorder()
    driver, ctx = _driver(upstream, recorder=recorder)
    await _run(driver, client)
    assert client.status == 429
    assert client.headers[b"retry-after"] == b"4"
    assert json.loads(client.body)["error"]["type"] == "rate_limit_error"
    assert ctx.error_type == "rate_limit_error"
    outcome = recorder.one()
    assert (outcome.status, outcome.error, outcome.ttft_s) == (429, ErrorKind.RATE_LIMIT, None)


async def test_a_failure_before_the_first_byte_is_still_an_http_error() -> None:
    upstream, client = Upstream(), Client()
    upstream.push(UpstreamError(ErrorKind.API_ERROR, "dropped"))
    recorder = Recorder()
    driver, _ = _driver(upstream, recorder=recorder)
    await _run(driver, client)
    assert client.status == 500
    assert json.loads(client.body)["error"]["message"] == "dropped"
    outcome = recorder.one()
    assert (outcome.status, outcome.error_message) == (500, "dropped")


async def test_a_failure_after_the_first_byte_is_an_error_event() -> None:
    upstream, client = Upstream(), Client()
    upstream.push(FIRST, UpstreamError(ErrorKind.TIMEOUT, "idle for 1s"))
    recorder = Recorder()
    driver, ctx = _driver(upstream, recorder=recorder)
    await _run(driver, client)
    outcome = recorder.one()
    assert (outcome.status, outcome.error) == (200, ErrorKind.TIMEOUT)
    assert outcome.ttft_s is not None
    assert client.status == 200
    events = client.events()
    assert events[-1] == {
        "type": "error",
        "error": {"type": "timeout_error", "message": "idle for 1s"},
    }
    assert "message_stop" not in [e["type"] for e in events]
    assert client.messages[-1]["more_body"] is False
    assert ctx.error_type == "timeout_error"


async def test_an_upstream_stream_that_does_not_parse_is_an_error_event() -> None:
    upstream, client = Upstream(), Client()
    upstream.push(FIRST, b"data: {not json}\n\n")
    upstream.end()
    driver, _ = _driver(upstream)
    await _run(driver, client)
    last = client.events()[-1]
    assert last["type"] == "error"
    assert "does not parse" in last["error"]["message"]


async def test_silence_gets_pings_and_commits_the_status() -> None:
    upstream, client = Upstream(), Client()
    pings = 0

    def on_body(body: bytes) -> None:
        nonlocal pings
        if body == PING:
            pings += 1
            if pings == 2:
                upstream.push(FIRST, REST)
                upstream.end()

    client.on_body = on_body
    driver, _ = _driver(upstream)
    await _run(driver, client)
    assert client.status == 200
    assert client.messages[1]["body"] == PING
    assert [e["type"] for e in client.events()][-1] == "message_stop"


async def test_openai_clients_get_keepalive_comments() -> None:
    upstream, client = Upstream(), Client()

    def on_body(body: bytes) -> None:
        if body == KEEPALIVE_COMMENT:
            upstream.end()

    client.on_body = on_body
    driver, _ = _driver(upstream, fmt=ClientFormat.OPENAI, keepalive=KEEPALIVE_COMMENT)
    await _run(driver, client)
    assert client.messages[1]["body"] == KEEPALIVE_COMMENT


async def test_a_disconnect_closes_the_upstream() -> None:
    upstream, client = Upstream(), Client()
    upstream.push(FIRST)

    def on_body(body: bytes) -> None:
        if b"message_start" in body:
            client.gone.set()

    client.on_body = on_body
    recorder = Recorder()
    driver, _ = _driver(upstream, recorder=recorder)
    await _run(driver, client)
    assert driver.disconnected
    assert upstream.closed
    outcome = recorder.one()
    assert (outcome.status, outcome.disconnected, outcome.error) == (200, True, None)


async def test_a_disconnect_before_the_first_byte_is_a_499() -> None:
    upstream, client = Upstream(), Client()
    recorder = Recorder()
    driver, _ = _driver(upstream, recorder=recorder)
    driver.ping_interval = 5.0
    client.gone.set()
    await _run(driver, client)
    assert client.messages == []
    assert upstream.closed
    outcome = recorder.one()
    assert (outcome.status, outcome.disconnected) == (499, True)


async def test_degradations_of_the_stream_reach_the_call() -> None:
    upstream, client = Upstream(), Client()
    upstream.push(FIRST)  # no finish_reason: the translator records it at the end
    upstream.end()
    driver, ctx = _driver(upstream)
    await _run(driver, client)
    assert isinstance(ctx.call, Call)
    assert "stream_ended_without_finish_reason" in {d.code for d in ctx.call.degradations}
