"""The one HTTP path to upstreams: the shared client, send, stream, retry, error mapping.

`build_client()` is the only place that makes an `httpx.AsyncClient`; one client serves every backend
for the life of the server. Its transport is aiohttp's (through `httpx-aiohttp`) when that package is
importable: measured on this project's 2-core machine, httpx's own pool collapsed under concurrency
64 (~70-240 requests/s) where the aiohttp-backed transport did ~900-1,600. The httpx API stays, so
tests pass an `httpx.MockTransport`. The client has no global timeout: each request carries its
backend's connect and read timeouts (the read timeout is also the idle limit between stream chunks).

`HTTPUpstream.open()` is the single send/retry loop. Before any byte has been handed to the caller it
retries connection failures and 408/429/500/502/503/504/529 with exponential backoff and jitter,
honouring `retry-after-ms`/`Retry-After` (seconds or an HTTP date) and `x-should-retry`. A
Retry-After longer than `max_retry_after` is not waited for: the error goes to the caller with its
`retry_after`, so the client's own retry logic decides. Error bodies are classified by
`errors.parse_error_body`; the upstream status is kept (a 429 stays a 429).

Failures map once, here:

    before the response      ConnectError/ConnectTimeout/ReadError/...  -> UpstreamError(API_ERROR, 502)
                             ReadTimeout/WriteTimeout/PoolTimeout        -> UpstreamError(TIMEOUT)
    error status             the body, parsed                            -> UpstreamError(kind, status)
    mid-stream               idle longer than read_timeout               -> UpstreamError(TIMEOUT)
                             connection dropped                          -> UpstreamError(API_ERROR)

What it gives up: no retry once the caller has bytes (a stream that dies mid-way is the caller's to
report), no HTTP/2 (aiohttp speaks HTTP/1.1; for one proxy talking to a few upstreams keep-alive
pools do as well), no circuit breaker.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Literal

import anyio
import httpx

from anyllm_cli.backends.base import StreamContext, UpstreamReply, UpstreamStream
from anyllm_cli.errors import ErrorKind, InvalidInput, UpstreamError, parse_error_body
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
    return httpx.AsyncClient(
        transport=transport, timeout=None, follow_redirects=False, trust_env=trust_env
    )


def _transport(engine: Engine, limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    if engine in ("auto", "aiohttp"):
        try:
            from httpx_aiohttp import AiohttpTransport
        except ImportError:
            if engine == "aiohttp":
                raise
        else:
            return AiohttpTransport(limits=limits)
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
        self, response: httpx.Response, read_timeout: float, body: bytes | None = None
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
            raise _dropped(exc) from None
        except httpx.TimeoutException:
            raise UpstreamError(
                ErrorKind.TIMEOUT,
                f"upstream sent nothing for {self._read_timeout:g} s (read_timeout)",
            ) from None
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise _dropped(exc) from None

    async def aclose(self) -> None:
        chunks, self._chunks = self._chunks, None
        aclose = getattr(chunks, "aclose", None)
        with anyio.move_on_after(2.0, shield=True):
            try:
                if aclose is not None:
                    await aclose()
            finally:
                await self._response.aclose()


def _dropped(exc: BaseException) -> UpstreamError:
    return UpstreamError(
        ErrorKind.API_ERROR, f"upstream connection dropped mid-stream: {_describe(exc)}"
    )


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
                ErrorKind.API_ERROR,
                f"upstream answered {response.status_code} with a body that is not JSON "
                f"(content-type {response.headers.get('content-type', 'none')})",
                status=502,
            ) from None
        return UpstreamReply(response.status_code, response.headers, data)

    def stream_json(
        self, path: str, body: dict[str, Any], headers: Mapping[str, str]
    ) -> StreamContext:
        content = codec.dumps(body)
        return StreamContext(self._stream("POST", path, content, headers, raise_status=True))

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
    ) -> AsyncIterator[UpstreamStream]:
        response = await self.open(method, path, content, headers, raise_status=raise_status)
        # An error status handed over (forward) was read already to classify it.
        body = response.content if response.is_stream_consumed else None
        stream = ResponseStream(response, self.settings.read_timeout, body)
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
            if response.is_success:
                return response
            error = self._status_error(response)
            wait = self._retry_wait(response, error, attempt)
            if wait is not None:
                await self._pause(wait, attempt, f"status {response.status_code}")
                attempt += 1
                continue
            if not raise_status:
                return response
            raise error

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
        return UpstreamError(kind, message, status=status, retry_after=retry_after)

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

    def _transport_error(self, exc: httpx.HTTPError) -> UpstreamError:
        name = self.settings.name
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            return UpstreamError(
                ErrorKind.TIMEOUT,
                f"backend {name} did not answer within {self.settings.read_timeout:g} s "
                "(read_timeout)",
            )
        return UpstreamError(
            ErrorKind.API_ERROR,
            f"cannot reach backend {name} at {self.settings.base_url}: {_describe(exc)}",
            status=502,
        )
