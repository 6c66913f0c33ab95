"""The record one request carries through the middleware and its handler.

The outermost middleware creates it (request id, the caller's API format, the start time) and puts it
in the ASGI scope under `anyllm`; the handler hands the request to the pipeline (`piped`) and keeps
the pipeline's `Call` record; the middleware reads it back for response headers. A request the
pipeline saw is logged and metered at the pipeline's completion point (`access.AccessLog`); one it
never saw (auth, limits, listings, 404s) by the middleware. A plain mutable record: one request, one
task, no locking needed.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from anyllm_cli.pipeline import Call
from anyllm_cli.server.formats import ClientFormat

SCOPE_KEY = "anyllm"
PRINCIPAL_KEY = "anyllm.principal"  # set by an auth middleware that resolves keys to a Principal


@dataclass(slots=True)
class RequestContext:
    request_id: str
    fmt: ClientFormat
    start: float  # perf_counter at arrival
    route: str = ""  # the route template, for metrics ("/v1/messages")
    call: Call = field(default_factory=Call)
    piped: bool = False  # handed to the pipeline: its completion point logs and meters it
    error_type: str | None = None  # the error `type` the client got, if any
    error_message: str | None = None


def context(scope: MutableMapping[str, Any]) -> RequestContext | None:
    ctx = scope.get(SCOPE_KEY)
    return ctx if isinstance(ctx, RequestContext) else None
