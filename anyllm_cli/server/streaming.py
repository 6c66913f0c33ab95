"""The streaming driver: one upstream stream to one client, with the status committed late.

    open upstream ──error──> HTTP error in the client's format (429 keeps retry-after)
         │ 2xx
    delivery:      upstream bytes ──StreamReply.chunks()──> client, one write per upstream read;
                   the status goes out with the first chunk (or the first keepalive)
    keepalive task: a ping after `ping_interval` without a write (one task, no timer per chunk)
    watcher task:  http.disconnect ──> cancel everything; leaving the reply closes the upstream
    what the client saw (first byte, failure, disconnect) ──> the reply ──> the pipeline's completion

The status is committed only after the upstream answered and its first chunk arrived (or
`ping_interval` passed in silence), so an upstream that fails at once still gets a proper HTTP error.
While the upstream is silent the client gets a keepalive every `ping_interval` (Anthropic `ping`
events, `: keepalive` comments for OpenAI clients). After the first byte, any failure (upstream
error, idle timeout, a stream that does not parse, a bug) becomes the client's in-stream error event:
a stream never ends silently.

What it gives up: no read-ahead: the upstream is read while the client's previous write completes
(the socket buffers on both sides do the smoothing), so a slow client slows the upstream read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from starlette.types import Receive, Send

from anyllm_cli.errors import ErrorKind, InvalidInput, UpstreamError
from anyllm_cli.pipeline import StreamReply
from anyllm_cli.server.context import RequestContext
from anyllm_cli.server.formats import Headers, error_type, render_error

log = logging.getLogger("anyllm.server")


@dataclass(frozen=True, slots=True)
class _Failure:
    kind: ErrorKind
    message: str
    retry_after: float | None = None


class StreamDriver:
    def __init__(
        self,
        reply: StreamReply,
        ctx: RequestContext,
        *,
        ping_interval: float,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.reply = reply
        self.ctx = ctx
        self.ping_interval = ping_interval
        self._clock = clock
        self.committed = False
        self.ended = False  # the last byte is on its way: a disconnect now is the normal end
        self.disconnected = False
        self._last = 0.0  # when the client last got bytes (or the stream opened)
        self._writing = False  # the delivery is inside send(): no keepalive now
        self._pinging: anyio.Event | None = None  # set while a keepalive is being sent

    async def __call__(self, receive: Receive, send: Send) -> None:
        try:
            async with self.reply:
                await self._run(receive, send)
        except UpstreamError as exc:
            if self.committed:  # only opening raises here; a late one is the reply's own closing
                log.warning("upstream error after the stream ended: %s", exc.message)
                return
            await self._send_error(send, _Failure(exc.kind, exc.message, exc.retry_after))

    async def _run(self, receive: Receive, send: Send) -> None:
        self._last = self._clock()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch, receive, tg.cancel_scope)
            tg.start_soon(self._keepalive, send)
            await self._deliver(send)
            tg.cancel_scope.cancel()

    async def _deliver(self, send: Send) -> None:
        """Each upstream read, translated, is one write to the client; then the end or the error."""
        failure: _Failure
        try:
            async for chunk in self.reply.chunks():
                await self._write(send, chunk)
        except UpstreamError as exc:
            failure = _Failure(exc.kind, exc.message, exc.retry_after)
        except InvalidInput as exc:
            failure = _Failure(ErrorKind.API_ERROR, f"the upstream's stream does not parse: {exc}")
        except Exception:  # a bug in translation: the client still gets an error, never silence
            log.exception("stream failed (request %s)", self.ctx.request_id)
            failure = _Failure(ErrorKind.API_ERROR, "internal error in the proxy")
        else:
            await self._quiet()
            await self._commit(send)
            self.ended = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await self._quiet()
        await self._fail(send, failure)

    async def _write(self, send: Send, chunk: bytes) -> None:
        if self._pinging is not None:
            await self._quiet()
        if not self.committed:
            await self._commit(send)
            self.reply.first_byte()
        self._writing = True
        try:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            self._writing = False
            self._last = self._clock()

    async def _quiet(self) -> None:
        """Wait for a keepalive being sent to be out, so two writes never interleave."""
        while self._pinging is not None:
            await self._pinging.wait()

    async def _keepalive(self, send: Send) -> None:
        """One task per stream (no timer per chunk): a keepalive after `ping_interval` of silence
        (Anthropic `ping`, `: keepalive` for OpenAI clients); the first one commits the status."""
        interval = self.ping_interval
        while True:
            wait = interval if self._writing else self._last + interval - self._clock()
            await anyio.sleep(max(wait, 0.0))
            if self.ended or self._writing or self._clock() - self._last < interval:
                continue
            pinging = self._pinging = anyio.Event()
            try:
                await self._commit(send)
                await send(
                    {"type": "http.response.body", "body": self.reply.keepalive, "more_body": True}
                )
            finally:
                self._last = self._clock()
                self._pinging = None
                pinging.set()

    async def _watch(self, receive: Receive, scope: anyio.CancelScope) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if self.ended:
                    return
                self.disconnected = True
                self.reply.client_left(committed=self.committed)
                scope.cancel()
                return

    async def _commit(self, send: Send) -> None:
        if self.committed:
            return
        self.committed = True
        headers: Headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})

    async def _fail(self, send: Send, failure: _Failure) -> None:
        if not self.committed:
            await self._send_error(send, failure)
            return
        log.warning(
            "stream failed after the first byte (request %s): %s",
            self.ctx.request_id,
            failure.message,
        )
        self._record(failure, 200)
        body = self.reply.fail(failure.kind, failure.message)
        self.ended = True
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _send_error(self, send: Send, failure: _Failure) -> None:
        self.committed = True
        status, headers, body = render_error(
            self.ctx.fmt, failure.kind, failure.message, retry_after=failure.retry_after
        )
        self._record(failure, status)
        self.ended = True
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _record(self, failure: _Failure, status: int) -> None:
        self.ctx.error_type = error_type(self.ctx.fmt, failure.kind)
        self.ctx.error_message = failure.message
        self.reply.failed(failure.kind, failure.message, status)
