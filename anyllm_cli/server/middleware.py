"""Pure-ASGI middleware, outermost first: the request record, auth, the body and concurrency limits.

    RequestScope     x-request-id (echoed or made), the caller's API format, response headers
                     (x-request-id, x-anyllm-overhead-ms, anthropic-ratelimit-*, retry-after,
                     x-anyllm-degradation, the guard's headers), any unexpected exception -> 500 in
                     the caller's format, then one access-log line and one metrics observation for
                     a request the pipeline never saw (the pipeline's completion point does the rest)
    Auth             who is calling -> a Principal in the scope: the master key, PROXY_API_KEYS
                     (constant time), or a virtual key from the store (by hash, cached); 401 saying
                     why (missing, invalid, revoked, expired); /admin/ and /key/ need the master key
    ConcurrencyLimit requests in flight beyond the limit -> 529 overloaded (503 for OpenAI clients)
    BodyLimit        the whole body read first (outside the concurrency limit): over the limit
                     -> 413 (declared or counted), not in within `body_timeout` -> 408

No `BaseHTTPMiddleware`: it buffers and breaks streaming and disconnect detection. Every layer
passes lifespan and non-HTTP scopes through. `/health` is never behind auth or limits; `/` and
`/metrics` (unless `metrics_auth`) are open too, since they carry nothing secret.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from anyllm_cli.errors import ErrorKind, StoreError
from anyllm_cli.keys.format import looks_like_key
from anyllm_cli.keys.resolver import KeyResolver
from anyllm_cli.pipeline.seams import ANONYMOUS, Principal
from anyllm_cli.server.access import access_fields, log_access
from anyllm_cli.server.context import PRINCIPAL_KEY, SCOPE_KEY, RequestContext, context
from anyllm_cli.server.formats import ClientFormat, client_format, error_type, render_error
from anyllm_cli.server.headers import (
    anthropic_ratelimit,
    degradation_header,
    openai_ratelimit,
    upstream_retry_after,
)
from anyllm_cli.server.metrics import Metrics

log = logging.getLogger("anyllm.server")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
OPEN_PATHS = frozenset({"/health"})
UNLIMITED_PATHS = frozenset({"/health", "/metrics"})
_AUTH_LINGER_S = 2.0
_AUTH_LINGER_BYTES = 1 << 20


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def send_error(
    send: Send,
    ctx: RequestContext | None,
    fmt: ClientFormat,
    kind: ErrorKind,
    message: str,
    *,
    param: str | None = None,
    retry_after: float | None = None,
) -> None:
    """A complete error response in the caller's format, noted in the request record."""
    status, headers, body = render_error(fmt, kind, message, param=param, retry_after=retry_after)
    if ctx is not None:
        ctx.error_type = error_type(fmt, kind)
        ctx.error_message = message
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestScope:
    """The outermost layer: owns the request record, response headers, crash rendering, logging."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        degradation_header: bool = False,
        clock: Callable[[], float] = time.perf_counter,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.degradation_header = degradation_header
        self._clock = clock
        self._now = now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        text = given.decode("latin-1") if given else ""
        request_id = text if _REQUEST_ID.match(text) else f"req_{uuid.uuid4().hex[:24]}"
        ctx = RequestContext(
            request_id=request_id,
            fmt=client_format(scope["path"], scope["headers"]),
            start=self._clock(),
        )
        scope[SCOPE_KEY] = ctx
        status = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", ()), *self._headers(ctx, message)]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            log.exception("unhandled error (request %s)", request_id)
            if status == 0:
                status = 500
                await send_error(
                    send_wrapper, ctx, ctx.fmt, ErrorKind.API_ERROR, "internal error in the proxy"
                )
        finally:
            self._record(scope, ctx, status)

    def _headers(self, ctx: RequestContext, message: Message) -> list[tuple[bytes, bytes]]:
        call = ctx.call
        overhead = max(0.0, self._clock() - ctx.start - call.upstream_s) * 1000
        out: list[tuple[bytes, bytes]] = [
            (b"x-request-id", ctx.request_id.encode()),
            (b"x-anyllm-overhead-ms", f"{overhead:.2f}".encode()),
        ]
        if ctx.fmt is ClientFormat.ANTHROPIC:
            out.append((b"request-id", ctx.request_id.encode()))
        extra: list[tuple[str, str]] = []
        if call.upstream_headers:
            if ctx.fmt is ClientFormat.ANTHROPIC:
                limits = anthropic_ratelimit(call.upstream_headers, self._now())
            else:
                limits = openai_ratelimit(call.upstream_headers)
            own = {k.lower() for k in call.reply_headers}  # a key's own limits win
            extra += [(k, v) for k, v in limits if k not in own]
            if not any(k == b"retry-after" for k, _ in message.get("headers", ())):
                extra += upstream_retry_after(call.upstream_headers)
        if call.reply_headers:
            extra += call.reply_headers.items()
        if self.degradation_header and call.degradations:
            extra.append(("x-anyllm-degradation", degradation_header(call.degradations)))
        out.extend((k.encode(), v.encode("latin-1", "replace")) for k, v in extra)
        return out

    def _record(self, scope: Scope, ctx: RequestContext, status: int) -> None:
        if ctx.piped:  # the pipeline's completion point logged and metered it
            return
        latency = self._clock() - ctx.start
        fields = access_fields(
            method=scope["method"],
            path=scope["path"],
            status=status,
            request_id=ctx.request_id,
            latency_s=latency,
            error_type=ctx.error_type,
            error=ctx.error_message,
        )
        log_access(fields)
        if scope["path"] in UNLIMITED_PATHS:
            return
        self.metrics.observe(
            backend="-",
            model="-",
            route=ctx.route or "other",
            status=status,
            error_type=ctx.error_type,
            latency_s=latency,
            ttft_s=None,
            tokens_in=0,
            tokens_out=0,
        )


# The admin API (ours, and LiteLLM's key routes): exact, so a backend named "key" stays a backend.
ADMIN_PATHS = frozenset(
    {
        "/admin/keys",
        "/admin/spend",
        *(f"/key/{op}" for op in ("generate", "update", "delete", "info", "list")),
    }
)


def is_admin_path(path: str) -> bool:
    return path in ADMIN_PATHS or path.startswith("/admin/keys/")


def _presented(scope: Scope) -> list[bytes]:
    """The credentials a caller sent: x-api-key, x-goog-api-key, Authorization: Bearer."""
    found: list[bytes] = []
    for name in (b"x-api-key", b"x-goog-api-key"):  # Anthropic's and Gemini's clients
        api_key = _header(scope, name)
        if api_key:
            found.append(api_key.strip())
    auth = _header(scope, b"authorization")
    if auth and auth[:7].lower() == b"bearer ":
        found.append(auth[7:].strip())
    return found


def _matches(candidates: list[bytes], keys: tuple[bytes, ...]) -> bool:
    ok = False
    for candidate in candidates:
        for key in keys:  # compare with every key: the time does not tell which matched
            ok |= hmac.compare_digest(candidate, key)
    return ok


class _Denied(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


class Auth:
    """Resolves the caller to a `Principal` in the scope under "anyllm.principal".

    The master key (admin API; other traffic with it is logged with a warning), then the static
    PROXY_API_KEYS, then virtual keys in the store (by hash, through the cached resolver). Without
    static keys and with no active key in the store, the proxy is open (anonymous). The admin routes
    take only the master key.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: Iterable[str],
        metrics_auth: bool = False,
        resolver: Callable[[], KeyResolver | None] | None = None,
        master_key: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self._keys = tuple(k.encode() for k in keys)
        self._master = (master_key.encode(),) if master_key else ()
        self._resolver = resolver
        self._clock = clock
        self._open = OPEN_PATHS | {"/"} | (frozenset() if metrics_auth else {"/metrics"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._open or PRINCIPAL_KEY in scope:
            await self.app(scope, receive, send)
            return
        ctx = context(scope)
        fmt = ctx.fmt if ctx else client_format(scope["path"], scope["headers"])
        try:
            principal = await self._principal(scope)
        except _Denied as denied:
            # a little of the body is read, so a client that sent one reads the 401, not a reset
            linger = _Linger(receive, _AUTH_LINGER_S, _AUTH_LINGER_BYTES)
            await _reject(scope, send, ErrorKind.AUTHENTICATION, denied.message, linger=linger)
            return
        except StoreError as exc:  # the key store is down: say so, not a 500 with its details
            log.error("key lookup failed: %s", exc.message)
            message = "the proxy cannot check keys right now (its key store is unavailable)"
            await send_error(send, ctx, fmt, ErrorKind.OVERLOADED, message, retry_after=1)
            return
        scope[PRINCIPAL_KEY] = principal
        await self.app(scope, receive, send)

    async def _principal(self, scope: Scope) -> Principal:
        given = _presented(scope)
        if is_admin_path(scope["path"]):
            if not self._master:
                raise _Denied("the admin API is off: set ANYLLM_MASTER_KEY to turn it on")
            if not _matches(given, self._master):
                raise _Denied("the admin API needs the master key (ANYLLM_MASTER_KEY)")
            return Principal("master", "master", "master")
        if self._master and _matches(given, self._master):
            log.warning("a request used the master key (%s %s)", scope["method"], scope["path"])
            return Principal("master", "master", "master")
        if self._keys and _matches(given, self._keys):
            return Principal("static", "static", "static")
        found = await self._virtual(given)
        if found is not None:
            return found
        resolver = self._resolver() if self._resolver is not None else None
        if self._keys or (resolver is not None and await resolver.active_keys()):
            problem = "invalid API key" if given else "missing API key"
            raise _Denied(
                f"{problem}: send a key of this proxy as x-api-key or Authorization: Bearer"
            )
        return ANONYMOUS

    async def _virtual(self, given: list[bytes]) -> Principal | None:
        resolver = self._resolver() if self._resolver is not None else None
        if resolver is None:
            return None
        for raw in given:
            secret = raw.decode("latin-1")
            if not looks_like_key(secret):
                continue
            record = await resolver.resolve(secret)
            if record is None:
                continue
            status = record.status(self._clock())
            if status != "active":
                raise _Denied(
                    f"this API key was {status}"
                    if status == "revoked"
                    else "this API key has expired"
                )
            return Principal(record.id, record.name, "virtual")
        return None


class ConcurrencyLimit:
    """At most `limit` requests in flight in this process; the next one is told to come back."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            ctx = context(scope)
            fmt = ctx.fmt if ctx else client_format(scope["path"], scope["headers"])
            message = (
                f"the proxy is at its limit of {self.limit} concurrent requests; retry shortly"
            )
            await send_error(send, ctx, fmt, ErrorKind.OVERLOADED, message, retry_after=1)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class BodyLimit:
    """Reads the whole request body before any inner layer runs, then replays it.

    Over `max_bytes` (declared or counted) -> 413; not all there within `timeout` seconds -> 408.
    Sits outside the concurrency limit: a client still sending its body (or never sending it)
    holds no slot. Every route buffers its body anyway (the handlers parse whole JSON documents).
    A rejected body is read on and dropped (`_linger`) so the client, still uploading, reads the
    error instead of a connection reset."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        seen = 0
        complete = False
        with anyio.move_on_after(self.timeout):
            while not complete:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return  # nobody left to answer
                chunk = message.get("body", b"")
                seen += len(chunk)
                if seen > self.max_bytes:
                    await self._too_large(scope, receive, send)
                    return
                chunks.append(chunk)
                complete = not message.get("more_body", False)
        if not complete:
            late = f"the request body did not arrive within {self.timeout:g} s"
            await _reject(scope, send, ErrorKind.TIMEOUT, late, status=408)
            return
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body is larger than the proxy's limit of {self.max_bytes} bytes"
        await _reject(
            scope,
            send,
            ErrorKind.REQUEST_TOO_LARGE,
            message,
            linger=_Linger(receive, self.timeout, 4 * self.max_bytes),
        )


def _replay(body: bytes, receive: Receive) -> Receive:
    """The buffered body as one message, then the real channel (disconnects reach the handler)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


@dataclass(frozen=True, slots=True)
class _Linger:
    """How long and how much of a rejected body to read and drop before closing."""

    receive: Receive
    seconds: float
    max_bytes: int


async def _reject(
    scope: Scope,
    send: Send,
    kind: ErrorKind,
    message: str,
    *,
    status: int | None = None,
    linger: _Linger | None = None,
) -> None:
    """An error response that closes the connection (the body was not read to its end).

    With `linger`, the response goes out whole but its end is held back while the rest of the body
    is read and dropped, as a web server's lingering close does: Hypercorn closes the connection as
    soon as a response ends, and closing a socket with unread data resets it, so a client still
    uploading would see a connection reset instead of this answer."""
    ctx = context(scope)
    fmt = ctx.fmt if ctx else client_format(scope["path"], scope["headers"])
    code, headers, body = render_error(fmt, kind, message, status=status)
    if ctx is not None:
        ctx.error_type = error_type(fmt, kind)
        ctx.error_message = message
    headers = [*headers, (b"connection", b"close")]
    await send({"type": "http.response.start", "status": code, "headers": headers})
    if linger is None:
        await send({"type": "http.response.body", "body": body})
        return
    await send({"type": "http.response.body", "body": body, "more_body": True})
    if await _drain(linger):
        await send({"type": "http.response.body", "body": b""})


async def _drain(linger: _Linger) -> bool:
    """Read and drop the rest of a body, bounded in time and bytes; False if the client left."""
    seen = 0
    with anyio.move_on_after(linger.seconds):
        while seen <= linger.max_bytes:
            message = await linger.receive()
            if message["type"] != "http.request":
                return False
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
    return True
