"""The one request path: every call to a model enters here, as a `ClientRequest`, and ends here.

    ClientRequest ──parse──> wire model ──Router──> Candidate ──Guard.admit──> the hops ──> Backend
         reply <──translate back── upstream reply                 (or, streaming: bytes ──SSEPump──>)
         every end (reply returned, stream left, failure) ──> Completion ──> Guard.settle, observers

`Pipeline.run(request)` is the only entry: the HTTP server, `anyllm replay` and (later) the batch
engine build a `ClientRequest` and call it; none of them translates or picks a backend. The seams
(`seams.py`) are what features plug into: a `Router` picks the candidates, a `Guard` admits and
settles, `CallObserver`s see each finished call once, a `Pricer` prices its usage. `completion.py`
is the single place a call ends.

The client sides (Anthropic, OpenAI, Gemini to any backend) are in `clients.py`, the upstream hops
in `hops.py`, the replies in `replies.py`, the two ways to reach a backend in `upstream.py`.

No HTTP here: a call returns (see `replies.py`) a `JSONReply`, a `StreamReply` (an async context
manager that opens the upstream, then yields translated SSE bytes chunk by chunk) or a
`ForwardReply`, each with its `Call` record (backend, models, degradations, usage, upstream
headers, time spent waiting for the upstream). Errors are raised, never rendered: `InvalidInput` for
the client's body, `UpstreamError` for the upstream (an upstream body that does not parse is an
upstream error, not the client's), `NotFound` for a backend that is not configured. Client
credentials are never passed to a backend.

What it gives up: the first candidate only (fallbacks are the router's to propose and a later
change's to try).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from anyllm_cli.backends.base import Backend
from anyllm_cli.errors import InvalidInput, NotFound
from anyllm_cli.models import codec
from anyllm_cli.models.anthropic import CountTokensRequest, MessagesRequest
from anyllm_cli.models.openai_chat import ChatRequest
from anyllm_cli.pipeline.clients import ClientCalls
from anyllm_cli.pipeline.completion import Completion
from anyllm_cli.pipeline.offload import off_loop
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
from anyllm_cli.translate import gemini_via_messages

__all__ = [
    "ANONYMOUS",
    "Call",
    "CallObserver",
    "Candidate",
    "ClientRequest",
    "FORWARD_KINDS",
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

# Headers a passthrough keeps; credentials and hop-by-hop headers never pass.
_FORWARD_PASS = ("content-type", "accept", "openai-beta")
# The backend kinds that speak the OpenAI API natively, whichever API the pipeline calls them with:
# the only ones a passthrough (`/v1/embeddings`, `/v1/responses`, ...) may reach.
FORWARD_KINDS = frozenset({"openai", "azure"})


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
        self._clock = clock
        self._calls = ClientCalls(count=count, clock=clock, wall_clock=wall_clock)

    def _completion(self, request: ClientRequest, *, ran_elsewhere: bool = False) -> Completion:
        return Completion(
            request,
            guard=self.guard,
            observers=self.observers,
            pricer=self.pricer,
            keep_bodies=self._keep_bodies,
            clock=self._clock,
            ran_elsewhere=ran_elsewhere,
        )

    async def run(self, request: ClientRequest) -> Reply:
        """The request's reply. Errors raise; either way the call reaches the completion point
        (now for a JSON reply or a failure, when a stream or passthrough reply is left)."""
        done = self._completion(request)
        try:
            reply = await self._dispatch(request, done)
        except BaseException as exc:
            await done.fail(exc)
            raise
        if isinstance(reply, JSONReply):
            await done.finish(status=200, response=reply.body)
        return reply

    async def complete_elsewhere(
        self, request: ClientRequest, candidate: Candidate, response: dict[str, Any]
    ) -> Outcome | None:
        """A call a provider's batch API ran for us (an item of a native batch): its usage read
        from `response`, priced at batch rates, booked by the guard (spend; it was never
        admitted) and shown to the observers, through the same completion point as any call."""
        done = self._completion(request, ran_elsewhere=True)
        done.candidate = candidate
        call = done.call
        call.backend = candidate.backend
        call.requested_model = candidate.requested_model
        call.upstream_model = candidate.upstream_model
        meter(response, call)
        return await done.finish(status=200, response=response)

    async def _dispatch(self, request: ClientRequest, done: Completion) -> Reply:
        api, body, size = request.api, request.body, len(request.body)
        if api == "forward":
            return await self._forward(request, done)
        calls = self._calls
        if api == "messages":  # parsing a big body runs off the event loop (offload.py)
            req = await off_loop(size, MessagesRequest.parse, body)
            backend = await self._enter(request, done, req.model, bool(req.stream))
            return await calls.messages(backend, req, request.headers, done, size=size)
        if api == "chat":
            chat = await off_loop(size, ChatRequest.parse, body)
            backend = await self._enter(request, done, chat.model, bool(chat.stream))
            return await calls.chat(backend, chat, request.headers, done)
        if api == "count_tokens":
            count = await off_loop(size, CountTokensRequest.parse, body)
            backend = await self._enter(request, done, count.model, False)
            tokens = await calls.count_tokens(backend, count, request.headers, done.call, size=size)
            return JSONReply({"input_tokens": tokens}, done.call)
        if not request.model:
            raise InvalidInput("a Gemini call names its model in the URL", "model")
        gemini = await off_loop(size, gemini_via_messages.parse_request, body)
        stream = bool(request.stream)
        backend = await self._enter(request, done, request.model, stream)
        if api == "gemini_count":
            tokens = await calls.gemini_count(gemini, request.model, size=size)
            return JSONReply({"totalTokens": tokens}, done.call)
        return await calls.gemini(
            backend, gemini, request.headers, done, model=request.model, stream=stream, size=size
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

    # -- passthrough ---------------------------------------------------------------------------------

    async def _forward(self, request: ClientRequest, done: Completion) -> ForwardReply:
        """`/v1/*` that is not translated, to an OpenAI-compatible backend, bytes as they are."""
        model = _body_model(request.body)
        candidate = replace(
            self.router.candidates(request, "")[0], requested_model=model, upstream_model=model
        )
        backend = self.backends[candidate.backend]
        if backend.settings.kind not in FORWARD_KINDS:
            raise NotFound(f"/v1{request.path} is not served by backend {candidate.backend!r}")
        call = done.call
        call.backend, call.requested_model, call.upstream_model = candidate.backend, model, model
        await done.admit(candidate)
        path = request.path + ("?" + request.query if request.query else "")
        headers = {k: request.headers[k] for k in _FORWARD_PASS if k in request.headers}
        call.upstream_body = request.body
        # made now: a path the backend refuses (it must stay under its base URL) raises here
        upstream = backend.forward(request.method, path, request.body, headers)
        return ForwardReply(lambda: upstream, done)


def _body_model(body: bytes) -> str:
    """The `model` of a JSON passthrough body (embeddings, ...), or "" for anything else."""
    if not body.startswith(b"{"):
        return ""
    try:
        parsed = codec.loads(body)
    except ValueError:  # not JSON (a file upload, ...), or nested too deep: no model to name
        return ""
    model = parsed.get("model") if isinstance(parsed, dict) else None
    return model if isinstance(model, str) else ""
