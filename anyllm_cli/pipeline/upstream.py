"""The two ways a call reaches its backend, and the relay translator for same-API streams.

`send` posts a JSON body and records the upstream's headers and the time spent waiting; `stream`
makes the `StreamReply` whose events are metered (and kept, when an observer wants bodies) as they
are encoded for the client. `Relay` passes same-API events through, reading usage on the way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from anyllm_cli.backends.base import Backend, UpstreamReply
from anyllm_cli.errors import (
    UNFINISHED,
    ErrorKind,
    anthropic_error,
    gemini_error,
    openai_error,
    parse_error_body,
)
from anyllm_cli.models import codec
from anyllm_cli.pipeline.completion import Completion
from anyllm_cli.pipeline.replies import Call, StreamReply, meter
from anyllm_cli.translate.degradation import Degradation
from anyllm_cli.translate.streams.pump import OutEvent, StreamTranslator
from anyllm_cli.translate.streams.sse import (
    KEEPALIVE_COMMENT,
    PING,
    anthropic_frame,
    encode_openai,
    openai_frame,
)


async def send(
    backend: Backend,
    path: str,
    body: dict[str, Any],
    headers: Mapping[str, str],
    *,
    call: Call,
    clock: Callable[[], float] = time.perf_counter,
) -> UpstreamReply:
    """POST the body; error statuses raise (the backend classifies them)."""
    call.upstream_body = body
    start = clock()
    try:
        reply = await backend.send(path, body, headers)
    finally:
        call.upstream_s += clock() - start
    call.upstream_headers = reply.headers
    return reply


def stream(
    backend: Backend,
    path: str,
    body: dict[str, Any],
    headers: Mapping[str, str],
    *,
    translator: StreamTranslator,
    done: Completion,
    anthropic: bool,
    verbatim: bool = False,
    clock: Callable[[], float] = time.perf_counter,
) -> StreamReply:
    """The upstream stream, not yet opened, with its events metered as they are encoded."""
    call = done.call
    call.upstream_body = body
    keep = done.events if done.keep_bodies else None

    frame = anthropic_frame if anthropic else openai_frame

    def metered(event: OutEvent) -> bytes:
        if event is None:
            return encode_openai(None)
        meter(event, call)
        data = codec.dumps(event)  # what encode_* would serialise, kept when bodies are kept
        if keep is not None:
            keep.append(data)
        return frame(event, data)

    return StreamReply(
        lambda: backend.stream(path, body, headers),
        translator,
        metered,
        done,
        keepalive=PING if anthropic else KEEPALIVE_COMMENT,
        verbatim=verbatim,
        clock=clock,
    )


class Relay:
    """A stream translator for same-API relays: events pass through, usage is read on the way.

    `hide_usage` drops the usage-only chunk (and `usage` fields) the proxy asked for on the client's
    behalf, so an OpenAI client that did not ask for usage sees the stream it expects. The upstream's
    finish signal (`message_stop`; a Chat `finish_reason`) must go by, or `finish()` gives the error
    event; an upstream error event is the last thing relayed (no `[DONE]` after it)."""

    def __init__(self, call: Call, *, anthropic: bool, hide_usage: bool = False) -> None:
        self.degradations: list[Degradation] = []
        self._call = call
        self._anthropic = anthropic
        self._hide_usage = hide_usage
        self._signalled = False
        self.done = False
        self.failure: tuple[ErrorKind, str] | None = None

    def feed(self, event: dict[str, Any]) -> list[OutEvent]:
        if self.done:
            return []
        if event.get("type") == "error" or event.get("error") is not None:
            self.done = True
            self.failure = parse_error_body(event)
            return [event]
        if self._anthropic:
            self._signalled = self.done = event.get("type") == "message_stop"
        elif _chat_finished(event):
            self._signalled = True
        if self._hide_usage and event.get("usage") is not None:
            meter(event, self._call)
            del event["usage"]
            if not event.get("choices"):
                return []
        return [event]

    def finish(self) -> list[OutEvent]:
        if self.done:
            return []
        if not self._signalled:
            return self.fail(ErrorKind.API_ERROR, UNFINISHED)
        self.done = True
        return [] if self._anthropic else [None]

    def fail(self, kind: ErrorKind, message: str) -> list[OutEvent]:
        if self.done:
            return []
        self.done = True
        self.failure = (kind, message)
        if self._anthropic:
            return [anthropic_error(kind, message)[1]]
        return [openai_error(kind, message)[1]]


def _chat_finished(chunk: dict[str, Any]) -> bool:
    choices = chunk.get("choices")
    return isinstance(choices, list) and any(
        isinstance(c, dict) and c.get("finish_reason") for c in choices
    )


def gemini_error_chunk(kind: ErrorKind, message: str) -> dict[str, Any]:
    return gemini_error(kind, message)[1]


def gemini_finished(chunk: dict[str, Any]) -> bool:
    """A candidate's finishReason, or a prompt blocked outright (then no candidate comes)."""
    feedback = chunk.get("promptFeedback")
    if isinstance(feedback, dict) and feedback.get("blockReason"):
        return True
    candidates = chunk.get("candidates")
    return isinstance(candidates, list) and any(
        isinstance(c, dict) and c.get("finishReason") for c in candidates
    )


def gemini_failed(chunk: dict[str, Any]) -> bool:
    return chunk.get("error") is not None
