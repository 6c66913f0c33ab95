"""KeyGuard: the pipeline's `Guard` for virtual keys (allow-lists, budget, rpm, tpm, parallel).

    admit:  principal is a virtual key? ──no──> let in (static, master and anonymous callers)
            key active (not revoked, not expired)          else 401 authentication_error
            model (requested or mapped) and backend allowed else 403 permission_error
            budget left in this period                      else 429, naming budget, period, reset
            limiter.acquire(rpm, tpm, parallel)             else 429 with retry-after + headers
    settle: limiter.release(parallel slot, input+output tokens), spend booked in `SpendBook`

Refusals are `Refused` errors, rendered in the caller's format by the server. Admitted calls carry
the key's own rate-limit state as reply headers: `anthropic-ratelimit-*` for Messages clients,
`x-ratelimit-*` for the others. Spend is added up in memory and written by `SpendBook.run` every
FLUSH_S (one upsert per key, model, backend and day), so no request waits on a spend write; the
budget check adds what this process has not written yet.

What it gives up: a budget is checked before a call, whose cost is known only after it; concurrent
calls of one key can overshoot its budget by the calls in flight when it ran out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase

import anyio

from anyllm_cli.errors import ErrorKind, Refused
from anyllm_cli.keys.manage import iso, period_window
from anyllm_cli.keys.resolver import KeyResolver
from anyllm_cli.pipeline.seams import Admission, Candidate, ClientRequest, Outcome
from anyllm_cli.stores import Decision, KeyRecord, Limiter, Limits, UsageStore

log = logging.getLogger("anyllm.keys")
FLUSH_S = 0.25
_ANTHROPIC_APIS = frozenset({"messages", "count_tokens"})
_STATUS_MESSAGES = {
    "revoked": "this API key was revoked",
    "expired": "this API key has expired",
}


@dataclass(slots=True)
class _Ticket:
    record: KeyRecord
    decision: Decision | None


SpendKey = tuple[str, str, str, str]  # key id, day, model, backend


@dataclass(slots=True)
class _Spend:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0

    def merge(self, other: _Spend) -> None:
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost += other.cost


class SpendBook:
    """Spend added up in memory and written in batches (one upsert per group)."""

    def __init__(self, store: UsageStore) -> None:
        self._store = store
        self._pending: dict[SpendKey, _Spend] = {}

    def add(self, group: SpendKey, spend: _Spend) -> None:
        self._pending.setdefault(group, _Spend()).merge(spend)

    def unwritten(self, key_id: str, since_day: str | None) -> float:
        return sum(
            row.cost
            for (kid, day, _, _), row in self._pending.items()
            if kid == key_id and day >= (since_day or "")
        )

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for group, row in pending.items():
            key_id, day, model, backend = group
            try:
                await self._store.record_spend(
                    key_id,
                    day=day,
                    model=model,
                    backend=backend,
                    input_tokens=row.input_tokens,
                    output_tokens=row.output_tokens,
                    cost_usd=row.cost,
                    requests=row.requests,
                )
            except Exception:  # the store is down: keep the row for the next flush
                log.exception("could not record spend for key %s; will retry", key_id)
                self.add(group, row)

    async def run(self, interval: float = FLUSH_S) -> None:
        """Flush every `interval` until cancelled, then once more."""
        try:
            while True:
                await anyio.sleep(interval)
                await self.flush()
        finally:
            with anyio.CancelScope(shield=True):
                await self.flush()


def _allowed(patterns: tuple[str, ...], *names: str) -> bool:
    return not patterns or any(fnmatchcase(n, p) for p in patterns for n in names if n)


def _money(value: float) -> str:
    return f"${value:,.2f}"


class KeyGuard:
    def __init__(
        self,
        resolver: KeyResolver,
        usage: UsageStore,
        limiter: Limiter,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._resolver = resolver
        self._usage = usage
        self._limiter = limiter
        self._clock = clock
        self.book = SpendBook(usage)

    async def admit(self, request: ClientRequest, candidate: Candidate) -> Admission:
        principal = request.principal
        if principal.kind != "virtual":
            return Admission()
        now = self._clock()
        record = await self._resolver.by_id(principal.id)
        status = "unknown" if record is None else record.status(now)
        if record is None or status != "active":
            message = _STATUS_MESSAGES.get(status, "this API key no longer exists")
            raise Refused(ErrorKind.AUTHENTICATION, message)
        self._check_allowed(record, candidate)
        await self._check_budget(record, now)
        limits = Limits(record.rpm, record.tpm, record.max_parallel)
        if not limits.any():
            return Admission(ticket=_Ticket(record, None))
        decision = await self._limiter.acquire(record.id, limits, now)
        headers = rate_headers(request.api, limits, decision, now)
        if not decision.allowed:
            raise Refused(
                ErrorKind.RATE_LIMIT,
                _limit_message(record, decision),
                retry_after=decision.retry_after,
                headers=headers,
            )
        return Admission(headers=headers, ticket=_Ticket(record, decision))

    def _check_allowed(self, record: KeyRecord, candidate: Candidate) -> None:
        if not _allowed(record.models, candidate.requested_model, candidate.upstream_model):
            raise Refused(
                ErrorKind.PERMISSION,
                f"this API key may not use model {candidate.requested_model!r}",
            )
        if not _allowed(record.backends, candidate.backend):
            raise Refused(
                ErrorKind.PERMISSION,
                f"this API key may not use backend {candidate.backend!r} "
                f"(for model {candidate.requested_model!r})",
            )

    async def _check_budget(self, record: KeyRecord, now: float) -> None:
        if record.budget_usd is None:
            return
        start, reset = period_window(record.period, now)
        spent = await self._usage.spent(record.id, start) + self.book.unwritten(record.id, start)
        if spent < record.budget_usd:
            return
        per = "in total" if record.period == "total" else f"per {record.period}"
        when = f"; it resets at {iso(reset)}" if reset is not None else ""
        raise Refused(
            ErrorKind.RATE_LIMIT,
            f"this API key's budget of {_money(record.budget_usd)} {per} is used up "
            f"({_money(spent)} spent){when}",
            retry_after=None if reset is None else max(1.0, reset - now),
        )

    async def settle(self, admission: Admission, outcome: Outcome) -> None:
        ticket = admission.ticket
        if not isinstance(ticket, _Ticket):
            return
        usage = outcome.usage
        tokens = usage.input_tokens + usage.output_tokens
        record, decision = ticket.record, ticket.decision
        now = self._clock()
        try:
            needs_release = record.max_parallel is not None or (record.tpm is not None and tokens)
            if decision is not None and needs_release:
                await self._limiter.release(record.id, decision.ticket, tokens, now)
        except Exception:  # the lease frees the slot anyway; the call is done either way
            log.exception("could not release the limiter slot of key %s", record.id)
        if outcome.candidate is not None:
            day = datetime.fromtimestamp(now, UTC).date().isoformat()
            group = (record.id, day, outcome.candidate.upstream_model, outcome.candidate.backend)
            spend = _Spend(1, usage.input_tokens, usage.output_tokens, outcome.cost_usd or 0.0)
            self.book.add(group, spend)


def _limit_message(record: KeyRecord, decision: Decision) -> str:
    what = {
        "requests": f"{record.rpm} requests per minute",
        "tokens": f"{record.tpm} tokens per minute",
        "parallel": f"{record.max_parallel} requests in flight",
    }[decision.reason]
    return f"this API key's limit of {what} is reached; retry after {decision.retry_after:.0f}s"


def rate_headers(api: str, limits: Limits, decision: Decision, now: float) -> dict[str, str]:
    """The key's own limits and what remains, as its client's API names them."""
    out: dict[str, str] = {}
    buckets = (
        ("requests", limits.rpm, decision.requests_remaining, decision.requests_reset),
        ("tokens", limits.tpm, decision.tokens_remaining, decision.tokens_reset),
    )
    for bucket, limit, remaining, reset in buckets:
        if limit is None or remaining is None:
            continue
        if api in _ANTHROPIC_APIS:
            out[f"anthropic-ratelimit-{bucket}-limit"] = str(limit)
            out[f"anthropic-ratelimit-{bucket}-remaining"] = str(remaining)
            out[f"anthropic-ratelimit-{bucket}-reset"] = iso(now + reset) or ""
        else:
            out[f"x-ratelimit-limit-{bucket}"] = str(limit)
            out[f"x-ratelimit-remaining-{bucket}"] = str(remaining)
            out[f"x-ratelimit-reset-{bucket}"] = f"{reset:.3f}s"
    if not decision.allowed:
        out["retry-after"] = str(max(1, round(decision.retry_after)))
    return out
