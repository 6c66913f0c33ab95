"""The one completion point: every call that entered `Pipeline.run` passes here exactly once.

    Pipeline.run ──> Completion(request) ──admit(candidate)──> Guard.admit ──> Admission
                          │
    JSON reply returned ──┤ finish(status, ...) ──> Outcome ──> Guard.settle(admission, outcome)
    stream left (last   ──┤                                 └─> each CallObserver.on_complete(outcome)
     byte, error, client  │
     gone)                │
    failure before a    ──┘ fail(exc): the status the client gets for that error, in its API
     reply
    ran elsewhere       ──> Pipeline.complete_elsewhere: an item a provider's batch API ran (native batches):
                            priced at batch rates, Guard.settle_elsewhere (spend), observers

`finish` is idempotent (the first call wins) and shielded from cancellation, so a client that goes
away mid-stream still settles its guard. A guard or an observer that raises is logged and skipped:
bookkeeping never fails a request that already has its answer. `settle` runs only for an admitted
call; observers see every call, refused or failed ones included.

When an observer `wants_bodies`, the Outcome carries the body sent upstream (as JSON bytes) and the
client's reply (for a stream, in every client API, `events`: each event's JSON as the client got
it, kept as the bytes serialised for its frame, so keeping them costs an append and no work for the
garbage collector; an observer parses and folds them if it wants a message); otherwise neither is
kept, so the hot path pays nothing for them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio

from anyllm_cli.errors import (
    AnyllmError,
    ErrorKind,
    InvalidInput,
    anthropic_error,
    gemini_error,
    openai_error,
)
from anyllm_cli.models import codec
from anyllm_cli.pipeline.replies import Call
from anyllm_cli.pipeline.seams import (
    Admission,
    CallObserver,
    Candidate,
    ClientAPI,
    ClientRequest,
    Guard,
    Outcome,
    Pricer,
)

log = logging.getLogger("anyllm.pipeline")

_ANTHROPIC_APIS = frozenset({"messages", "count_tokens"})
_GEMINI_APIS = frozenset({"gemini", "gemini_count"})


def status_for(api: ClientAPI, kind: ErrorKind) -> int:
    """The HTTP status a caller of `api` gets for an error of this kind."""
    if api in _ANTHROPIC_APIS:
        return anthropic_error(kind, "")[0]
    if api in _GEMINI_APIS:
        return gemini_error(kind, "")[0]
    return openai_error(kind, "")[0]


def describe(exc: BaseException) -> tuple[ErrorKind, str]:
    """The kind and message of a failure, as the client is told it."""
    if isinstance(exc, InvalidInput):
        return exc.kind, exc.message
    if isinstance(exc, AnyllmError):
        return exc.kind, exc.message
    if isinstance(exc, anyio.get_cancelled_exc_class()):
        return ErrorKind.API_ERROR, "the request was cancelled"
    return ErrorKind.API_ERROR, "internal error in the proxy"


class Completion:
    """One call's way to its single end: admission, then exactly one `finish`."""

    def __init__(
        self,
        request: ClientRequest,
        *,
        guard: Guard | None = None,
        observers: Sequence[CallObserver] = (),
        pricer: Pricer | None = None,
        keep_bodies: bool = False,
        clock: Callable[[], float] = time.perf_counter,
        ran_elsewhere: bool = False,
    ) -> None:
        self.request = request
        self.ran_elsewhere = ran_elsewhere
        self.call = Call()
        self.candidate: Candidate | None = None
        self.admission: Admission | None = None
        self.keep_bodies = keep_bodies
        self.events: list[bytes] = []  # a stream's events (JSON) as sent, when bodies are kept
        self.start = clock()
        self.done = False
        self.outcome: Outcome | None = None
        self._guard = guard
        self._observers = observers
        self._pricer = pricer
        self._clock = clock

    async def admit(self, candidate: Candidate) -> None:
        """Ask the guard to let the call in with this candidate (it raises to refuse)."""
        self.candidate = candidate
        if self._guard is None:
            return
        self.admission = await self._guard.admit(self.request, candidate)
        self.call.reply_headers = self.admission.headers

    async def fail(self, exc: BaseException) -> None:
        """A failure before the client got a reply: the status its error renders with."""
        kind, message = describe(exc)
        await self.finish(status=status_for(self.request.api, kind), error=kind, message=message)

    async def finish(
        self,
        *,
        status: int,
        error: ErrorKind | None = None,
        message: str = "",
        disconnected: bool = False,
        ttft_s: float | None = None,
        response: dict[str, Any] | None = None,
    ) -> Outcome | None:
        """Build the Outcome, settle the guard, tell the observers. Only the first call counts."""
        if self.done:
            return self.outcome
        self.done = True
        outcome = self._outcome(
            status,
            error,
            message=message,
            disconnected=disconnected,
            ttft_s=ttft_s,
            response=response,
        )
        self.outcome = outcome
        with anyio.CancelScope(shield=True):
            if self._guard is not None and self.admission is not None:
                try:
                    await self._guard.settle(self.admission, outcome)
                except Exception:  # bookkeeping must not fail an answered request; say so
                    log.exception("guard.settle failed (request %s)", self.request.request_id)
            elif self._guard is not None and self.ran_elsewhere:
                try:
                    await self._guard.settle_elsewhere(outcome)
                except Exception:  # as above
                    log.exception(
                        "guard.settle_elsewhere failed (request %s)", self.request.request_id
                    )
            for observer in self._observers:
                try:
                    await observer.on_complete(outcome)
                except Exception:  # as above: one observer's bug must not hide the call from others
                    log.exception("observer failed (request %s)", self.request.request_id)
        return outcome

    def _outcome(
        self,
        status: int,
        error: ErrorKind | None,
        *,
        message: str,
        disconnected: bool,
        ttft_s: float | None,
        response: dict[str, Any] | None,
    ) -> Outcome:
        call = self.call
        usage = call.usage()
        upstream_body: bytes | None = None
        if self.keep_bodies:
            upstream_body = _as_bytes(call.upstream_body)
        else:
            response = None
        return Outcome(
            request=self.request,
            candidate=self.candidate,
            status=status,
            usage=usage,
            cost_usd=self._price(usage) if self.candidate is not None else None,
            error=error,
            error_message=message,
            disconnected=disconnected,
            stream=call.stream,
            duration_s=self._clock() - self.start,
            ttft_s=ttft_s,
            upstream_body=upstream_body,
            response=response,
            events=tuple(self.events) if self.keep_bodies else (),
            degradations=tuple(d.code for d in call.degradations),
        )

    def _price(self, usage: Any) -> float | None:
        if self._pricer is None or self.candidate is None:
            return None
        backend, model = self.candidate.backend, self.candidate.upstream_model
        try:
            if self.ran_elsewhere:  # a provider's batch API ran it: its batch rates
                return self._pricer.price(backend, model, usage, batch=True)
            return self._pricer.price(backend, model, usage)
        except Exception:  # a price table problem costs the figure, not the request
            log.exception("pricing failed (request %s)", self.request.request_id)
            return None


def _as_bytes(body: Any) -> bytes | None:
    if body is None or isinstance(body, bytes):
        return body
    return codec.dumps(body)
