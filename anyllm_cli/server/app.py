"""The app factory: routes, thin handlers, the middleware stack and the lifespan.

| route                                   | handler                                             |
| --------------------------------------- | --------------------------------------------------- |
| GET/HEAD /                              | a small JSON hello (Claude Code probes the base URL)  |
| GET /health                             | `{"status": "ok"}`, no auth                          |
| GET /metrics                            | Prometheus text (auth only with `metrics_auth`)      |
| POST [/NAME]/v1/messages                | api "messages" (stream or not; `?beta=true` ok)       |
| POST [/NAME]/v1/messages/count_tokens   | api "count_tokens"                                    |
| GET  [/NAME]/v1/models[/{id}]           | the catalog, Anthropic or OpenAI shape by headers     |
| POST [/NAME]/v1/chat/completions        | api "chat"                                            |
| POST [/NAME]/v1beta/models/{m}:{action} | api "gemini" / "gemini_count" (Gemini clients; also  |
|                                         | under /v1/models/, Gemini's v1 API)                   |
| /v1/messages/batches*, /v1/files*,      | batches.py: Message Batches, Files, Batches over   |
| /v1/batches*                            | the store and the batch engine (started here)      |
| any  [/NAME]/v1/...                     | api "forward": passed through to OpenAI-compatible    |
|                                         | backends                                              |
| anything else                           | 404 in the caller's format                            |

Every model call is one `ClientRequest` handed to `Pipeline.run` (the caller's principal comes from
the ASGI scope key `anyllm.principal` when an auth middleware set one); handlers parse nothing
themselves and render what comes back; an `AnyllmError` a handler raises renders in the caller's
format through one Starlette exception handler (`on_error`). `create_app(settings, guard=..., observers=..., pricer=...)` builds everything from its
arguments, registers nothing globally, and opens the HTTP client and backends in the lifespan, in
one exit stack (closed in reverse order).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
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
from anyllm_cli.errors import AnyllmError, InvalidInput, NotFound
from anyllm_cli.keys.guard import KeyGuard
from anyllm_cli.keys.pricing import PriceTable
from anyllm_cli.keys.resolver import KeyResolver
from anyllm_cli.keys.webhooks import BudgetAlerts
from anyllm_cli.pipeline import (
    ANONYMOUS,
    CallObserver,
    ClientRequest,
    Guard,
    JSONReply,
    Pipeline,
    Pricer,
    Principal,
    StreamReply,
)
from anyllm_cli.pipeline.seams import ClientAPI
from anyllm_cli.routing import StaticRouter
from anyllm_cli.server import batches, catalog
from anyllm_cli.server.access import AccessLog
from anyllm_cli.server.admin import Admin, admin_routes
from anyllm_cli.server.context import PRINCIPAL_KEY, RequestContext, context
from anyllm_cli.server.formats import (
    ClientFormat,
    Headers,
    dump_json,
    error_type,
    json_headers,
    render_error,
)
from anyllm_cli.server.forwarding import ForwardDriver
from anyllm_cli.server.headers import SECRET_HEADERS
from anyllm_cli.server.metrics import Metrics
from anyllm_cli.server.middleware import Auth, BodyLimit, ConcurrencyLimit, RequestScope
from anyllm_cli.server.paths import passthrough_path
from anyllm_cli.server.streaming import StreamDriver
from anyllm_cli.stores import Store, open_store

log = logging.getLogger("anyllm.server")
Handler = Callable[[Request], Awaitable[Response]]
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# Headers a passthrough hands back; credentials and hop-by-hop headers never pass.
_OWN_ROUTES = frozenset({"messages", "chat", "models"})
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
    retry_after = getattr(exc, "retry_after", None)
    message = exc.message
    status, headers, body = render_error(
        ctx.fmt, exc.kind, message, param=param, retry_after=retry_after
    )
    extra = getattr(exc, "headers", None)  # a guard's refusal: the key's rate-limit state
    if isinstance(extra, dict):
        taken = {k for k, _ in headers}
        headers = [
            *headers,
            *((k.encode(), v.encode()) for k, v in extra.items() if k.encode() not in taken),
        ]
    ctx.error_type = error_type(ctx.fmt, exc.kind)
    ctx.error_message = message
    return _Raw(status, headers, body)


class Proxy:
    """The handlers, with what they share: settings, metrics, and (once started) the pipeline."""

    def __init__(
        self,
        settings: Settings,
        transport: httpx.AsyncBaseTransport | None,
        *,
        guard: Guard | None = None,
        observers: Sequence[CallObserver] = (),
        pricer: Pricer | None = None,
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.guard = guard
        self.pricer = pricer
        self.store: Store | None = None
        self.resolver: KeyResolver | None = None
        self._ids = catalog.model_ids(settings.backends.values())
        mapped = [m for b in settings.backends.values() for m in b.model_map.values()]
        self.metrics = Metrics(models=[*self._ids, *mapped])
        self.observers = (AccessLog(self.metrics), *observers)
        self._pipeline: Pipeline | None = None
        self.startup_error: AnyllmError | None = None
        self.batch_api = batches.BatchAPI(settings.backends, settings.batch)

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Every resource opens here and closes in reverse order through one exit stack."""
        async with AsyncExitStack() as stack:
            client = build_client(transport=self.transport)
            stack.push_async_callback(client.aclose)
            backends: dict[str, Backend] = {}
            for name, backend_settings in self.settings.backends.items():
                try:
                    backend = build_backend(backend_settings, client)
                except AnyllmError as exc:  # the runner reports it as one line, not a traceback
                    self.startup_error = exc
                    raise
                stack.push_async_callback(backend.aclose)
                backends[name] = backend
            guard, pricer = await self._open_keys(stack)
            router = StaticRouter(self.settings.backends, self.settings.default_backend)
            self._pipeline = Pipeline(
                backends,
                router=router,
                guard=guard,
                observers=self.observers,
                pricer=pricer,
            )
            stack.callback(setattr, self, "_pipeline", None)
            await self.batch_api.start(stack, self.store, self._pipeline)
            yield

    async def _open_keys(self, stack: AsyncExitStack) -> tuple[Guard | None, Pricer | None]:
        """The store (keys, limits, spend), its cached resolver, the KeyGuard and the price table;
        spend is flushed by a task that ends, flushing once more, before the store closes."""
        config = self.settings.store
        if config is None:
            return self.guard, self.pricer
        try:
            store = await open_store(config.url, config.redis_url)
        except AnyllmError as exc:
            self.startup_error = exc
            raise
        stack.push_async_callback(store.close)
        stack.callback(setattr, self, "store", None)
        self.store, self.resolver = store, KeyResolver(store)
        pricer = self.pricer or PriceTable.for_settings(self.settings)
        if self.guard is not None:
            return self.guard, pricer
        alerts = None
        if config.budget_webhook:
            hooks = httpx.AsyncClient(timeout=5.0)
            stack.push_async_callback(hooks.aclose)
            alerts = BudgetAlerts(store, config.budget_webhook, config.budget_thresholds, hooks)
        guard = KeyGuard(self.resolver, store, store.limiter, alerts=alerts)
        tasks = await stack.enter_async_context(anyio.create_task_group())
        tasks.start_soon(guard.run)
        stack.callback(tasks.cancel_scope.cancel)
        return guard, pricer

    @property
    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            raise RuntimeError("the app's lifespan has not started")
        return self._pipeline

    async def _run(self, request: Request, api: ClientAPI, route: str, **extra: Any) -> Response:
        """Hand the request to the pipeline and render its reply (or its error)."""
        ctx = _ctx(request)
        ctx.route = route
        headers = {k: v for k, v in request.headers.items() if k not in SECRET_HEADERS}
        principal = request.scope.get(PRINCIPAL_KEY)
        client_request = ClientRequest(
            api=api,
            body=await request.body(),
            headers=headers,
            backend=request.path_params.get("backend"),
            principal=principal if isinstance(principal, Principal) else ANONYMOUS,
            request_id=ctx.request_id,
            route=route,
            **extra,
        )
        ctx.piped = True
        reply = await self.pipeline.run(client_request)
        ctx.call = reply.call
        if isinstance(reply, JSONReply):
            self._cost_header(reply)
            return _json(reply.body)
        if isinstance(reply, StreamReply):
            return _ASGI(StreamDriver(reply, ctx, ping_interval=self.settings.ping_interval))
        return _ASGI(ForwardDriver(reply, ctx))

    def _cost_header(self, reply: JSONReply) -> None:
        """`x-anyllm-cost` (USD) on a JSON reply whose model has a price."""
        call, pricer = reply.call, self.pipeline.pricer
        if pricer is None or not call.backend:
            return
        cost = pricer.price(call.backend, call.upstream_model, call.usage())
        if cost is not None:
            call.reply_headers = {**call.reply_headers, "x-anyllm-cost": f"{cost:.6f}"}

    # -- Anthropic, OpenAI and Gemini calls ----------------------------------------------------------

    async def messages(self, request: Request) -> Response:
        return await self._run(request, "messages", "/v1/messages")

    async def chat(self, request: Request) -> Response:
        return await self._run(request, "chat", "/v1/chat/completions")

    async def count_tokens(self, request: Request) -> Response:
        return await self._run(request, "count_tokens", "/v1/messages/count_tokens")

    async def gemini(self, request: Request) -> Response:
        """`POST /v1beta/models/{model}:{generateContent|streamGenerateContent|countTokens}`."""
        ctx = _ctx(request)
        model, _, action = request.path_params["target"].rpartition(":")
        # a label per served action; any other (client-chosen) text is one label
        route = f"/v1beta/models:{action if action in _GEMINI_ACTIONS else '*'}"
        ctx.route = route
        if not model or action not in _GEMINI_ACTIONS:
            raise NotFound(
                f"no method {action or request.path_params['target']!r}; "
                f"served: {', '.join(_GEMINI_ACTIONS)}"
            )
        if action == "countTokens":
            return await self._run(request, "gemini_count", route, model=model)
        stream = action == "streamGenerateContent"
        if stream and request.query_params.get("alt") != "sse":
            raise InvalidInput("streamGenerateContent is served as SSE only: add ?alt=sse", "alt")
        return await self._run(request, "gemini", route, model=model, stream=stream)

    async def passthrough(self, request: Request) -> Response:
        """Any other `/v1/*`, to an OpenAI-compatible backend, through the pipeline (`forward`)."""
        ctx = _ctx(request)
        ctx.route = "/v1/*"
        rest = request.path_params["rest"]
        if rest.split("/", 1)[0] in _OWN_ROUTES:  # ours, with another method
            raise NotFound(f"{request.method} is not allowed on {request.url.path}")
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        prefix = 2 if "backend" in request.path_params else 1  # NAME/v1 or v1
        # confined under the backend's API prefix (BadPath, a 404, otherwise)
        confined = passthrough_path(raw_path, prefix, request.scope.get("query_string", b""))
        path, _, query = confined.partition("?")
        return await self._run(
            request, "forward", "/v1/*", path=path, method=request.method, query=query
        )

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
            raise NotFound(f"model {model_id!r} is not one this proxy lists")
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
        raise NotFound(f"{request.method} {request.url.path} is not a route of this proxy")

    async def on_error(self, request: Request, exc: Exception) -> Response:
        """Every `AnyllmError` a handler raises, rendered once, in the caller's format."""
        if not isinstance(exc, AnyllmError):  # registered for AnyllmError only
            raise exc
        param = exc.path or None if isinstance(exc, InvalidInput) else None
        return _failure(_ctx(request), exc, param=param)


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
        *batches.routes(proxy.batch_api),
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
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    guard: Guard | None = None,
    observers: Sequence[CallObserver] = (),
    pricer: Pricer | None = None,
) -> Starlette:
    """The proxy as an ASGI app. `transport` replaces the network (tests); `guard`, `observers`
    and `pricer` plug features into the pipeline's seams (the access log is always an observer)."""
    proxy = Proxy(settings, transport, guard=guard, observers=observers, pricer=pricer)

    app = Starlette(
        routes=[*admin_routes(Admin(lambda: proxy.store)), *_routes(proxy)],
        middleware=[
            Middleware(
                RequestScope, metrics=proxy.metrics, degradation_header=settings.degradation_header
            ),
            Middleware(
                Auth,
                keys=settings.proxy_api_keys,
                metrics_auth=settings.metrics_auth,
                resolver=lambda: proxy.resolver,
                master_key=settings.store.master_key if settings.store else None,
            ),
            Middleware(BodyLimit, max_bytes=settings.max_body_bytes, timeout=settings.body_timeout),
            Middleware(ConcurrencyLimit, limit=settings.max_concurrency),
        ],
        lifespan=proxy.lifespan,
        exception_handlers={AnyllmError: proxy.on_error},
    )
    app.state.proxy = proxy

    async def unrouted(scope: Scope, receive: Receive, send: Send) -> None:
        """Paths no route pattern can match (a decoded newline): a 404 in the caller's format."""
        response = await proxy.not_found(Request(scope, receive))
        await response(scope, receive, send)

    app.router.default = unrouted
    return app
