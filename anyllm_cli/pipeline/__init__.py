"""The one request path: every call to a model enters here, as a `ClientRequest`, and ends here.

    ClientRequest ──parse──> wire model ──Router──> Candidate ──Guard.admit──> the hops ──> Backend
         reply <──translate back── upstream reply                 (or, streaming: bytes ──SSEPump──>)
         every end (reply returned, stream left, failure) ──> Completion ──> Guard.settle, observers

`Pipeline.run(request)` is the only entry: the HTTP server, `anyllm replay` and (later) the batch
engine build a `ClientRequest` and call it; none of them translates or picks a backend. The seams
(`seams.py`) are what features plug into: a `Router` picks the candidates, a `Guard` admits and
settles, `CallObserver`s see each finished call once, a `Pricer` prices its usage. `completion.py`
is the single place a call ends.

| client    | backend speaks | request                         | reply                              |
| --------- | -------------- | ------------------------------- | ---------------------------------- |
| Anthropic | messages       | the body, model mapped          | as is (stream relayed byte by byte)|
| Anthropic | other          | the backend's hop (hops.py)     | the hop's reply / stream translator|
| OpenAI    | chat           | the body, model mapped, clamped | as is (no double translation)      |
| OpenAI    | other          | chat_via_messages, then the hop | the hop, then chat_via_messages    |
| Gemini    | gemini         | the body as it came             | as is                              |
| Gemini    | other          | gemini_via_messages, the hop    | the hop, then gemini_via_messages  |
| any       | chat (forward) | the bytes as they came          | the upstream's status and bytes    |

No HTTP here: a call returns (see `replies.py`) a `JSONReply`, a `StreamReply` (an async context
manager that opens the upstream, then yields translated SSE bytes chunk by chunk) or a
`ForwardReply`, each with its `Call` record (backend, models, degradations, usage, upstream
headers, time spent waiting for the upstream). Errors are raised, never rendered: `InvalidInput` for
the client's body, `UpstreamError` for the upstream (an upstream body that does not parse is an
upstream error, not the client's), `NotFound` for a backend that is not configured. Client
credentials are never passed to a backend.

What it gives up: one choice per request (`n` is passed through to chat upstreams unchanged); stream
usage for OpenAI clients of chat backends is only metered when the upstream reports it; the first
candidate only (fallbacks are the router's to propose and a later change's to try).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from anyllm_cli.backends.base import Backend, UpstreamReply
from anyllm_cli.errors import (
    ErrorKind,
    InvalidInput,
    NotFound,
    UpstreamError,
    anthropic_error,
    gemini_error,
    openai_error,
)
from anyllm_cli.models.anthropic import CountTokensRequest, MessagesRequest, MessagesResponse
from anyllm_cli.models.gemini import GenerateContentRequest
from anyllm_cli.models.openai_chat import ChatRequest
from anyllm_cli.pipeline.completion import Completion
from anyllm_cli.pipeline.hops import ROUTES, ChainedStream, PassThrough, Target, parse_upstream
from anyllm_cli.pipeline.replies import Call, ForwardReply, JSONReply, Reply, StreamReply, meter
from anyllm_cli.pipeline.seams import (
    ANONYMOUS,
    CallObserver,
    Candidate,
    ClientRequest,
    Guard,
    Outcome,
    Pricer,
    Principal,
    Router,
)
from anyllm_cli.tokens import count_tokens
from anyllm_cli.translate import chat_via_messages, gemini_via_messages
from anyllm_cli.translate.degradation import Degradation, Translated
from anyllm_cli.translate.hops import clamp_chat_body, gemini_count_body
from anyllm_cli.translate.streams.chat_via_messages import ChatViaMessagesStream
from anyllm_cli.translate.streams.gemini_via_messages import GeminiViaMessagesStream
from anyllm_cli.translate.streams.pump import OutEvent, StreamTranslator
from anyllm_cli.translate.streams.sse import (
    KEEPALIVE_COMMENT,
    PING,
    encode_anthropic,
    encode_openai,
)

__all__ = [
    "ANONYMOUS",
    "Call",
    "CallObserver",
    "Candidate",
    "ClientRequest",
    "ForwardReply",
    "Guard",
    "JSONReply",
    "Outcome",
    "Pipeline",
    "Pricer",
    "Principal",
    "Reply",
    "Router",
    "StreamReply",
]

log = logging.getLogger("anyllm.pipeline")

CHAT_PATH = "/chat/completions"
MESSAGES_PATH = "/messages"
COUNT_PATH = "/messages/count_tokens"
# Client headers a Messages upstream needs; nothing else (above all no credential) goes upstream.
_ANTHROPIC_PASS = ("anthropic-version", "anthropic-beta")
# Headers a passthrough keeps; credentials and hop-by-hop headers never pass.
_FORWARD_PASS = ("content-type", "accept", "openai-beta")


class Pipeline:
    def __init__(
        self,
        backends: Mapping[str, Backend],
        *,
        router: Router | None = None,
        guard: Guard | None = None,
        observers: Sequence[CallObserver] = (),
        pricer: Pricer | None = None,
        count: Callable[[CountTokensRequest], int] = count_tokens,
        clock: Callable[[], float] = time.perf_counter,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.backends = backends
        if router is None:  # the first backend as the default; the server passes its own router
            from anyllm_cli.routing import StaticRouter  # routing imports seams: not at the top

            settings = {name: b.settings for name, b in backends.items()}
            router = StaticRouter(settings, next(iter(backends)))
        self.router = router
        self.guard = guard
        self.observers = tuple(observers)
        self.pricer = pricer
        self._keep_bodies = any(o.wants_bodies for o in self.observers)
        self._count = count
        self._clock = clock
        self._wall_clock = wall_clock

    async def run(self, request: ClientRequest) -> Reply:
        """The request's reply. Errors raise; either way the call reaches the completion point
        (now for a JSON reply or a failure, when a stream or passthrough reply is left)."""
        done = Completion(
            request,
            guard=self.guard,
            observers=self.observers,
            pricer=self.pricer,
            keep_bodies=self._keep_bodies,
            clock=self._clock,
        )
        try:
            reply = await self._dispatch(request, done)
        except BaseException as exc:
            await done.fail(exc)
            raise
        if isinstance(reply, JSONReply):
            await done.finish(status=200, response=reply.body)
        return reply

    async def _dispatch(self, request: ClientRequest, done: Completion) -> Reply:
        api = request.api
        if api == "forward":
            return await self._forward(request, done)
        if api == "messages":
            req = MessagesRequest.parse(request.body)
            backend = await self._enter(request, done, req.model, bool(req.stream))
            return await self._messages(backend, req, request.headers, done)
        if api == "chat":
            chat = ChatRequest.parse(request.body)
            backend = await self._enter(request, done, chat.model, bool(chat.stream))
            return await self._chat(backend, chat, request.headers, done)
        if api == "count_tokens":
            count = CountTokensRequest.parse(request.body)
            backend = await self._enter(request, done, count.model, False)
            tokens = await self._count_tokens(backend, count, request.headers, done.call)
            return JSONReply({"input_tokens": tokens}, done.call)
        if not request.model:
            raise InvalidInput("a Gemini call names its model in the URL", "model")
        gemini = gemini_via_messages.parse_request(request.body)
        stream = bool(request.stream)
        backend = await self._enter(request, done, request.model, stream)
        if api == "gemini_count":
            return JSONReply({"totalTokens": self._gemini_count(gemini, request.model)}, done.call)
        return await self._gemini(
            backend, gemini, request.headers, done, model=request.model, stream=stream
        )

    async def _enter(
        self, request: ClientRequest, done: Completion, model: str, stream: bool
    ) -> Backend:
        """Route, record the choice, and ask the guard: the backend to call."""
        candidate = self.router.candidates(request, model)[0]
        backend = self.backends[candidate.backend]
        call = done.call
        call.backend = candidate.backend
        call.requested_model = candidate.requested_model
        call.upstream_model = candidate.upstream_model
        call.stream = stream
        await done.admit(candidate)
        return backend

    # -- Anthropic clients ---------------------------------------------------------------------------

    async def _messages(
        self, backend: Backend, req: MessagesRequest, headers: Mapping[str, str], done: Completion
    ) -> Reply:
        call = done.call
        upstream_model = call.upstream_model
        if backend.api == "messages":
            return await self._messages_relay(backend, req, upstream_model, headers, done)
        route = ROUTES[backend.api]
        target = Target.of(backend.settings, upstream_model, headers)
        translated = route.request(req, target)
        call.degradations.extend(translated.degradations)
        path = route.path(target, stream=bool(req.stream))
        if req.stream:
            translator = route.stream(
                target, requested_model=req.model, input_tokens=self._estimate(req)
            )
            return self._stream(
                backend, path, translated.body, {}, translator=translator, done=done, anthropic=True
            )
        reply = await self._send(backend, path, translated.body, {}, call)
        back = route.response(reply.body, target, requested_model=req.model)
        call.degradations.extend(back.degradations)
        meter(back.body, call)
        return JSONReply(back.body, call)

    async def _messages_relay(
        self,
        backend: Backend,
        req: MessagesRequest,
        upstream_model: str,
        headers: Mapping[str, str],
        done: Completion,
    ) -> Reply:
        body = req.dump()
        body["model"] = upstream_model
        passed = {k: headers[k] for k in _ANTHROPIC_PASS if k in headers}
        if req.stream:
            relay = _Relay(done.call, anthropic=True)
            return self._stream(
                backend,
                MESSAGES_PATH,
                body,
                passed,
                translator=relay,
                done=done,
                anthropic=True,
                verbatim=True,
            )
        reply = await self._send(backend, MESSAGES_PATH, body, passed, done.call)
        resp = parse_upstream(MessagesResponse.parse, reply.body)
        out = resp.dump()
        meter(out, done.call)
        return JSONReply(out, done.call)

    async def _count_tokens(
        self, backend: Backend, req: CountTokensRequest, headers: Mapping[str, str], call: Call
    ) -> int:
        """An upstream with a count endpoint (Anthropic, Gemini) is asked first; else, or when it
        fails, the count is made locally."""
        upstream_model = call.upstream_model
        asked: tuple[str, dict[str, Any], Mapping[str, str], str] | None = None
        if backend.api == "messages":
            body = {**req.dump(), "model": upstream_model}
            passed = {k: headers[k] for k in _ANTHROPIC_PASS if k in headers}
            asked = (COUNT_PATH, body, passed, "input_tokens")
        elif backend.api == "gemini":
            options = Target.of(backend.settings, upstream_model, headers).options()
            model = upstream_model.removeprefix("models/")
            body = gemini_count_body(req, options, model)
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
                if isinstance(value, int):
                    return value
        return self._count(req)

    # -- OpenAI clients ------------------------------------------------------------------------------

    async def _chat(
        self, backend: Backend, req: ChatRequest, headers: Mapping[str, str], done: Completion
    ) -> Reply:
        call = done.call
        wants_usage = bool(req.stream_options and req.stream_options.include_usage)
        if backend.api != "chat":
            return await self._chat_via_messages(backend, req, headers, done, wants_usage)
        body = self._chat_body(backend, req, call.upstream_model, call)
        if req.stream:
            ask_usage = not wants_usage and not backend.settings.omit_stream_options
            if (
                ask_usage
            ):  # meter the stream; the usage chunk is kept from a client that did not ask
                body["stream_options"] = {**body.get("stream_options", {}), "include_usage": True}
            relay = _Relay(call, anthropic=False, hide_usage=ask_usage)
            return self._stream(
                backend, CHAT_PATH, body, {}, translator=relay, done=done, anthropic=False
            )
        reply = await self._send(backend, CHAT_PATH, body, {}, call)
        if not isinstance(reply.body, dict):
            raise UpstreamError(ErrorKind.API_ERROR, "the upstream's reply is not a JSON object")
        meter(reply.body, call)
        return JSONReply(reply.body, call)

    async def _chat_via_messages(
        self,
        backend: Backend,
        req: ChatRequest,
        headers: Mapping[str, str],
        done: Completion,
        wants_usage: bool,
    ) -> Reply:
        """OpenAI clients of a non-Chat upstream: through the Anthropic shape (and its route)."""
        call = done.call
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
            done,
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
        done: Completion,
        *,
        requested_model: str,
        stream: bool,
        input_tokens: int,
        client_stream: StreamTranslator,
        to_client: Callable[[MessagesResponse], Translated[dict[str, Any]]],
    ) -> Reply:
        """A client of another API through the Anthropic shape: the request goes to a Messages
        backend as it is, or through the backend's own route; the answer comes back through that
        route, then `to_client` (or, streaming, `client_stream`)."""
        call = done.call
        route = None if backend.api == "messages" else ROUTES[backend.api]
        if route is None:
            body, path = {**anthropic_req.dump(), "model": target.upstream_model}, MESSAGES_PATH
        else:
            hop = route.request(anthropic_req, target)
            call.degradations.extend(hop.degradations)
            body, path = hop.body, route.path(target, stream=stream)
        if stream:
            first: StreamTranslator = PassThrough()
            if route is not None:
                first = route.stream(
                    target, requested_model=requested_model, input_tokens=input_tokens
                )
            translator = ChainedStream(first, client_stream)
            return self._stream(
                backend, path, body, {}, translator=translator, done=done, anthropic=False
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
        return JSONReply(out.body, call)

    # -- Gemini clients ------------------------------------------------------------------------------

    async def _gemini(
        self,
        backend: Backend,
        req: GenerateContentRequest,
        headers: Mapping[str, str],
        done: Completion,
        *,
        model: str,
        stream: bool,
    ) -> Reply:
        """A generateContent call (the model and streaming are in the URL), through any backend."""
        call = done.call
        target = Target.of(backend.settings, call.upstream_model, headers)
        if backend.api == "gemini":  # the same API: the body as it came, no translation
            path = ROUTES["gemini"].path(target, stream=stream)
            if stream:
                relay = PassThrough(_gemini_error_chunk)
                return self._stream(
                    backend,
                    path,
                    req.dump(),
                    {},
                    translator=relay,
                    done=done,
                    anthropic=False,
                    verbatim=True,
                )
            reply = await self._send(backend, path, req.dump(), {}, call)
            meter(reply.body, call)
            return JSONReply(reply.body, call)
        options = gemini_via_messages.GeminiClientOptions()
        translated = gemini_via_messages.request(req, model=model, stream=stream, options=options)
        call.degradations.extend(translated.degradations)
        anthropic_req = MessagesRequest.parse(translated.body)
        return await self._via_anthropic(
            backend,
            anthropic_req,
            target,
            done,
            requested_model=model,
            stream=stream,
            input_tokens=self._estimate(anthropic_req) if stream else 0,
            client_stream=GeminiViaMessagesStream(model=model),
            to_client=lambda resp: gemini_via_messages.response(resp, model=model),
        )

    def _gemini_count(self, req: GenerateContentRequest, model: str) -> int:
        """countTokens for Gemini clients, answered locally like Anthropic's count_tokens."""
        options = gemini_via_messages.GeminiClientOptions()
        translated = gemini_via_messages.request(req, model=model, stream=False, options=options)
        return self._count(CountTokensRequest.parse(translated.body))

    def _chat_body(
        self, backend: Backend, req: ChatRequest, upstream_model: str, call: Call
    ) -> dict[str, Any]:
        body = req.dump()
        body["model"] = upstream_model
        limit = backend.settings.output_limit(upstream_model)
        call.degradations.extend(clamp_chat_body(body, limit, upstream_model))
        return body

    # -- passthrough ---------------------------------------------------------------------------------

    async def _forward(self, request: ClientRequest, done: Completion) -> ForwardReply:
        """`/v1/*` that is not translated, to an OpenAI-compatible backend, bytes as they are."""
        model = _body_model(request.body)
        candidate = replace(
            self.router.candidates(request, "")[0], requested_model=model, upstream_model=model
        )
        backend = self.backends[candidate.backend]
        if backend.api != "chat" or backend.settings.kind == "echo":
            raise NotFound(f"/v1{request.path} is not served by backend {candidate.backend!r}")
        call = done.call
        call.backend, call.requested_model, call.upstream_model = candidate.backend, model, model
        await done.admit(candidate)
        path = request.path + ("?" + request.query if request.query else "")
        headers = {k: request.headers[k] for k in _FORWARD_PASS if k in request.headers}
        call.upstream_body = request.body
        return ForwardReply(
            lambda: backend.forward(request.method, path, request.body, headers), done
        )

    # -- the calls -----------------------------------------------------------------------------------

    async def _send(
        self,
        backend: Backend,
        path: str,
        body: dict[str, Any],
        headers: Mapping[str, str],
        call: Call,
    ) -> UpstreamReply:
        call.upstream_body = body
        start = self._clock()
        try:
            reply = await backend.send(path, body, headers)
        finally:
            call.upstream_s += self._clock() - start
        call.upstream_headers = reply.headers
        return reply

    def _stream(
        self,
        backend: Backend,
        path: str,
        body: dict[str, Any],
        headers: Mapping[str, str],
        *,
        translator: StreamTranslator,
        done: Completion,
        anthropic: bool,
        verbatim: bool = False,
    ) -> StreamReply:
        call = done.call
        call.upstream_body = body
        keep = done.events if done.keep_bodies else None

        def metered(event: OutEvent) -> bytes:
            if event is None:
                return encode_openai(None)
            meter(event, call)
            if keep is not None:
                keep.append(event)
            return encode_anthropic(event) if anthropic else encode_openai(event)

        return StreamReply(
            lambda: backend.stream(path, body, headers),
            translator,
            metered,
            done,
            keepalive=PING if anthropic else KEEPALIVE_COMMENT,
            verbatim=verbatim,
            clock=self._clock,
        )

    def _estimate(self, req: MessagesRequest) -> int:
        """Input tokens announced in `message_start` until the upstream reports real usage."""
        try:
            return self._count(req)
        except (ValueError, RuntimeError, OSError):  # a tokenizer problem must not fail the request
            return 0


def _body_model(body: bytes) -> str:
    """The `model` of a JSON passthrough body (embeddings, ...), or "" for anything else."""
    if not body.startswith(b"{"):
        return ""
    try:
        parsed = json.loads(body)
    except ValueError:
        return ""
    model = parsed.get("model") if isinstance(parsed, dict) else None
    return model if isinstance(model, str) else ""


class _Relay:
    """A stream translator for same-API relays: events pass through, usage is read on the way.

    `hide_usage` drops the usage-only chunk (and `usage` fields) the proxy asked for on the client's
    behalf, so an OpenAI client that did not ask for usage sees the stream it expects."""

    def __init__(self, call: Call, *, anthropic: bool, hide_usage: bool = False) -> None:
        self.degradations: list[Degradation] = []
        self._call = call
        self._anthropic = anthropic
        self._hide_usage = hide_usage

    def feed(self, event: dict[str, Any]) -> list[OutEvent]:
        if self._hide_usage and event.get("usage") is not None:
            meter(event, self._call)
            del event["usage"]
            if not event.get("choices"):
                return []
        return [event]

    def finish(self) -> list[OutEvent]:
        return [] if self._anthropic else [None]

    def fail(self, kind: ErrorKind, message: str) -> list[OutEvent]:
        if self._anthropic:
            return [anthropic_error(kind, message)[1]]
        return [openai_error(kind, message)[1]]


def _gemini_error_chunk(kind: ErrorKind, message: str) -> dict[str, Any]:
    return gemini_error(kind, message)[1]
