"""What a pipeline call gives back, and what it learned on the way.

`Call` is the per-request record the pipeline fills (backend, models, usage, degradations, upstream
headers, the guard's reply headers); the server reads it for response headers. The replies:

    JSONReply     a whole body; the call completed before it was returned
    StreamReply   an upstream stream not yet opened: entering it opens the upstream (errors raise
                  before any byte is owed to the client), `chunks()` yields translated bytes as
                  upstream bytes arrive (or the upstream's own bytes, `verbatim`, when both sides
                  speak the same API) and stops at the translator's terminal event; a stream that
                  ends without the upstream's finish signal ends in the client's error event (the
                  translator's `finish()`), verbatim relays included: a stream that looks complete
                  is complete; `fail()` renders the in-stream error; leaving it completes
    ForwardReply  a passthrough: the upstream's status, headers and bytes as they are (`read()`
                  takes them whole, as a batch item does)

A stream's driver reports what the client saw (`first_byte`, `failed`, `client_left`); the reply
hands it to the call's `Completion` when it is left, so the completion point sees every stream once.
`meter()` reads token counts from any API's usage as events go by.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from anyllm_cli.backends.base import UpstreamStream
from anyllm_cli.errors import ErrorKind, UpstreamError, kind_from_status
from anyllm_cli.models import codec
from anyllm_cli.pipeline.seams import Usage
from anyllm_cli.translate.degradation import Degradation
from anyllm_cli.translate.streams.pump import OutEvent, SSEPump, StreamTranslator

if TYPE_CHECKING:
    from anyllm_cli.pipeline.completion import Completion


@dataclass(slots=True)
class Call:
    """What one request learned on its way through; the server reads it for response headers."""

    backend: str = ""
    requested_model: str = ""
    upstream_model: str = ""
    stream: bool = False
    degradations: list[Degradation] = field(default_factory=list)
    tokens_in: int = 0  # prompt tokens, cache reads and writes included
    tokens_out: int = 0  # reasoning included
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0
    upstream_headers: Mapping[str, str] = field(default_factory=dict)
    upstream_s: float = 0.0  # waiting for the upstream before the client's status was known
    reply_headers: Mapping[str, str] = field(default_factory=dict)  # the guard's (rate limits)
    upstream_body: Any = None  # the body sent upstream (a dict, or bytes for a passthrough)

    def usage(self) -> Usage:
        return Usage(
            self.tokens_in, self.tokens_out, self.cache_read, self.cache_write, self.reasoning
        )


@dataclass(frozen=True, slots=True)
class JSONReply:
    body: dict[str, Any]
    call: Call = field(default_factory=Call, compare=False)


class _UpstreamReply:
    """What every reply that reads an upstream shares: entering opens it (a failure completes the
    call, then raises), leaving closes it and then completes the call once, with what was seen."""

    def __init__(
        self,
        opener: Callable[[], AbstractAsyncContextManager[UpstreamStream]],
        completion: Completion,
    ) -> None:
        self._opener = opener
        self.completion = completion
        self.call = completion.call
        self._cm: AbstractAsyncContextManager[UpstreamStream] | None = None
        self._upstream: UpstreamStream | None = None

    async def _open(self) -> UpstreamStream:
        cm = self._opener()
        try:
            upstream = await cm.__aenter__()
        except BaseException as exc:
            await self.completion.fail(exc)
            raise
        self._cm, self._upstream = cm, upstream
        self.call.upstream_headers = upstream.headers
        return upstream

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._cm is not None:
                cm, self._cm = self._cm, None
                await cm.__aexit__(exc_type, exc, tb)
        finally:
            await self._complete(exc)

    async def _complete(self, exc: BaseException | None) -> None:
        raise NotImplementedError


class StreamReply(_UpstreamReply):
    """An upstream stream not yet opened. Enter it to open (errors raise before any byte is owed),
    iterate `chunks()` for translated bytes, `fail()` for the in-stream error after a failure.
    Leaving it completes the call with what the driver reported."""

    media_type = "text/event-stream"

    def __init__(
        self,
        opener: Callable[[], AbstractAsyncContextManager[UpstreamStream]],
        translator: StreamTranslator,
        encode: Callable[[OutEvent], bytes],
        completion: Completion,
        *,
        keepalive: bytes,
        verbatim: bool = False,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__(opener, completion)
        self._translator = translator
        self._encode = encode
        self._pump = SSEPump(translator, encode)
        self._clock = clock
        self.keepalive = keepalive
        self.verbatim = verbatim  # same API both sides: the upstream's bytes go out as they came
        # what the client saw, reported by the driver
        self.status = 200
        self.error: ErrorKind | None = None
        self.error_message = ""
        self.disconnected = False
        self.ttft_s: float | None = None

    async def __aenter__(self) -> StreamReply:
        start = self._clock()
        try:
            await self._open()
        finally:
            self.call.upstream_s += self._clock() - start
        return self

    async def _complete(self, exc: BaseException | None) -> None:
        if self.completion.done:
            return
        self.call.degradations.extend(self._translator.degradations)
        if exc is not None and self.error is None and not self.disconnected:
            await self.completion.fail(exc)
            return
        await self.completion.finish(
            status=self.status,
            error=self.error,
            message=self.error_message,
            disconnected=self.disconnected,
            ttft_s=self.ttft_s,
        )

    async def chunks(self) -> AsyncIterator[bytes]:
        """Translated bytes as upstream bytes arrive. Raises UpstreamError (also after the client's
        error event went out, so the failure is recorded), or InvalidInput when the upstream's
        stream does not parse."""
        if self._upstream is None:
            raise RuntimeError("enter the StreamReply before reading it")
        pump = self._pump
        translator = self._translator
        async for raw in self._upstream:
            out = pump.feed(raw)  # verbatim: still decoded, for usage and to catch a bad stream
            if self.verbatim and raw:
                yield raw
            elif out:
                yield out
            if pump.done or translator.done:  # nothing may follow a terminal event
                break
        else:
            # The end of the bytes: the client's terminal events, or (no finish signal came) its
            # error event. A verbatim relay's finish() gives only that error event.
            tail = pump.finish()
            if tail:
                yield tail
        failure = translator.failure
        if failure is not None:  # the client has its error event; the caller records the failure
            raise UpstreamError(*failure)

    def fail(self, kind: ErrorKind, message: str) -> bytes:
        """The client's in-stream error for a failure after the first byte."""
        return b"".join(self._encode(e) for e in self._translator.fail(kind, message))

    # -- what the driver reports -------------------------------------------------------------------

    def first_byte(self) -> None:
        if self.ttft_s is None:
            self.ttft_s = self._clock() - self.completion.start

    def failed(self, kind: ErrorKind, message: str, status: int) -> None:
        self.error, self.error_message, self.status = kind, message, status

    def client_left(self, *, committed: bool = True) -> None:
        self.disconnected = True
        if not committed:  # nothing reached the client: nginx's "client closed request"
            self.status = 499


# A passthrough keeps at most this much of a JSON reply, to meter it (embeddings report usage).
_FORWARD_KEEP = 1 << 20


class ForwardReply(_UpstreamReply):
    """A passthrough (`/v1/embeddings`, ...): the upstream's status, headers and bytes as they are.
    Entering opens the upstream (any status comes back); leaving completes the call."""

    def __init__(
        self,
        opener: Callable[[], AbstractAsyncContextManager[UpstreamStream]],
        completion: Completion,
    ) -> None:
        super().__init__(opener, completion)
        self.status = 0
        self.headers: Mapping[str, str] = {}
        self.disconnected = False
        self.ttft_s: float | None = None
        self._kept: list[bytes] | None = None
        self._size = 0
        self._keep_max: float = _FORWARD_KEEP

    async def __aenter__(self) -> ForwardReply:
        upstream = await self._open()
        self.status = upstream.status
        self.headers = upstream.headers
        if self.headers.get("content-type", "").startswith("application/json"):
            self._kept = []
        return self

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._upstream is None:
            raise RuntimeError("enter the ForwardReply before reading it")
        async for chunk in self._upstream:
            if self._kept is not None:
                self._size += len(chunk)
                if self._size <= self._keep_max:
                    self._kept.append(chunk)
                else:
                    self._kept = None
            yield chunk

    async def read(self) -> bytes:
        """The whole body, for a caller that keeps it (a batch item): a JSON reply is metered
        however large it is."""
        self._keep_max = math.inf
        return b"".join([chunk async for chunk in self.chunks()])

    def client_left(self) -> None:
        self.disconnected = True

    async def _complete(self, exc: BaseException | None) -> None:
        if self.completion.done:
            return
        if exc is not None and not self.disconnected:
            await self.completion.fail(exc)
            return
        response = None
        if self._kept:
            try:
                parsed = codec.loads(b"".join(self._kept))
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                meter(parsed, self.call)
                response = parsed
        error = kind_from_status(self.status) if self.status >= 400 else None
        await self.completion.finish(
            status=self.status,
            error=error,
            disconnected=self.disconnected,
            response=response,
        )


Reply = JSONReply | StreamReply | ForwardReply


def meter(event: dict[str, Any], call: Call) -> None:
    """Token counts from an Anthropic message/event, an OpenAI response/chunk (Chat or Responses) or
    a Gemini response/chunk. Counts are cumulative: a later report replaces an earlier one."""
    meta = event.get("usageMetadata")
    if isinstance(meta, dict):
        _meter_gemini(meta, call)
        return
    if event.get("type") == "message_start":
        event = event.get("message") or {}
    elif event.get("type") == "response.completed":  # Responses API stream
        event = event.get("response") or {}
    usage = event.get("usage")
    if not isinstance(usage, dict):
        return
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        call.tokens_in = _int(usage.get("prompt_tokens")) or call.tokens_in
        call.tokens_out = _int(usage.get("completion_tokens")) or call.tokens_out
        call.cache_read = _detail(usage, "prompt_tokens_details", "cached_tokens", call.cache_read)
        call.reasoning = _detail(
            usage, "completion_tokens_details", "reasoning_tokens", call.reasoning
        )
        return
    if "input_tokens_details" in usage or "output_tokens_details" in usage:  # Responses API
        call.tokens_in = _int(usage.get("input_tokens")) or call.tokens_in
        call.tokens_out = _int(usage.get("output_tokens")) or call.tokens_out
        call.cache_read = _detail(usage, "input_tokens_details", "cached_tokens", call.cache_read)
        call.reasoning = _detail(usage, "output_tokens_details", "reasoning_tokens", call.reasoning)
        return
    read = _int(usage.get("cache_read_input_tokens"))
    write = _int(usage.get("cache_creation_input_tokens"))
    call.cache_read = read or call.cache_read
    call.cache_write = write or call.cache_write
    prompt = _int(usage.get("input_tokens")) + read + write
    call.tokens_in = prompt or call.tokens_in
    call.tokens_out = _int(usage.get("output_tokens")) or call.tokens_out


def _meter_gemini(meta: dict[str, Any], call: Call) -> None:
    call.tokens_in = _int(meta.get("promptTokenCount")) or call.tokens_in
    thoughts = _int(meta.get("thoughtsTokenCount"))
    out = _int(meta.get("candidatesTokenCount")) + thoughts
    call.tokens_out = out or call.tokens_out
    call.reasoning = thoughts or call.reasoning
    call.cache_read = _int(meta.get("cachedContentTokenCount")) or call.cache_read


def _detail(usage: dict[str, Any], group: str, name: str, old: int) -> int:
    details = usage.get(group)
    return (_int(details.get(name)) or old) if isinstance(details, dict) else old


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0
