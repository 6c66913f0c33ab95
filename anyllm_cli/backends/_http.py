"""The one HTTP path to upstreams: the shared client, send, stream, retry, error mapping.

`build_client()` is the only place that makes an `httpx.AsyncClient`; one client serves every backend
for the life of the server. Its transport is aiohttp's (through `httpx-aiohttp`) when that package is
importable: measured on this project's 2-core machine, httpx's own pool collapsed under concurrency
64 (~70-240 requests/s) where the aiohttp-backed transport did ~900-1,600. The httpx API stays, so
tests pass an `httpx.MockTransport`. The client has no global timeout: each request carries its
backend's connect and read timeouts (the read timeout is also the idle limit between stream chunks).
It keeps no cookies (neither httpx's jar nor aiohttp's): one client serves every caller, so an
upstream's `Set-Cookie` for one caller must never ride along on another caller's request.

`HTTPUpstream.open()` is the single send/retry loop. Before any byte has been handed to the caller it
retries connection failures and 408/429/500/502/503/504/529 with exponential backoff and jitter,
honouring `retry-after-ms`/`Retry-After` (seconds or an HTTP date) and `x-should-retry`. A
Retry-After longer than `max_retry_after` is not waited for: the error goes to the caller with its
`retry_after`, so the client's own retry logic decides. Error bodies are classified by
`errors.parse_error_body`; the upstream status is kept (a 429 stays a 429).

Failures map once, here:

    before the response      ConnectError/ConnectTimeout/ReadError/...  -> UpstreamError(BAD_GATEWAY)
                             a malformed HTTP reply                      -> UpstreamError(BAD_GATEWAY)
                             ReadTimeout/WriteTimeout/PoolTimeout        -> UpstreamError(TIMEOUT)
    error status             401/403: the proxy's credentials refused    -> UpstreamError(BAD_GATEWAY)
                             others: the body, parsed                    -> UpstreamError(kind, status)
    stream opened            2xx but not the stream's media type         -> UpstreamError(BAD_GATEWAY)
    mid-stream               idle longer than read_timeout               -> UpstreamError(TIMEOUT)
                             connection dropped                          -> UpstreamError(API_ERROR)

Messages name the backend, never its address or the exception's text (which holds host:port);
those go to the log. Upstream error text is relayed with key-like strings masked (OpenAI's 401
echoes the start and end of the key it was given), and a 401/403 text is not relayed at all.

What it gives up: no retry once the caller has bytes (a stream that dies mid-way is the caller's to
report), no HTTP/2 (aiohttp speaks HTTP/1.1; for one proxy talking to a few upstreams keep-alive
pools do as well), no circuit breaker.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import TYPE_CHECKING, Any, Literal

import anyio
import httpx

from anyllm_cli.backends.base import StreamContext, UpstreamReply, UpstreamStream
from anyllm_cli.errors import (
    CredentialsRefused,
    ErrorKind,
    InvalidInput,
    UpstreamError,
    parse_error_body,
)
from anyllm_cli.models import codec

if TYPE_CHECKING:
    from anyllm_cli.config import BackendSettings

log = logging.getLogger("anyllm.upstream")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 529})
# Failures before a response where the request may be sent again.
_RETRY_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
    httpx.NetworkError,
)
Engine = Literal["auto", "aiohttp", "httpx"]
try:  # httpx-aiohttp maps most of aiohttp's errors, not those for a malformed reply
    from aiohttp import ClientError as _AiohttpError

    _AIOHTTP_ERRORS: tuple[type[Exception], ...] = (_AiohttpError,)
except ImportError:  # pragma: no cover - the httpx engine
    _AIOHTTP_ERRORS = ()
EVENT_STREAM = "text/event-stream"
# Key-like strings in upstream error text: OpenAI/Anthropic-style keys, Google API keys.
_KEYLIKE = re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-*.]{3,}|\bAIza[A-Za-z0-9_\-]{8,}")


def build_client(
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    engine: Engine = "auto",
    max_connections: int = 2048,
    trust_env: bool = True,
) -> httpx.AsyncClient:
    """The shared client. `transport` wins (tests); else `engine` picks aiohttp's or httpx's."""
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=30.0,
    )
    if transport is None:
        transport = _transport(engine, limits)
    no_cookies = CookieJar(DefaultCookiePolicy(allowed_domains=[]))  # accepts none
    return httpx.AsyncClient(
        transport=transport,
        timeout=None,
        follow_redirects=False,
        trust_env=trust_env,
        cookies=no_cookies,
    )


def _transport(engine: Engine, limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    if engine in ("auto", "aiohttp"):
        try:
            import aiohttp
            from httpx_aiohttp import AiohttpTransport
        except ImportError:
            if engine == "aiohttp":
                raise
        else:
            transport = AiohttpTransport(limits=limits)

            def session() -> aiohttp.ClientSession:  # made in the loop, at the first request
                connector = aiohttp.TCPConnector(
                    limit=limits.max_connections or 0,
                    keepalive_timeout=limits.keepalive_expiry,
                    ssl=transport.ssl_context,
                )
                return aiohttp.ClientSession(
                    connector=connector, cookie_jar=aiohttp.DummyCookieJar()
                )

            transport.client = session
            return transport
    return httpx.AsyncHTTPTransport(limits=limits)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff timing; `jitter` (a random draw in [0, 1)), `sleep` and `clock` are injectable."""

    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0
    jitter: Callable[[], float] = field(default=random.random)
    sleep: Callable[[float], Awaitable[None]] = field(default=anyio.sleep)
    clock: Callable[[], float] = field(default=time.time)

    def backoff(self, attempt: int) -> float:
        """Exponential with equal jitter: half the step fixed, half random."""
        step = min(self.max_delay, self.base_delay * 2.0**attempt)
        return step / 2 + self.jitter() * step / 2


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` in seconds or as an HTTP date."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if not value:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            seconds = _http_date(value, now) if scale == 1.0 else math.nan
        if math.isfinite(seconds):
            return max(0.0, seconds)
    return None


def _http_date(value: str, now: float) -> float:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return math.nan
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp() - now


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class ResponseStream:
    """An `UpstreamStream` over an httpx response: raw bytes, errors mapped to UpstreamError."""

    def __init__(
        self,
        response: httpx.Response,
        read_timeout: float,
        body: bytes | None = None,
        backend: str = "",
    ) -> None:
        self.status = response.status_code
        self.headers: Mapping[str, str] = response.headers
        if body is not None:  # decoded already: the framing headers no longer hold
            self.headers = {
                k: v
                for k, v in response.headers.items()
                if k not in ("content-encoding", "content-length", "transfer-encoding")
            }
        self._response = response
        self._read_timeout = read_timeout
        self._body = body  # an error body already read (forward)
        self._backend = backend
        self._chunks: AsyncIterator[bytes] | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if self._body is not None:
            body, self._body = self._body, b""
            if body:
                return body
            raise StopAsyncIteration
        if self._chunks is None:
            self._chunks = self._response.aiter_raw()
        try:
            return await self._chunks.__anext__()
        except httpx.ConnectTimeout as exc:  # aiohttp reports a dropped connection this way
            raise _dropped(self._backend, exc) from None
        except httpx.TimeoutException:
            raise UpstreamError(
                ErrorKind.TIMEOUT,
                f"upstream sent nothing for {self._read_timeout:g} s (read_timeout)",
            ) from None
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise _dropped(self._backend, exc) from None

    async def aclose(self) -> None:
        chunks, self._chunks = self._chunks, None
        aclose = getattr(chunks, "aclose", None)
        with anyio.move_on_after(2.0, shield=True):
            try:
                if aclose is not None:
                    await aclose()
            finally:
                await self._response.aclose()


def _dropped(backend: str, exc: BaseException) -> UpstreamError:
    log.warning("backend %s: connection dropped mid-stream: %s", backend, _describe(exc))
    return UpstreamError(
        ErrorKind.API_ERROR,
        f"the connection to backend {backend} dropped mid-stream ({type(exc).__name__})",
    )


def scrub(text: str) -> str:
    """Upstream error text fit for a client: key-like strings masked."""
    return _KEYLIKE.sub("[redacted]", text)


def _error_body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip()


# (method, url, body, headers) -> the headers to send: a fresh token or signature per attempt.
Auth = Callable[[str, str, bytes, Mapping[str, str]], Awaitable[Mapping[str, str]]]


class HTTPUpstream:
    """Requests to one backend's base URL through the shared client, with retries."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        settings: BackendSettings,
        retry: RetryPolicy | None = None,
        *,
        auth: Auth | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self.auth = auth  # the headers made again for each attempt (bearer tokens, signatures)
        self.timeout = httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.read_timeout,
            pool=None,
        )

    def url(self, path: str) -> str:
        return self.settings.base_url + (path if path.startswith("/") else "/" + path)

    async def send_json(
        self, path: str, body: dict[str, Any], headers: Mapping[str, str]
    ) -> UpstreamReply:
        content = codec.dumps(body)
        response = await self.open("POST", path, content, headers, read=True)
        try:
            data = codec.loads(response.content)
        except ValueError:
            raise UpstreamError(
                ErrorKind.BAD_GATEWAY,
                f"backend {self.settings.name} answered {response.status_code} with a body "
                "that is not JSON "
                f"(content-type {response.headers.get('content-type', 'none')})",
            ) from None
        return UpstreamReply(response.status_code, response.headers, data)

    def stream_json(
        self,
        path: str,
        body: dict[str, Any],
        headers: Mapping[str, str],
        *,
        media_type: str | None = EVENT_STREAM,
    ) -> StreamContext:
        """A stream that must come back as `media_type` (None: any): a 2xx with anything else (a
        captive portal's HTML, a wrong base URL's JSON) is a 502 before any byte reaches the caller."""
        content = codec.dumps(body)
        return StreamContext(
            self._stream("POST", path, content, headers, raise_status=True, media_type=media_type)
        )

    def stream_raw(
        self, method: str, path: str, content: bytes, headers: Mapping[str, str]
    ) -> StreamContext:
        """A passthrough: `path` must stay under the base URL once joined and normalised."""
        base = str(httpx.URL(self.settings.base_url + "/"))
        if not str(httpx.URL(self.url(path))).startswith(base):
            raise InvalidInput(f"the path {path!r} leaves backend {self.settings.name}'s base URL")
        return StreamContext(self._stream(method, path, content, headers, raise_status=False))

    @asynccontextmanager
    async def _stream(
        self,
        method: str,
        path: str,
        content: bytes,
        headers: Mapping[str, str],
        *,
        raise_status: bool,
        media_type: str | None = None,
    ) -> AsyncIterator[UpstreamStream]:
        response = await self.open(method, path, content, headers, raise_status=raise_status)
        if media_type is not None:
            await self._check_media(response, media_type)
        # An error status handed over (forward) was read already to classify it.
        body = response.content if response.is_stream_consumed else None
        stream = ResponseStream(response, self.settings.read_timeout, body, self.settings.name)
        try:
            yield stream
        finally:
            await stream.aclose()

    async def open(
        self,
        method: str,
        path: str,
        content: bytes,
        headers: Mapping[str, str],
        *,
        read: bool = False,
        raise_status: bool = True,
    ) -> httpx.Response:
        """Send until a success, a final error, or the retries run out. `read`: load the body too."""
        url = self.url(path)
        attempt = 0
        while True:
            sent = headers if self.auth is None else await self.auth(method, url, content, headers)
            request = self.client.build_request(
                method, url, content=content, headers=sent, timeout=self.timeout
            )
            try:
                response = await self.client.send(request, stream=True)
                if read or not response.is_success:
                    await self._read(response)
            except _RETRY_ERRORS as exc:
                if attempt >= self.settings.max_retries:
                    raise self._transport_error(exc) from None
                await self._pause(self.retry.backoff(attempt), attempt, _describe(exc))
                attempt += 1
                continue
            except httpx.HTTPError as exc:
                raise self._transport_error(exc) from None
            except _AIOHTTP_ERRORS as exc:  # aiohttp's own, unmapped (a malformed reply)
                raise self._transport_error(exc) from None
            if response.is_success:
                return response
            if response.status_code in (401, 403):  # passthrough too: the proxy's key was sent
                raise self._refused(response)
            error = self._status_error(response)
            wait = self._retry_wait(response, error, attempt)
            if wait is not None:
                await self._pause(wait, attempt, f"status {response.status_code}")
                attempt += 1
                continue
            if not raise_status:
                return response
            raise error

    async def _check_media(self, response: httpx.Response, media_type: str) -> None:
        received = response.headers.get("content-type", "")
        if received.split(";", 1)[0].strip().lower() == media_type:
            return
        await response.aclose()
        raise UpstreamError(
            ErrorKind.BAD_GATEWAY,
            f"backend {self.settings.name} answered a stream request with {response.status_code} "
            f"and content-type {received or 'none'!r}, not {media_type}",
        )

    async def _read(self, response: httpx.Response) -> None:
        try:
            await response.aread()
        finally:
            await response.aclose()

    async def _pause(self, seconds: float, attempt: int, why: str) -> None:
        log.info(
            "retrying backend %s after %s in %.2f s (retry %d of %d)",
            self.settings.name,
            why,
            seconds,
            attempt + 1,
            self.settings.max_retries,
        )
        await self.retry.sleep(seconds)

    def _status_error(self, response: httpx.Response) -> UpstreamError:
        status = response.status_code
        kind, message = parse_error_body(_error_body(response.content), status)
        retry_after = parse_retry_after(response.headers, self.retry.clock())
        return UpstreamError(kind, scrub(message), status=status, retry_after=retry_after)

    def _refused(self, response: httpx.Response) -> UpstreamError:
        """The upstream refused the proxy's own credentials: not the client's fault, and its text
        (which may echo the key) stays in the log."""
        name, status = self.settings.name, response.status_code
        text = response.content[:300].decode("utf-8", "replace")
        log.warning(
            "backend %s refused the proxy's credentials (%d): %s", name, status, scrub(text)
        )
        return CredentialsRefused(
            f"backend {name} refused the proxy's upstream credentials (HTTP {status}); "
            "the proxy's operator must check its api_key",
        )

    def _retry_wait(
        self, response: httpx.Response, error: UpstreamError, attempt: int
    ) -> float | None:
        """Seconds to wait before trying again, or None to give up now."""
        if attempt >= self.settings.max_retries:
            return None
        hint = response.headers.get("x-should-retry", "").lower()
        if hint == "false" or error.kind is ErrorKind.BILLING:
            return None
        if hint != "true" and response.status_code not in RETRY_STATUSES:
            return None
        if error.retry_after is None:
            return self.retry.backoff(attempt)
        if error.retry_after > self.retry.max_retry_after:
            return None  # too long to hold the caller: let its own retry logic wait
        return error.retry_after

    def _transport_error(self, exc: Exception) -> UpstreamError:
        name = self.settings.name
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            return UpstreamError(
                ErrorKind.TIMEOUT,
                f"backend {name} did not answer within {self.settings.read_timeout:g} s "
                "(read_timeout)",
            )
        log.warning("backend %s: %s: %s", name, type(exc).__name__, _describe(exc))
        if isinstance(exc, httpx.RemoteProtocolError | httpx.DecodingError) or not isinstance(
            exc, httpx.HTTPError
        ):
            what = f"sent a malformed HTTP reply ({type(exc).__name__})"
        else:
            what = f"could not be reached ({type(exc).__name__})"
        return UpstreamError(ErrorKind.BAD_GATEWAY, f"backend {name} {what}")
