"""The seams of the request path: what a caller hands in, and what features plug into.

    ClientRequest ──Router──> [Candidate, ...] ──Guard.admit──> call the backend ──> completion
                                                                                    │
                                     Guard.settle(admission, outcome) <─────────────┤ exactly once,
                                     CallObserver.on_complete(outcome) <────────────┘ streams included

Every caller of the pipeline (the HTTP server, the batch engine, `anyllm replay`) builds a
`ClientRequest`; nothing else reaches a backend. The pipeline declares these Protocols and never
imports an implementation: keys implement `Guard`, recording implements `CallObserver`, and the
composition roots (the server's lifespan, each CLI command) wire them in.

What it gives up: one admission per request (a fallback to a second candidate is admitted under the
first's ticket), and observers see the finished call only, never a partial one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from anyllm_cli.errors import ErrorKind

ClientAPI = Literal["messages", "chat", "gemini", "count_tokens", "gemini_count", "forward"]
PrincipalKind = Literal["anonymous", "static", "virtual", "master"]
# "live": a caller is waiting (HTTP, replay). "batch": a batch item, which a guard lets use less of
# a key's limits than live calls, so a batch never takes the headroom live traffic needs.
Priority = Literal["live", "batch"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: resolved once by authentication (or a batch's owner, or replay's user)."""

    id: str  # a virtual key's id; "static" for PROXY_API_KEYS; "anonymous" without auth
    name: str = ""
    kind: PrincipalKind = "anonymous"


ANONYMOUS = Principal("anonymous")


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """One request as the caller sent it, before any routing or translation."""

    api: ClientAPI
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)  # credentials already stripped
    backend: str | None = None  # the /NAME/ prefix, or a batch's pin
    model: str | None = None  # Gemini: from the URL
    stream: bool | None = None  # Gemini: from the action; otherwise the body says
    principal: Principal = ANONYMOUS
    path: str = ""  # "forward": the path under the backend's API prefix
    method: str = "POST"
    query: str = ""
    request_id: str = ""
    route: str = ""  # the caller's route template, for logs and metrics ("/v1/messages")
    priority: Priority = "live"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One backend the router proposes for a request, with the model it will be asked for."""

    backend: str  # the configured name
    requested_model: str
    upstream_model: str


class Router(Protocol):
    def candidates(self, request: ClientRequest, requested_model: str) -> Sequence[Candidate]:
        """Backends to try, in order; raises `InvalidInput`/`NotFound`-kind errors when none fits."""
        ...


@dataclass(slots=True)
class Admission:
    """What a guard let in: headers for the client's reply (rate-limit state) and its own ticket."""

    headers: Mapping[str, str] = field(default_factory=dict)
    ticket: Any = None


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts the upstream reported (0 when it did not)."""

    input_tokens: int = 0  # prompt tokens, cache reads and writes included
    output_tokens: int = 0  # reasoning included
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    """A finished call, as the completion point sees it (once per request, streams included)."""

    request: ClientRequest
    candidate: Candidate | None  # None when the request failed before a backend was chosen
    status: int  # the status the client got (a stream that failed after its first byte keeps 200)
    usage: Usage
    cost_usd: float | None  # None when the model has no known price
    error: ErrorKind | None = None
    error_message: str = ""
    disconnected: bool = False  # the client left before the end
    stream: bool = False
    duration_s: float = 0.0
    ttft_s: float | None = None  # streams: time to the first byte sent to the client
    upstream_body: bytes | None = None  # the request as sent upstream (when an observer asks)
    response: dict[str, Any] | None = None  # the client's reply body (not a stream's)
    # a stream's events as the client got them, each one's JSON as it was framed, when an observer
    # asks for bodies: bytes, which the garbage collector never has to walk
    events: Sequence[bytes] = ()
    degradations: Sequence[str] = ()


class Guard(Protocol):
    """Admission control (keys: allow-lists, rpm, tpm, parallel, budget) and its bookkeeping."""

    async def admit(self, request: ClientRequest, candidate: Candidate) -> Admission:
        """Let the call in, or raise an `AnyllmError` whose kind renders the refusal
        (authentication 401, permission 403, rate_limit 429 with `retry_after`)."""
        ...

    async def settle(self, admission: Admission, outcome: Outcome) -> None:
        """Called exactly once for every admitted call, after its last byte (or error, or
        disconnect). Must not raise into the request path."""
        ...

    async def settle_elsewhere(self, outcome: Outcome) -> None:
        """A call a provider ran on its own, never admitted here (an item of a native batch):
        its spend only, once. Must not raise."""
        ...


class CallObserver(Protocol):
    """Sees every finished call (recording, spend, logs). Must be cheap: queue work, never block."""

    wants_bodies: bool  # ask the pipeline to keep the upstream body and the (accumulated) reply

    async def on_complete(self, outcome: Outcome) -> None: ...


class Pricer(Protocol):
    def price(self, backend: str, model: str, usage: Usage, *, batch: bool = False) -> float | None:
        """USD for this usage (at the provider's batch rates with `batch`), or None when the
        model has no known price."""
        ...
