"""The client sides of a call: Anthropic, OpenAI and Gemini requests to any backend.

| client    | backend speaks | request                         | reply                              |
| --------- | -------------- | ------------------------------- | ---------------------------------- |
| Anthropic | messages       | the body, model mapped          | as is (stream relayed byte by byte)|
| Anthropic | other          | the backend's hop (hops.py)     | the hop's reply / stream translator|
| OpenAI    | chat           | the body, model mapped, clamped | as is (no double translation)      |
| OpenAI    | other          | chat_via_messages, then the hop | the hop, then chat_via_messages    |
| Gemini    | gemini         | the body as it came             | as is                              |
| Gemini    | other          | gemini_via_messages, the hop    | the hop, then gemini_via_messages  |

Each method takes the parsed request, the backend the router chose and the call's `Completion`
(its `Call` record already names the backend and models), and returns a reply. Client headers reach
an upstream only as named here (the Anthropic version and betas for a Messages upstream); never a
credential.

What it gives up: one choice per request (`n` is passed through to chat upstreams unchanged); stream
usage for OpenAI clients of chat backends is only metered when the upstream reports it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from anyllm_cli.backends.base import Backend
from anyllm_cli.errors import ErrorKind, UpstreamError
from anyllm_cli.models.anthropic import CountTokensRequest, MessagesRequest, MessagesResponse
from anyllm_cli.models.gemini import GenerateContentRequest
from anyllm_cli.models.openai_chat import ChatRequest
from anyllm_cli.pipeline import upstream
from anyllm_cli.pipeline.completion import Completion
from anyllm_cli.pipeline.hops import ROUTES, ChainedStream, PassThrough, Target, parse_upstream
from anyllm_cli.pipeline.offload import off_loop
from anyllm_cli.pipeline.replies import Call, JSONReply, Reply, meter
from anyllm_cli.pipeline.upstream import Relay, gemini_error_chunk
from anyllm_cli.tokens import count_tokens
from anyllm_cli.translate import chat_via_messages, gemini_via_messages
from anyllm_cli.translate.degradation import Translated
from anyllm_cli.translate.hops import clamp_chat_body, gemini_count_body
from anyllm_cli.translate.streams.chat_via_messages import ChatViaMessagesStream
from anyllm_cli.translate.streams.gemini_via_messages import GeminiViaMessagesStream
from anyllm_cli.translate.streams.pump import StreamTranslator

log = logging.getLogger("anyllm.pipeline")

CHAT_PATH = "/chat/completions"
MESSAGES_PATH = "/messages"
COUNT_PATH = "/messages/count_tokens"
# Client headers a Messages upstream needs; nothing else (above all no credential) goes upstream.
_ANTHROPIC_PASS = ("anthropic-version", "anthropic-beta")


class ClientCalls:
    """The per-API paths; `count` is the local token counter, the clocks are injectable."""

    def __init__(
        self,
        *,
        count: Callable[[CountTokensRequest], int] = count_tokens,
        clock: Callable[[], float] = time.perf_counter,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._count = count
        self._clock = clock
        self._wall_clock = wall_clock

    # -- Anthropic clients ---------------------------------------------------------------------------

    async def messages(
        self,
        backend: Backend,
        req: MessagesRequest,
        headers: Mapping[str, str],
        done: Completion,
        *,
        size: int = 0,
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
                target, requested_model=req.model, input_tokens=await self._estimate(req, size)
            )
            return upstream.stream(
                backend,
                path,
                translated.body,
                {},
                translator=translator,
                done=done,
                anthropic=True,
                clock=self._clock,
            )
        reply = await upstream.send(
            backend, path, translated.body, {}, call=call, clock=self._clock
        )
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
            relay = Relay(done.call, anthropic=True)
            return upstream.stream(
                backend,
                MESSAGES_PATH,
                body,
                passed,
                translator=relay,
                done=done,
                anthropic=True,
                verbatim=True,
                clock=self._clock,
            )
        reply = await upstream.send(
            backend, MESSAGES_PATH, body, passed, call=done.call, clock=self._clock
        )
        resp = parse_upstream(MessagesResponse.parse, reply.body)
        out = resp.dump()
        meter(out, done.call)
        return JSONReply(out, done.call)

    async def count_tokens(
        self,
        backend: Backend,
        req: CountTokensRequest,
        headers: Mapping[str, str],
        call: Call,
        *,
        size: int = 0,
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
            vertex = backend.settings.kind == "vertex"
            body = gemini_count_body(req, options, model, vertex=vertex)
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
        return await off_loop(size, self._count, req)

    # -- OpenAI clients ------------------------------------------------------------------------------

    async def chat(
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
                asked = body.get("stream_options") or {}  # `null` is OpenAI's "absent"
                body["stream_options"] = {**asked, "include_usage": True}
            relay = Relay(call, anthropic=False, hide_usage=ask_usage)
            return upstream.stream(
                backend,
                CHAT_PATH,
                body,
                {},
                translator=relay,
                done=done,
                anthropic=False,
                clock=self._clock,
            )
        reply = await upstream.send(backend, CHAT_PATH, body, {}, call=call, clock=self._clock)
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
            return upstream.stream(
                backend,
                path,
                body,
                {},
                translator=translator,
                done=done,
                anthropic=False,
                clock=self._clock,
            )
        reply = await upstream.send(backend, path, body, {}, call=call, clock=self._clock)
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

    async def gemini(
        self,
        backend: Backend,
        req: GenerateContentRequest,
        headers: Mapping[str, str],
        done: Completion,
        *,
        model: str,
        stream: bool,
        size: int = 0,
    ) -> Reply:
        """A generateContent call (the model and streaming are in the URL), through any backend."""
        call = done.call
        target = Target.of(backend.settings, call.upstream_model, headers)
        if backend.api == "gemini":  # the same API: the body as it came, no translation
            path = ROUTES["gemini"].path(target, stream=stream)
            if stream:
                relay = PassThrough(gemini_error_chunk)
                return upstream.stream(
                    backend,
                    path,
                    req.dump(),
                    {},
                    translator=relay,
                    done=done,
                    anthropic=False,
                    verbatim=True,
                    clock=self._clock,
                )
            reply = await upstream.send(backend, path, req.dump(), {}, call=call, clock=self._clock)
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
            input_tokens=await self._estimate(anthropic_req, size) if stream else 0,
            client_stream=GeminiViaMessagesStream(model=model),
            to_client=lambda resp: gemini_via_messages.response(resp, model=model),
        )

    async def gemini_count(self, req: GenerateContentRequest, model: str, *, size: int = 0) -> int:
        """countTokens for Gemini clients, answered locally like Anthropic's count_tokens."""
        options = gemini_via_messages.GeminiClientOptions()
        translated = gemini_via_messages.request(req, model=model, stream=False, options=options)
        return await off_loop(size, self._count, CountTokensRequest.parse(translated.body))

    def _chat_body(
        self, backend: Backend, req: ChatRequest, upstream_model: str, call: Call
    ) -> dict[str, Any]:
        body = req.dump()
        body["model"] = upstream_model
        limit = backend.settings.output_limit(upstream_model)
        call.degradations.extend(clamp_chat_body(body, limit, upstream_model))
        return body

    async def _estimate(self, req: MessagesRequest, size: int) -> int:
        """Input tokens announced in `message_start` until the upstream reports real usage."""
        try:
            return await off_loop(size, self._count, req)
        except (ValueError, RuntimeError, OSError):  # a tokenizer problem must not fail the request
            return 0
