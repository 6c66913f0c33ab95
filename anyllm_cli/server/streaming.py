"""The streaming driver: one upstream stream to one client, with the status committed late.

    open upstream ──error──> HTTP error in the client's format (429 keeps retry-after)
         │ 2xx
    producer task: upstream bytes ──StreamReply.chunks()──> a small in-memory queue
    delivery:      queue ──> client; the status goes out with the first chunk (or the first ping)
    watcher task:  http.disconnect ──> cancel everything; leaving the reply closes the upstream
    what the client saw (first byte, failure, disconnect) ──> the reply ──> the pipeline's completion

The status is committed only after the upstream answered and its first chunk arrived (or
`ping_interval` passed in silence), so an upstream that fails at once still gets a proper HTTP error.
While the upstream is silent the client gets a keepalive every `ping_interval` (Anthropic `ping`
events, `: keepalive` comments for OpenAI clients). After the first byte, any failure (upstream
error, idle timeout, a stream that does not parse, a bug) becomes the client's in-stream error event:
a stream never ends silently. Chunks waiting in the queue are sent in one write.

What it gives up: at most `_QUEUE` translated chunks are buffered ahead of a slow client.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.types import Receive, Send

from anyllm_cli.errors import ErrorKind, InvalidInput, UpstreamError
from anyllm_cli.pipeline import StreamReply
from anyllm_cli.server.context import RequestContext
from anyllm_cli.server.formats import Headers, error_type, render_error

log = logging.getLogger("anyllm.server")

_QUEUE = 16


@dataclass(frozen=True, slots=True)
class _Failure:
    kind: ErrorKind
    message: str
    retry_after: float | None = None


_SILENCE = object()
_Item = bytes | _Failure


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
        tx, rx = anyio.create_memory_object_stream[_Item](max_buffer_size=_QUEUE)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._produce, tx)
            tg.start_soon(self._watch, receive, tg.cancel_scope)
            with rx:
                await self._deliver(rx, send)
            tg.cancel_scope.cancel()

    async def _produce(self, tx: MemoryObjectSendStream[_Item]) -> None:
        async with tx:
            try:
                async for chunk in self.reply.chunks():
                    await tx.send(chunk)
            except UpstreamError as exc:
                await tx.send(_Failure(exc.kind, exc.message, exc.retry_after))
            except InvalidInput as exc:
                message = f"the upstream's stream does not parse: {exc}"
                await tx.send(_Failure(ErrorKind.API_ERROR, message))
            except Exception:  # a bug in translation: the client still gets an error, never silence
                log.exception("stream failed (request %s)", self.ctx.request_id)
                await tx.send(_Failure(ErrorKind.API_ERROR, "internal error in the proxy"))

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

    async def _deliver(self, rx: MemoryObjectReceiveStream[_Item], send: Send) -> None:
        while True:
            item = await self._next(rx)
            if item is _SILENCE:
                await self._commit(send)
                await send(
                    {"type": "http.response.body", "body": self.reply.keepalive, "more_body": True}
                )
                continue
            if item is None:
                await self._commit(send)
                self.ended = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            if isinstance(item, _Failure):
                await self._fail(send, item)
                return
            assert isinstance(item, bytes)
            body, tail = self._drain(rx, item)
            await self._commit(send)
            self.reply.first_byte()
            await send({"type": "http.response.body", "body": body, "more_body": True})
            if isinstance(tail, _Failure):
                await self._fail(send, tail)
                return
            if tail:
                self.ended = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return

    async def _next(self, rx: MemoryObjectReceiveStream[_Item]) -> object:
        """The next item, None at the end, or _SILENCE after `ping_interval` without one."""
        try:
            return rx.receive_nowait()
        except anyio.WouldBlock:
            pass
        except anyio.EndOfStream:
            return None
        with anyio.move_on_after(self.ping_interval):
            try:
                return await rx.receive()
            except anyio.EndOfStream:
                return None
        return _SILENCE

    def _drain(
        self, rx: MemoryObjectReceiveStream[_Item], first: bytes
    ) -> tuple[bytes, _Failure | bool]:
        """Join chunks already queued; the tail says the stream ended (True) or failed."""
        parts = [first]
        while True:
            try:
                item = rx.receive_nowait()
            except anyio.WouldBlock:
                return b"".join(parts), False
            except anyio.EndOfStream:
                return b"".join(parts), True
            if isinstance(item, _Failure):
                return b"".join(parts), item
            parts.append(item)

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
