"""The app factory: routes, thin handlers, the middleware stack and the lifespan.

| route                                   | handler                                             |
| --------------------------------------- | --------------------------------------------------- |
| GET/HEAD /                              | a small JSON hello (Claude Code probes the base URL)  |
| GET /health                             | `{"status": "ok"}`, no auth                          |
| GET /metrics                            | Prometheus text (auth only with `metrics_auth`)      |
| POST [/NAME]/v1/messages                | pipeline.messages (stream or not; `?beta=true` ok)    |
| POST [/NAME]/v1/messages/count_tokens   | pipeline.count_tokens, answered locally               |
| GET  [/NAME]/v1/models[/{id}]           | the catalog, Anthropic or OpenAI shape by headers     |
| POST [/NAME]/v1/chat/completions        | pipeline.chat                                         |
| POST [/NAME]/v1beta/models/{m}:{action} | pipeline.gemini / gemini_count (Gemini clients; also |
|                                         | under /v1/models/, Gemini's v1 API)                   |
| any  [/NAME]/v1/...                     | passed through to OpenAI-compatible backends          |
| anything else                           | 404 in the caller's format                            |

`create_app(settings)` builds everything from its arguments, registers nothing globally, and opens
the HTTP client and backends in the lifespan (closing them after). Handlers parse nothing themselves:
they hand the raw body to the pipeline and render what comes back; errors render in the caller's
format through one path (`_failure`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from anyllm_cli import __version__
from anyllm_cli.backends import build_backend
from anyllm_cli.backends._http import build_client
from anyllm_cli.backends.base import Backend
from anyllm_cli.config import Settings
from anyllm_cli.errors import AnyllmError, ErrorKind, InvalidInput, UpstreamError
from anyllm_cli.pipeline import JSONReply, Pipeline, Reply
from anyllm_cli.server import catalog
from anyllm_cli.server.context import RequestContext, context
from anyllm_cli.server.formats import (
    ClientFormat,
    Headers,
    dump_json,
    error_type,
    json_headers,
    render_error,
)
from anyllm_cli.server.metrics import Metrics
from anyllm_cli.server.middleware import Auth, BodyLimit, ConcurrencyLimit, RequestScope
from anyllm_cli.server.paths import BadPath, passthrough_path
from anyllm_cli.server.streaming import StreamDriver

Handler = Callable[[Request], Awaitable[Response]]
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# Headers a passthrough keeps in each direction; credentials and hop-by-hop headers never pass.
_FORWARD_REQUEST = ("content-type", "accept", "openai-beta")
_OWN_ROUTES = frozenset({"messages", "chat", "models"})
_FORWARD_RESPONSE = ("content-type", "retry-after", "openai-processing-ms", "openai-version")
_GEMINI_ACTIONS = ("generateContent", "streamGenerateContent", "countTokens")


class _Raw(Response):
    """A response written straight to ASGI send (the handler's own bytes and headers)."""

    def __init__(self, status: int, headers: Headers, body: bytes) -> None:
        self.status_code = status
        self._raw = headers
        self.body = body
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self._raw}
        )
        await send({"type": "http.response.body", "body": self.body})


class _ASGI(Response):
    """A response that is an ASGI callable of (receive, send): streams and passthroughs."""

    def __init__(self, run: Callable[[Receive, Send], Awaitable[None]]) -> None:
        self._run = run
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._run(receive, send)


def _json(body: Any, status: int = 200) -> Response:
    payload = dump_json(body)
    return _Raw(status, json_headers(len(payload)), payload)


def _ctx(request: Request) -> RequestContext:
    ctx = context(request.scope)
    if ctx is None:  # the app without RequestScope (never in create_app): make a record
        raise RuntimeError("RequestScope middleware is missing")
    return ctx


def _failure(ctx: RequestContext, exc: AnyllmError, *, param: str | None = None) -> Response:
    retry_after = exc.retry_after if isinstance(exc, UpstreamError) else None
    message = exc.message
    status, headers, body = render_error(
        ctx.fmt, exc.kind, message, param=param, retry_after=retry_after
    )
    ctx.error_type = error_type(ctx.fmt, exc.kind)
    ctx.error_message = message
    return _Raw(status, headers, body)


class Proxy:
    """The handlers, with what they share: settings, metrics, and (once started) the pipeline."""

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None) -> None:
        self.settings = settings
        self.transport = transport
        self._ids = catalog.model_ids(settings.backends.values())
        mapped = [m for b in settings.backends.values() for m in b.model_map.values()]
        self.metrics = Metrics(models=[*self._ids, *mapped])
        self._pipeline: Pipeline | None = None
        self.startup_error: AnyllmError | None = None

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        client = build_client(transport=self.transport)
        backends: dict[str, Backend] = {}
        try:
            for name, backend_settings in self.settings.backends.items():
                try:
                    backends[name] = build_backend(backend_settings, client)
                except AnyllmError as exc:  # the runner reports it as one line, not a traceback
                    self.startup_error = exc
                    raise
            self._pipeline = Pipeline(backends)
            yield
        finally:
            self._pipeline = None
            for backend in backends.values():
                await backend.aclose()
            await client.aclose()

    @property
    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            raise RuntimeError("the app's lifespan has not started")
        return self._pipeline

    def _backend(self, request: Request) -> Backend:
        name = request.path_params.get("backend") or self.settings.default_backend
        backend = self.pipeline.backends.get(name)
        if backend is None:
            known = ", ".join(self.settings.backends)
            raise _NotFound(f"no backend named {name!r} (configured: {known})")
        return backend

    # -- Anthropic and OpenAI calls ------------------------------------------------------------------

    async def messages(self, request: Request) -> Response:
        return await self._call(request, "/v1/messages", self.pipeline.messages)

    async def chat(self, request: Request) -> Response:
        return await self._call(request, "/v1/chat/completions", self.pipeline.chat)

    async def _call(
        self,
        request: Request,
        route: str,
        run: Callable[..., Awaitable[Reply]],
    ) -> Response:
        ctx = _ctx(request)
        ctx.route = route
        try:
            backend = self._backend(request)
            raw = await request.body()
            reply = await run(backend, raw, request.headers, ctx.call)
        except InvalidInput as exc:
            return _failure(ctx, exc, param=exc.path or None)
        except (UpstreamError, _NotFound) as exc:
            return _failure(ctx, exc)
        if isinstance(reply, JSONReply):
            return _json(reply.body)
        driver = StreamDriver(reply, ctx, ping_interval=self.settings.ping_interval)
        return _ASGI(driver)

    async def gemini(self, request: Request) -> Response:
        """`POST /v1beta/models/{model}:{generateContent|streamGenerateContent|countTokens}`."""
        ctx = _ctx(request)
        model, _, action = request.path_params["target"].rpartition(":")
        # a label per served action; any other (client-chosen) text is one label
        ctx.route = f"/v1beta/models:{action if action in _GEMINI_ACTIONS else '*'}"
        try:
            if not model or action not in _GEMINI_ACTIONS:
                raise _NotFound(
                    f"no method {action or request.path_params['target']!r}; "
                    f"served: {', '.join(_GEMINI_ACTIONS)}"
                )
            backend = self._backend(request)
            raw = await request.body()
            if action == "countTokens":
                count = await self.pipeline.gemini_count(raw, model=model)
                return _json({"totalTokens": count})
            stream = action == "streamGenerateContent"
            if stream and request.query_params.get("alt") != "sse":
                raise InvalidInput(
                    "streamGenerateContent is served as SSE only: add ?alt=sse", "alt"
                )
            reply = await self.pipeline.gemini(
                backend, raw, request.headers, ctx.call, model=model, stream=stream
            )
        except InvalidInput as exc:
            return _failure(ctx, exc, param=exc.path or None)
        except (UpstreamError, _NotFound) as exc:
            return _failure(ctx, exc)
        if isinstance(reply, JSONReply):
            return _json(reply.body)
        return _ASGI(StreamDriver(reply, ctx, ping_interval=self.settings.ping_interval))

    async def count_tokens(self, request: Request) -> Response:
        ctx = _ctx(request)
        ctx.route = "/v1/messages/count_tokens"
        try:
            backend = self._backend(request)
            count = await self.pipeline.count_tokens(backend, await request.body(), request.headers)
        except InvalidInput as exc:
            return _failure(ctx, exc, param=exc.path or None)
        except (UpstreamError, _NotFound) as exc:
            return _failure(ctx, exc)
        return _json({"input_tokens": count})

    # -- listings and probes -------------------------------------------------------------------------

    async def models(self, request: Request) -> Response:
        ctx = _ctx(request)
        ctx.route = "/v1/models"
        if ctx.fmt is ClientFormat.ANTHROPIC:
            return _json(catalog.anthropic_page(self._ids, request.query_params))
        return _json(catalog.openai_list(self._ids))

    async def model(self, request: Request) -> Response:
        ctx = _ctx(request)
        ctx.route = "/v1/models/{id}"
        model_id = request.path_params["model_id"]
        if model_id not in self._ids:
            return _failure(ctx, _NotFound(f"model {model_id!r} is not one this proxy lists"))
        if ctx.fmt is ClientFormat.ANTHROPIC:
            return _json(catalog.anthropic_model(model_id))
        return _json(catalog.openai_model(model_id))

    async def root(self, request: Request) -> Response:
        _ctx(request).route = "/"
        return _json({"name": "anyllm", "version": __version__, "status": "ok"})

    async def health(self, request: Request) -> Response:
        _ctx(request).route = "/health"
        return _json({"status": "ok"})

    async def metrics_page(self, request: Request) -> Response:
        _ctx(request).route = "/metrics"
        body = self.metrics.render().encode()
        headers = [
            (b"content-type", b"text/plain; version=0.0.4; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
        ]
        return _Raw(200, headers, body)

    async def not_found(self, request: Request) -> Response:
        ctx = _ctx(request)
        message = f"{request.method} {request.url.path} is not a route of this proxy"
        return _failure(ctx, _NotFound(message))

    # -- passthrough ---------------------------------------------------------------------------------

    async def passthrough(self, request: Request) -> Response:
        ctx = _ctx(request)
        ctx.route = "/v1/*"
        try:
            backend = self._backend(request)
        except _NotFound as exc:
            return _failure(ctx, exc)
        rest = request.path_params["rest"]
        if rest.split("/", 1)[0] in _OWN_ROUTES:  # ours, with another method
            message = f"{request.method} is not allowed on {request.url.path}"
            return _failure(ctx, _NotFound(message))
        if backend.api != "chat" or backend.settings.kind == "echo":
            message = f"{request.url.path} is not served by backend {backend.settings.name!r}"
            return _failure(ctx, _NotFound(message))
        ctx.call.backend = backend.settings.name
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        prefix = 2 if "backend" in request.path_params else 1  # NAME/v1 or v1
        headers = {k: request.headers[k] for k in _FORWARD_REQUEST if k in request.headers}
        try:
            path = passthrough_path(raw_path, prefix, request.scope.get("query_string", b""))
            content = await request.body()
            upstream = backend.forward(request.method, path, content, headers)
        except (BadPath, InvalidInput) as exc:
            return _failure(ctx, exc)

        async def run(receive: Receive, send: Send) -> None:
            try:
                async with upstream as stream:
                    ctx.call.upstream_headers = stream.headers
                    kept = [
                        (k.lower().encode(), v.encode("latin-1", "replace"))
                        for k, v in stream.headers.items()
                        if k.lower() in _FORWARD_RESPONSE
                    ]
                    await send(
                        {"type": "http.response.start", "status": stream.status, "headers": kept}
                    )
                    async for chunk in stream:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    await send({"type": "http.response.body", "body": b""})
            except UpstreamError as exc:
                await _failure(ctx, exc)(request.scope, receive, send)

        return _ASGI(run)


class _NotFound(AnyllmError):
    kind = ErrorKind.NOT_FOUND


def _routes(proxy: Proxy) -> list[Route]:
    def both(path: str, endpoint: Handler, methods: list[str], name: str) -> list[Route]:
        return [
            Route(path, endpoint, methods=methods, name=name),
            Route("/{backend}" + path, endpoint, methods=methods, name=f"{name}_named"),
        ]

    return [
        Route("/", proxy.root, methods=["GET", "HEAD"]),
        Route("/health", proxy.health, methods=["GET", "HEAD"]),
        Route("/metrics", proxy.metrics_page, methods=["GET"]),
        *both("/v1/messages", proxy.messages, ["POST"], "messages"),
        *both("/v1/messages/count_tokens", proxy.count_tokens, ["POST"], "count_tokens"),
        *both("/v1/models", proxy.models, ["GET"], "models"),
        *both("/v1/models/{model_id:path}", proxy.model, ["GET"], "model"),
        *both("/v1/chat/completions", proxy.chat, ["POST"], "chat"),
        *both("/v1beta/models/{target:path}", proxy.gemini, ["POST"], "gemini"),
        *both("/v1/models/{target:path}", proxy.gemini, ["POST"], "gemini_v1"),
        *both("/v1/{rest:path}", proxy.passthrough, ALL_METHODS, "passthrough"),
        Route("/{path:path}", proxy.not_found, methods=ALL_METHODS),
    ]


def create_app(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
) -> Starlette:
    """The proxy as an ASGI app. `transport` replaces the network (tests)."""
    proxy = Proxy(settings, transport)

    app = Starlette(
        routes=_routes(proxy),
        middleware=[
            Middleware(
                RequestScope, metrics=proxy.metrics, degradation_header=settings.degradation_header
            ),
            Middleware(Auth, keys=settings.proxy_api_keys, metrics_auth=settings.metrics_auth),
            Middleware(BodyLimit, max_bytes=settings.max_body_bytes, timeout=settings.body_timeout),
            Middleware(ConcurrencyLimit, limit=settings.max_concurrency),
        ],
        lifespan=proxy.lifespan,
    )
    app.state.proxy = proxy

    async def unrouted(scope: Scope, receive: Receive, send: Send) -> None:
        """Paths no route pattern can match (a decoded newline): a 404 in the caller's format."""
        response = await proxy.not_found(Request(scope, receive))
        await response(scope, receive, send)

    app.router.default = unrouted
    return app
