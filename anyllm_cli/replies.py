"""What a pipeline call gives back, and what it learned on the way.

`Call` is the record the server reads for headers, logs and metrics; `JSONReply` is a whole body;
`StreamReply` is an upstream stream not yet opened: entering it opens the upstream (errors raise
before any byte is owed to the client), `chunks()` yields translated bytes as upstream bytes arrive
(or the upstream's own bytes, `verbatim`, when both sides speak the same API) and stops at the
translator's terminal event, `fail()` renders the in-stream error. A stream that ends without the
upstream's finish signal ends in the client's error event (the translator's `finish()`), verbatim
relays included: a stream that looks complete is complete. `meter()` reads token counts from any API's usage as events go by.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, cast

from anyllm_cli.backends.base import UpstreamStream
from anyllm_cli.errors import ErrorKind, UpstreamError
from anyllm_cli.routes import Translator
from anyllm_cli.translate.degradation import Degradation
from anyllm_cli.translate.streams.pump import OutEvent, SSEPump, StreamTranslator


@dataclass(slots=True)
class Call:
    """What one request learned on its way through; the server reads it for headers, logs, metrics."""

    backend: str = ""
    requested_model: str = ""
    upstream_model: str = ""
    stream: bool = False
    degradations: list[Degradation] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    upstream_headers: Mapping[str, str] = field(default_factory=dict)
    upstream_s: float = 0.0  # waiting for the upstream before the client's status was known


@dataclass(frozen=True, slots=True)
class JSONReply:
    body: dict[str, Any]


class StreamReply:
    """An upstream stream not yet opened. Enter it to open (errors raise before any byte is owed),
    iterate `chunks()` for translated bytes, `fail()` for the in-stream error after a failure."""

    media_type = "text/event-stream"

    def __init__(
        self,
        opener: Callable[[], AbstractAsyncContextManager[UpstreamStream]],
        translator: Translator,
        encode: Callable[[OutEvent], bytes],
        call: Call,
        *,
        keepalive: bytes,
        verbatim: bool = False,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._opener = opener
        self._translator = translator
        self._encode = encode
        self._pump = SSEPump(cast(StreamTranslator, translator), encode)
        self._call = call
        self._clock = clock
        self._cm: AbstractAsyncContextManager[UpstreamStream] | None = None
        self._upstream: UpstreamStream | None = None
        self._collected = False
        self.keepalive = keepalive
        self.verbatim = verbatim  # same API both sides: the upstream's bytes go out as they came

    async def __aenter__(self) -> StreamReply:
        start = self._clock()
        cm = self._opener()
        try:
            self._upstream = await cm.__aenter__()
        finally:
            self._call.upstream_s += self._clock() - start
        self._cm = cm
        self._call.upstream_headers = self._upstream.headers
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._collected:  # once, even if left twice
            self._collected = True
            self._call.degradations.extend(self._translator.degradations)
        if self._cm is not None:
            cm, self._cm = self._cm, None
            await cm.__aexit__(exc_type, exc, tb)

    async def chunks(self) -> AsyncIterator[bytes]:
        """Translated bytes as upstream bytes arrive. Raises UpstreamError (also after the client's
        error event went out, so the failure is recorded), or InvalidInput when the upstream's
        stream does not parse."""
        if self._upstream is None:
            raise RuntimeError("enter the StreamReply before reading it")
        pump = self._pump
        async for raw in self._upstream:
            out = pump.feed(raw)  # verbatim: still decoded, for usage and to catch a bad stream
            if self.verbatim and raw:
                yield raw
            elif out:
                yield out
            if pump.done or self._translator.done:  # nothing may follow a terminal event
                break
        else:
            # The end of the bytes: the client's terminal events, or (no finish signal came) its
            # error event. A verbatim relay's finish() gives only that error event.
            tail = pump.finish()
            if tail:
                yield tail
        failure = self._translator.failure
        if failure is not None:  # the client has its error event; the caller records the failure
            raise UpstreamError(*failure)

    def fail(self, kind: ErrorKind, message: str) -> bytes:
        """The client's in-stream error for a failure after the first byte."""
        return b"".join(self._encode(e) for e in self._translator.fail(kind, message))


Reply = JSONReply | StreamReply


def meter(event: dict[str, Any], call: Call) -> None:
    """Token counts from an Anthropic message/event, an OpenAI response/chunk or a Gemini
    response/chunk (cumulative)."""
    meta = event.get("usageMetadata")
    if isinstance(meta, dict):
        call.tokens_in = _int(meta.get("promptTokenCount")) or call.tokens_in
        out = _int(meta.get("candidatesTokenCount")) + _int(meta.get("thoughtsTokenCount"))
        call.tokens_out = out or call.tokens_out
        return
    kind = event.get("type")
    if kind == "message_start":
        event = event.get("message") or {}
    usage = event.get("usage")
    if not isinstance(usage, dict):
        return
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        call.tokens_in = _int(usage.get("prompt_tokens")) or call.tokens_in
        call.tokens_out = _int(usage.get("completion_tokens")) or call.tokens_out
        return
    prompt = (
        _int(usage.get("input_tokens"))
        + _int(usage.get("cache_read_input_tokens"))
        + _int(usage.get("cache_creation_input_tokens"))
    )
    call.tokens_in = prompt or call.tokens_in
    call.tokens_out = _int(usage.get("output_tokens")) or call.tokens_out


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0
