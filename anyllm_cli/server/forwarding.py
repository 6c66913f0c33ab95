"""The passthrough driver: an upstream's status, its safe headers and its bytes, to the client.

    ForwardReply (entered: the upstream answered, any status) ──> http.response.start with the
    upstream's status and the headers below ──> each upstream read, one write ──> the end

A failure before the status went out is an error response in the caller's format; after it, the
body ends there (the pipeline's completion point has the error). Credentials and hop-by-hop headers
never pass back: only `_FORWARD_RESPONSE`.
"""

from __future__ import annotations

import logging

from starlette.types import Receive, Send

from anyllm_cli.errors import UpstreamError
from anyllm_cli.pipeline import ForwardReply
from anyllm_cli.server.context import RequestContext
from anyllm_cli.server.formats import error_type, render_error

log = logging.getLogger("anyllm.server")

_FORWARD_RESPONSE = ("content-type", "retry-after", "openai-processing-ms", "openai-version")


class ForwardDriver:
    """A passthrough reply to the client: the upstream's status, kept headers and bytes."""

    def __init__(self, reply: ForwardReply, ctx: RequestContext) -> None:
        self.reply = reply
        self.ctx = ctx

    async def __call__(self, receive: Receive, send: Send) -> None:
        started = False
        try:
            async with self.reply as reply:
                kept = [
                    (k.lower().encode(), v.encode("latin-1", "replace"))
                    for k, v in reply.headers.items()
                    if k.lower() in _FORWARD_RESPONSE
                ]
                await send({"type": "http.response.start", "status": reply.status, "headers": kept})
                started = True
                async for chunk in reply.chunks():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
        except UpstreamError as exc:
            if started:  # the status is out: end the body; the completion point has the error
                log.warning("passthrough failed after its first byte: %s", exc.message)
                await send({"type": "http.response.body", "body": b""})
                return
            status, headers, body = render_error(
                self.ctx.fmt, exc.kind, exc.message, retry_after=exc.retry_after
            )
            self.ctx.error_type = error_type(self.ctx.fmt, exc.kind)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
