"""The one request path: resolve the model, translate the request, call the backend, translate back.

    client body ──parse──> wire model ──map model, translate──> upstream body ──Backend──> reply
    reply ──parse, translate back──> client body           (or, streaming: upstream bytes ──SSEPump──>)

| client    | backend speaks | request                        | reply                              |
| --------- | -------------- | ------------------------------ | ---------------------------------- |
| Anthropic | chat           | messages_via_chat.request      | messages_via_chat.response /       |
|           |                |                                | MessagesViaChatStream              |
| Anthropic | messages       | the body, model mapped         | as is (stream relayed event by event) |
| OpenAI    | chat           | the body, model mapped, clamped | as is (no double translation)     |
| OpenAI    | messages       | chat_via_messages.request      | chat_via_messages.response /       |
|           |                |                                | ChatViaMessagesStream              |

No HTTP here: a call returns (see `replies.py`) a `JSONReply` (a body) or a `StreamReply` (an async context manager that
opens the upstream stream, then yields translated SSE bytes chunk by chunk), and fills a `Call` record
with what the server needs for headers, logs and metrics (backend, models, degradations, usage,
upstream headers and time spent waiting for the upstream). Errors are raised, never rendered:
`InvalidInput` for the client's body, `UpstreamError` for the upstream (an upstream body that does not
parse is an upstream error, not the client's). Client credentials are never passed to a backend.

What it gives up: one choice per request (`n` is passed through to chat upstreams unchanged); stream
usage for OpenAI clients of chat backends is only metered when the upstream reports it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from anyllm_cli.backends.base import Backend, UpstreamReply
from anyllm_cli.errors import (
    UNFINISHED,
    ErrorKind,
    UpstreamError,
    anthropic_error,
    gemini_error,
    openai_error,
    parse_error_body,
)
from anyllm_cli.models.anthropic import CountTokensRequest, MessagesRequest, MessagesResponse
from anyllm_cli.models.openai_chat import ChatRequest
from anyllm_cli.pipeline.offload import off_loop
from anyllm_cli.replies import Call, JSONReply, Reply, StreamReply, meter
from anyllm_cli.routes import (
    ROUTES,
    ChainedStream,
    PassThrough,
    Target,
    Translator,
    parse_upstream,
)
from anyllm_cli.tokens import count_tokens
from anyllm_cli.translate import chat_via_messages, gemini_via_messages, messages_via_gemini
from anyllm_cli.translate.degradation import Degradation, Translated
from anyllm_cli.translate.streams.chat_via_messages import ChatViaMessagesStream
from anyllm_cli.translate.streams.gemini_via_messages import GeminiViaMessagesStream
from anyllm_cli.translate.streams.pump import OutEvent
from anyllm_cli.translate.streams.sse import (
    KEEPALIVE_COMMENT,
    PING,
    encode_anthropic,
    encode_openai,
)

__all__ = ["Call", "JSONReply", "Pipeline", "Reply", "StreamReply"]

log = logging.getLogger("anyllm.pipeline")

CHAT_PATH = "/chat/completions"
MESSAGES_PATH = "/messages"
COUNT_PATH = "/messages/count_tokens"
# Client headers a Messages upstream needs; nothing else (above all no credential) goes upstream.
_ANTHROPIC_PASS = ("anthropic-version", "anthropic-beta")


class Pipeline:
    def __init__(
        self,
        backends: Mapping[str, Backend],
        *,
        count: Callable[[CountTokensRequest], int] = count_tokens,
        clock: Callable[[], float] = time.perf_counter,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.backends = backends
        self._count = count
        self._clock = clock
        self._wall_clock = wall_clock

    # -- Anthropic clients ---------------------------------------------------------------------------

    async def messages(
        self, backend: Backend, raw: bytes, headers: Mapping[str, str], call: Call
    ) -> Reply:
        req = await off_loop(len(raw), MessagesRequest.parse, raw)
        upstream_model = backend.settings.model_map_fn()(req.model)
        _begin(call, backend, req.model, upstream_model, bool(req.stream))
        if backend.api == "messages":
            return await self._messages_relay(backend, req, upstream_model, headers, call)
        route = ROUTES[backend.api]
        target = Target.of(backend.settings, upstream_model, headers)
        translated = route.request(req, target)
        call.degradations.extend(translated.degradations)
        path = route.path(target, stream=bool(req.stream))
        if req.stream:
            translator = route.stream(
                target, requested_model=req.model, input_tokens=await self._estimate(req, len(raw))
            )
            return self._stream(
                backend, path, translated.body, {}, translator=translator, call=call, anthropic=True
            )
        reply = await self._send(backend, path, translated.body, {}, call)
        back = route.response(reply.body, target, requested_model=req.model)
        call.degradations.extend(back.degradations)
        meter(back.body, call)
        return JSONReply(back.body)

    async def _messages_relay(
        self,
        backend: Backend,
        req: MessagesRequest,
        upstream_model: str,
        headers: Mapping[str, str],
        call: Call,
    ) -> Reply:
        body = req.dump()
        body["model"] = upstream_model
        passed = {k: headers[k] for k in _ANTHROPIC_PASS if k in headers}
        if req.stream:
            relay = _Relay(call, anthropic=True)
            return self._stream(
                backend,
                MESSAGES_PATH,
                body,
                passed,
                translator=relay,
                call=call,
                anthropic=True,
                verbatim=True,
            )
        reply = await self._send(backend, MESSAGES_PATH, body, passed, call)
        resp = parse_upstream(MessagesResponse.parse, reply.body)
        out = resp.dump()
        meter(out, call)
        return JSONReply(out)

    async def count_tokens(self, backend: Backend, raw: bytes, headers: Mapping[str, str]) -> int:
        """An upstream with a count endpoint (Anthropic, Gemini) is asked first; else, or when it
        fails, the count is made locally."""
        req = await off_loop(len(raw), CountTokensRequest.parse, raw)
        upstream_model = backend.settings.model_map_fn()(req.model)
        asked: tuple[str, dict[str, Any], Mapping[str, str], str] | None = None
        if backend.api == "messages":
            body = {**req.dump(), "model": upstream_model}
            passed = {k: headers[k] for k in _ANTHROPIC_PASS if k in headers}
            asked = (COUNT_PATH, body, passed, "input_tokens")
        elif backend.api == "gemini":
            target = Target.of(backend.settings, upstream_model, headers)
            full = MessagesRequest.parse({**req.dump(), "max_tokens": 1})
            content = ROUTES["gemini"].request(full, target).body
            model = upstream_model.removeprefix("models/")
            vertex = backend.settings.kind == "vertex"
            body = messages_via_gemini.count_tokens_body(content, model, vertex=vertex)
            path = f"/models/{quote(model, safe='')}:countTokens"
            asked = (path, body, {}, "totalTokens")
        if asked is not None:
            path, body, sent, field_name = asked
            try:
                reply = await backend.send(path, body, sent)
            except UpstreamError as exc:
                log.info("count from the upstream failed (%s); counting locally", exc.message)
            else:
                value = reply.body.get(field_name) if isinstance(reply.body, dict) else None
                if reply.status < 400 and isinstance(value, int):
                    return value
        return await off_loop(len(raw), self._count, req)

    # -- OpenAI clients ------------------------------------------------------------------------------

    async def chat(
        self, backend: Backend, raw: bytes, headers: Mapping[str, str], call: Call
    ) -> Reply:
        req = await off_loop(len(raw), ChatRequest.parse, raw)
        map_model = backend.settings.model_map_fn()
        upstream_model = map_model(req.model)
        _begin(call, backend, req.model, upstream_model, bool(req.stream))
        wants_usage = bool(req.stream_options and req.stream_options.include_usage)
        if backend.api != "chat":
            return await self._chat_via_messages(backend, req, headers, call, wants_usage)
        body = self._chat_body(backend, req, upstream_model, call)
        if req.stream:
            ask_usage = not wants_usage and not backend.settings.omit_stream_options
            if (
                ask_usage
            ):  # meter the stream; the usage chunk is kept from a client that did not ask
                asked = body.get("stream_options") or {}  # `null` is OpenAI's "absent"
                body["stream_options"] = {**asked, "include_usage": True}
            relay = _Relay(call, anthropic=False, hide_usage=ask_usage)
            return self._stream(
                backend, CHAT_PATH, body, {}, translator=relay, call=call, anthropic=False
            )
        reply = await self._send(backend, CHAT_PATH, body, {}, call)
        if not isinstance(reply.body, dict):
            raise UpstreamError(ErrorKind.API_ERROR, "the upstream's reply is not a JSON object")
        meter(reply.body, call)
        return JSONReply(reply.body)

    async def _chat_via_messages(
        self,
        backend: Backend,
        req: ChatRequest,
        headers: Mapping[str, str],
        call: Call,
        wants_usage: bool,
    ) -> Reply:
        """OpenAI clients of a non-Chat upstream: through the Anthropic shape (and its route)."""
        options = chat_via_messages.MessagesOptions(map_model=backend.settings.model_map_fn())
        translated = chat_via_messages.request(req, options)
        call.degradations.extend(translated.degradations)
        created = int(self._wall_clock())
        target = Target.of(backend.settings, call.upstream_model, headers)
        client_stream = ChatViaMessagesStream(
            requested_model=req.model, created=created, include_usage=wants_usage
        )
        return await self._via_anthropic(
            backend,
            MessagesRequest.parse(translated.body),
            target,
            call,
            requested_model=req.model,
            stream=bool(req.stream),
            input_tokens=0,
            client_stream=client_stream,
            to_client=lambda resp: chat_via_messages.response(
                resp, requested_model=req.model, created=created
            ),
        )

    async def _via_anthropic(
        self,
        backend: Backend,
        anthropic_req: MessagesRequest,
        target: Target,
        call: Call,
        *,
        requested_model: str,
        stream: bool,
        input_tokens: int,
        client_stream: Translator,
        to_client: Callable[[MessagesResponse], Translated[dict[str, Any]]],
    ) -> Reply:
        """A client of another API through the Anthropic shape: the request goes to a Messages
        backend as it is, or through the backend's own route; the answer comes back through that
        route, then `to_client` (or, streaming, `client_stream`)."""
        route = None if backend.api == "messages" else ROUTES[backend.api]
        if route is None:
            body, path = {**anthropic_req.dump(), "model": target.upstream_model}, MESSAGES_PATH
        else:
            hop = route.request(anthropic_req, target)
            call.degradations.extend(hop.degradations)
            body, path = hop.body, route.path(target, stream=stream)
        if stream:
            first: Translator = PassThrough()
            if route is not None:
                first = route.stream(
                    target, requested_model=requested_model, input_tokens=input_tokens
                )
            translator = ChainedStream(first, client_stream)
            return self._stream(
                backend, path, body, {}, translator=translator, call=call, anthropic=False
            )
        reply = await self._send(backend, path, body, {}, call)
        message = reply.body
        if route is not None:
            back = route.response(reply.body, target, requested_model=requested_model)
            call.degradations.extend(back.degradations)
            message = back.body
        out = to_client(parse_upstream(MessagesResponse.parse, message))
        call.degradations.extend(out.degradations)
        meter(out.body, call)
        return JSONReply(out.body)

    # -- Gemini clients ------------------------------------------------------------------------------

    async def gemini(
        self,
        backend: Backend,
        raw: bytes,
        headers: Mapping[str, str],
        call: Call,
        *,
        model: str,
        stream: bool,
    ) -> Reply:
        """A generateContent call (the model and streaming are in the URL), through any backend."""
        req = await off_loop(len(raw), gemini_via_messages.parse_request, raw)
        upstream_model = backend.settings.model_map_fn()(model)
        _begin(call, backend, model, upstream_model, stream)
        target = Target.of(backend.settings, upstream_model, headers)
        if backend.api == "gemini":  # the same API: the body as it came, no translation
            path = ROUTES["gemini"].path(target, stream=stream)
            if stream:
                relay = PassThrough(
                    _gemini_error_chunk,
                    finished=_gemini_finished,
                    failed=_gemini_failed,
                    final=False,
                )
                return self._stream(
                    backend,
                    path,
                    req.dump(),
                    {},
                    translator=relay,
                    call=call,
                    anthropic=False,
                    verbatim=True,
                )
            reply = await self._send(backend, path, req.dump(), {}, call)
            meter(reply.body, call)
            return JSONReply(reply.body)
        options = gemini_via_messages.GeminiClientOptions()
        translated = gemini_via_messages.request(req, model=model, stream=stream, options=options)
        call.degradations.extend(translated.degradations)
        anthropic_req = MessagesRequest.parse(translated.body)
        return await self._via_anthropic(
            backend,
            anthropic_req,
            target,
            call,
            requested_model=model,
            stream=stream,
            input_tokens=await self._estimate(anthropic_req, len(raw)) if stream else 0,
            client_stream=GeminiViaMessagesStream(model=model),
            to_client=lambda resp: gemini_via_messages.response(resp, model=model),
        )

    async def gemini_count(self, raw: bytes, *, model: str) -> int:
        """countTokens for Gemini clients, answered locally like Anthropic's count_tokens."""
        req = await off_loop(len(raw), gemini_via_messages.parse_request, raw)
        options = gemini_via_messages.GeminiClientOptions()
        translated = gemini_via_messages.request(req, model=model, stream=False, options=options)
        return await off_loop(len(raw), self._count, CountTokensRequest.parse(translated.body))

    def _chat_body(
        self, backend: Backend, req: ChatRequest, upstream_model: str, call: Call
    ) -> dict[str, Any]:
        body = req.dump()
        body["model"] = upstream_model
        limit = backend.settings.output_limit(upstream_model)
        for key in ("max_completion_tokens", "max_tokens"):
            asked = body.get(key)
            if limit is not None and isinstance(asked, int) and asked > limit:
                body[key] = limit
                call.degradations.append(
                    Degradation(
                        "max_tokens_clamped",
                        f"{key} {asked} is above {upstream_model}'s output limit; sent {limit}",
                        key,
                    )
                )
        return body

    # -- the calls -----------------------------------------------------------------------------------

    async def _send(
        self,
        backend: Backend,
        path: str,
        body: dict[str, Any],
        headers: Mapping[str, str],
        call: Call,
    ) -> UpstreamReply:
        start = self._clock()
        try:
            reply = await backend.send(path, body, headers)
        finally:
            call.upstream_s += self._clock() - start
        call.upstream_headers = reply.headers
        if reply.status >= 400:
            kind, message = parse_error_body(reply.body, reply.status)
            raise UpstreamError(kind, message, status=reply.status)
        return reply

    def _stream(
        self,
        backend: Backend,
        path: str,
        body: dict[str, Any],
        headers: Mapping[str, str],
        *,
        translator: Translator,
        call: Call,
        anthropic: bool,
        verbatim: bool = False,
    ) -> StreamReply:
        def metered(event: OutEvent) -> bytes:
            if event is None:
                return encode_openai(None)
            meter(event, call)
            return encode_anthropic(event) if anthropic else encode_openai(event)

        return StreamReply(
            lambda: backend.stream(path, body, headers),
            translator,
            metered,
            call,
            keepalive=PING if anthropic else KEEPALIVE_COMMENT,
            verbatim=verbatim,
            clock=self._clock,
        )

    async def _estimate(self, req: MessagesRequest, size: int) -> int:
        """Input tokens announced in `message_start` until the upstream reports real usage."""
        try:
            return await off_loop(size, self._count, req)
        except (ValueError, RuntimeError, OSError):  # a tokenizer problem must not fail the request
            return 0


def _begin(call: Call, backend: Backend, requested: str, upstream: str, stream: bool) -> None:
    call.backend = backend.settings.name
    call.requested_model = requested
    call.upstream_model = upstream
    call.stream = stream


class _Relay:
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


def _gemini_error_chunk(kind: ErrorKind, message: str) -> dict[str, Any]:
    return gemini_error(kind, message)[1]


def _gemini_finished(chunk: dict[str, Any]) -> bool:
    """A candidate's finishReason, or a prompt blocked outright (then no candidate comes)."""
    feedback = chunk.get("promptFeedback")
    if isinstance(feedback, dict) and feedback.get("blockReason"):
        return True
    candidates = chunk.get("candidates")
    return isinstance(candidates, list) and any(
        isinstance(c, dict) and c.get("finishReason") for c in candidates
    )


def _gemini_failed(chunk: dict[str, Any]) -> bool:
    return chunk.get("error") is not None
