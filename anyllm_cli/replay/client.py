"""The senders: one recorded request out again, to a proxy by URL or through an in-process pipeline.

    Exchange ──HTTPSender (httpx, the proxy's routes, ANYLLM_API_KEY)──────────┐
             └─PipelineSender (`Pipeline.run`, as `serve` builds it, no server)──┴──> Sent

Both send the request in its original API, streaming when it was recorded streaming, and return a
`Sent`: the status, the reply (a stream folded into its final message, `fold.py`), the error kind
(an `ErrorKind` value; `connection` when nothing answered; `incomplete_stream` for a stream that
stopped without its end mark: `[DONE]`, `message_stop`, a `finishReason`), the latency (to the last byte) and
the time to the first body byte of a stream. Neither raises for a failed call: a failure is a
result to count. What it gives up: the client's own headers are not replayed except
`anthropic-version`/`anthropic-beta` (credentials were never recorded).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

import httpx

from anyllm_cli.errors import (
    ANTHROPIC_ERRORS,
    AnyllmError,
    ErrorKind,
    InvalidInput,
    UpstreamError,
    parse_error_body,
)
from anyllm_cli.models import codec
from anyllm_cli.pipeline import ClientRequest, JSONReply, Outcome, Pipeline, StreamReply
from anyllm_cli.replay.cassette import Exchange
from anyllm_cli.replay.fold import fold
from anyllm_cli.translate.streams.sse import SSEDecoder

_PASS_HEADERS = ("anthropic-version", "anthropic-beta", "openai-beta")
CONNECTION = "connection"
INCOMPLETE = "incomplete_stream"


@dataclass(frozen=True, slots=True)
class Sent:
    status: int  # 0 when nothing answered
    response: dict[str, Any] | None
    error: str | None
    error_message: str
    latency_s: float
    ttft_s: float | None = None
    cost_usd: float | None = None  # in-process, from the pipeline's Pricer
    tokens: tuple[int, int] | None = None  # in-process: (in, out) as the pipeline metered them

    @property
    def ok(self) -> bool:
        return self.error is None


class Sender(Protocol):
    name: str

    async def send(self, exchange: Exchange) -> Sent: ...


class _Stream:
    """Times and folds one stream of SSE bytes."""

    def __init__(self, api: str, clock: Callable[[], float], start: float) -> None:
        self.api = api
        self.clock = clock
        self.start = start
        self.ttft: float | None = None
        self.events: list[dict[str, Any]] = []
        self.complete = False  # the API's end mark arrived: [DONE], message_stop, a finishReason
        self._decoder = SSEDecoder()

    def feed(self, chunk: bytes) -> None:
        if self.ttft is None and chunk:
            self.ttft = self.clock() - self.start
        self._take(self._decoder.decode(chunk))

    def _take(self, events: list[Any]) -> None:
        for event in events:
            if event.data == "[DONE]":
                self.complete = True
            if not event.data or event.data == "[DONE]":
                continue
            try:
                parsed = codec.loads(event.data)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                self.events.append(parsed)
                self.complete = self.complete or _ends(self.api, parsed)

    def sent(self, status: int, problem: tuple[str, str] | None = None) -> Sent:
        self._take(self._decoder.flush())
        folded = fold(self.api, self.events)
        latency = self.clock() - self.start
        if problem is not None:
            return Sent(status, folded.response, problem[0], problem[1], latency, self.ttft)
        if folded.error is not None:
            kind, message = parse_error_body(folded.error, status)
            return Sent(status, folded.response, kind.value, message, latency, self.ttft)
        if not self.complete:  # a stream that stops without its end mark is cut, not answered
            problem_text = "the stream ended without its end mark"
            return Sent(status, folded.response, INCOMPLETE, problem_text, latency, self.ttft)
        return Sent(status, folded.response, None, "", latency, self.ttft)


def _ends(api: str, event: dict[str, Any]) -> bool:
    if api == "messages":
        return event.get("type") == "message_stop"
    if api == "gemini":
        candidates = event.get("candidates") or [{}]
        return isinstance(candidates[0], dict) and bool(candidates[0].get("finishReason"))
    return False  # chat: only [DONE]


def _failed(status: int, body: Any, latency: float) -> Sent:
    kind, message = parse_error_body(body, status)
    return Sent(status, None, kind.value, message, latency)


class HTTPSender:
    """Re-sends to a running proxy (or any server with the same routes)."""

    def __init__(
        self,
        base_url: str,
        client: httpx.AsyncClient,
        *,
        api_key: str | None = None,
        timeout: float = 600.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._timeout = timeout
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.name = self.base_url
        self._client = client
        self._key = api_key
        self._clock = clock

    def _headers(self, exchange: Exchange) -> dict[str, str]:
        headers = {k: exchange.headers[k] for k in _PASS_HEADERS if k in exchange.headers}
        headers["content-type"] = "application/json"
        if self._key:
            if exchange.api == "messages":
                headers["x-api-key"] = self._key
            elif exchange.api == "gemini":
                headers["x-goog-api-key"] = self._key
            else:
                headers["authorization"] = f"Bearer {self._key}"
        return headers

    async def send(self, exchange: Exchange) -> Sent:
        url = self.base_url + exchange.path()
        content = codec.dumps(exchange.body)
        headers = self._headers(exchange)
        start = self._clock()
        try:
            if exchange.stream:
                return await self._stream(exchange, url, content, headers, start)
            reply = await self._client.post(
                url, content=content, headers=headers, timeout=self._timeout
            )
        except httpx.TimeoutException as exc:
            return Sent(0, None, ErrorKind.TIMEOUT.value, str(exc), self._clock() - start)
        except httpx.HTTPError as exc:
            return Sent(0, None, CONNECTION, str(exc) or type(exc).__name__, self._clock() - start)
        latency = self._clock() - start
        body = _json(reply.content)
        if reply.status_code >= 400:
            return _failed(reply.status_code, body, latency)
        return Sent(reply.status_code, body if isinstance(body, dict) else None, None, "", latency)

    async def _stream(
        self, exchange: Exchange, url: str, content: bytes, headers: Mapping[str, str], start: float
    ) -> Sent:
        request = self._client.stream(
            "POST", url, content=content, headers=headers, timeout=self._timeout
        )
        async with request as reply:
            if reply.status_code >= 400:
                body = _json(await reply.aread())
                return _failed(reply.status_code, body, self._clock() - start)
            stream = _Stream(exchange.api, self._clock, start)
            try:
                async for chunk in reply.aiter_bytes():
                    stream.feed(chunk)
            except httpx.HTTPError as exc:
                return stream.sent(reply.status_code, (CONNECTION, f"stream cut: {exc}"))
            return stream.sent(reply.status_code)


def _json(raw: bytes) -> Any:
    try:
        return codec.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace")


class Outcomes:
    """A `CallObserver` for in-process replay: each call's Outcome (cost, usage), by request id."""

    wants_bodies = False

    def __init__(self) -> None:
        self._seen: dict[str, Outcome] = {}

    async def on_complete(self, outcome: Outcome) -> None:
        self._seen[outcome.request.request_id] = outcome

    def pop(self, request_id: str) -> Outcome | None:
        return self._seen.pop(request_id, None)


class PipelineSender:
    """Re-sends through an in-process `Pipeline.run` (the backends `serve` would build), no server.

    `backend` pins every request to one configured backend; None keeps each request's recorded
    backend when it is configured, else the router's default. The cost comes from the call's
    Outcome (the pipeline's Pricer), when `outcomes` observes the pipeline."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        backend: str | None,
        name: str,
        outcomes: Outcomes | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.name = name
        self._pipeline = pipeline
        self._backend = backend
        self._outcomes = outcomes
        self._clock = clock
        self._ids = itertools.count()

    def _request(self, exchange: Exchange) -> ClientRequest:
        backend = self._backend
        if backend is None and exchange.backend in self._pipeline.backends:
            backend = exchange.backend
        request_id = f"replay-{id(self):x}-{next(self._ids)}"  # unique across senders
        return replace(exchange.to_request(request_id=request_id), backend=backend)

    async def send(self, exchange: Exchange) -> Sent:
        request = self._request(exchange)
        start = self._clock()
        try:
            reply = await self._pipeline.run(request)
            if isinstance(reply, JSONReply):
                sent = Sent(200, reply.body, None, "", self._clock() - start)
            elif isinstance(reply, StreamReply):
                sent = await self._read(exchange, reply, start)
            else:  # a passthrough: never built from an Exchange
                raise InvalidInput(f"api {exchange.api!r} cannot be replayed")
        except UpstreamError as exc:
            sent = Sent(exc.status, None, exc.kind.value, exc.message, self._clock() - start)
        except AnyllmError as exc:
            status = ANTHROPIC_ERRORS[exc.kind][0]
            sent = Sent(status, None, exc.kind.value, exc.message, self._clock() - start)
        outcome = self._outcomes.pop(request.request_id) if self._outcomes else None
        if outcome is not None:
            usage = outcome.usage
            tokens = (usage.input_tokens, usage.output_tokens)
            sent = replace(sent, cost_usd=outcome.cost_usd, tokens=tokens)
        return sent

    async def _read(self, exchange: Exchange, reply: StreamReply, start: float) -> Sent:
        stream = _Stream(exchange.api, self._clock, start)
        async with reply:
            try:
                async for chunk in reply.chunks():
                    reply.first_byte()
                    stream.feed(chunk)
            except AnyllmError as exc:  # after the first byte: an in-stream error, as a client sees
                reply.failed(exc.kind, exc.message, 200)
                stream.feed(reply.fail(exc.kind, exc.message))
        return stream.sent(200)
