"""KeyGuard: the pipeline's `Guard` for virtual keys (allow-lists, budget, rpm, tpm, parallel).

    admit:  principal is a virtual key? ──no──> let in (static, master and anonymous callers)
            key active (not revoked, not expired)          else 401 authentication_error
            model (requested or mapped) and backend allowed else 403 permission_error
            a token count (answered locally)?  ──yes──> let in: no limit, no spend
            budget left in this period                      else 429, naming budget, period, reset
            limiter.acquire(rpm, tpm, parallel)             else 429 with retry-after + headers
                  (a batch item: each limit less the live headroom, see below)
    settle: limiter.release(the parallel slot); tokens (tpm) and spend into the `SpendBook`

Refusals are `Refused` errors, rendered in the caller's format by the server. Admitted calls carry
the key's own rate-limit state as reply headers: `anthropic-ratelimit-*` for Messages clients,
`x-ratelimit-*` for the others. Per request, the hot path costs: nothing for keys without limits or
budget (the record is cached by the resolver); for rpm/tpm, a slot from a lease of several reserved
in one atomic limiter round trip (keys/leases.py: exact near the limit, where every request goes
to the store), for a parallel limit one round trip per call; for a budget, a cached read of the written spend (at most
every SPENT_TTL_S) plus what this process has not written yet. Spend and tpm tokens are written in
batches by the `SpendBook`, never while a request waits.

Live traffic first: a batch item (`request.priority == "batch"`) is admitted against each of its
key's limits less a headroom kept for live calls, `LIVE_HEADROOM` of it and at least one (rpm 100:
batch items stop at 90 a minute; rpm 5 at 4; a limit of 1 keeps nothing). The limiter counts both
alike, so a batch that fills its share leaves the rest to live requests of the same key.

What it gives up: a budget is checked before a call, whose cost is known only after it; concurrent
calls of one key can overshoot its budget by the calls in flight when it ran out.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase

import anyio

from anyllm_cli.errors import ErrorKind, Refused, StoreError
from anyllm_cli.keys.leases import Leases
from anyllm_cli.keys.manage import iso, period_window
from anyllm_cli.keys.resolver import KeyResolver
from anyllm_cli.keys.spend import FLUSH_S, Spend, SpendBook
from anyllm_cli.keys.webhooks import BudgetAlerts
from anyllm_cli.pipeline.seams import Admission, Candidate, ClientRequest, Outcome
from anyllm_cli.stores import Decision, KeyRecord, Limiter, Limits, UsageStore

log = logging.getLogger("anyllm.keys")
SPENT_TTL_S = 0.5  # how stale another worker's spend may be in this one's budget check
LIVE_HEADROOM = 0.10  # of each key limit, kept from batch items for live calls (at least 1)
_ANTHROPIC_APIS = frozenset({"messages", "count_tokens"})
_LOCAL_APIS = frozenset({"count_tokens", "gemini_count"})  # token counts, answered in-process
_STATUS_MESSAGES = {
    "revoked": "this API key was revoked",
    "expired": "this API key has expired",
}


@dataclass(slots=True)
class _Ticket:
    record: KeyRecord
    decision: Decision | None


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
        alerts: BudgetAlerts | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._resolver = resolver
        self._usage = usage
        self._shared = limiter  # batch items: one slot at a time, under their own (lower) limits
        self._limiter = Leases(limiter, monotonic=monotonic)
        self._clock = clock
        self._monotonic = monotonic
        self.book = SpendBook(usage, limiter, alerts, clock)
        self.book.on_written = self._forget_spent
        self._spent: dict[tuple[str, str | None], tuple[float, float]] = {}

    async def run(self) -> None:
        """Until cancelled: flush spend, and hand back request slots of expired leases (all of
        them, and the spend, once more at the end)."""
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.book.run)
                while True:
                    await anyio.sleep(FLUSH_S)
                    await self._limiter.sweep()
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await self._limiter.sweep(everything=True)
                except StoreError as exc:  # they leave the window within a minute anyway
                    log.warning("could not give back reserved request slots: %s", exc.message)

    def _forget_spent(self, key_ids: Iterable[str]) -> None:
        written = set(key_ids)
        for cached in [c for c in self._spent if c[0] in written]:
            del self._spent[cached]

    async def _spent_in(self, key_id: str, start: str | None) -> float:
        """Written spend (cached for SPENT_TTL_S, dropped when this process writes more) plus
        what this process has not written yet."""
        now = self._monotonic()
        cached = self._spent.get((key_id, start))
        if cached is None or now - cached[1] >= SPENT_TTL_S:
            cached = (await self._usage.spent(key_id, start), now)
            self._spent[(key_id, start)] = cached
        return cached[0] + self.book.unwritten(key_id, start)

    async def admit(self, request: ClientRequest, candidate: Candidate) -> Admission:
        if request.principal.kind != "virtual":
            return Admission()
        try:
            return await self._admit(request, candidate)
        except StoreError as exc:  # the store is down: a retryable refusal, details in the log
            log.error("key check failed: %s", exc.message)
            raise Refused(
                ErrorKind.OVERLOADED,
                "the proxy cannot check this key's limits right now; retry shortly",
                retry_after=1,
            ) from None

    async def _admit(self, request: ClientRequest, candidate: Candidate) -> Admission:
        principal = request.principal
        now = self._clock()
        record = await self._resolver.by_id(principal.id)
        status = "unknown" if record is None else record.status(now)
        if record is None or status != "active":
            message = _STATUS_MESSAGES.get(status, "this API key no longer exists")
            raise Refused(ErrorKind.AUTHENTICATION, message)
        self._check_allowed(record, candidate)
        if request.api in _LOCAL_APIS:  # answered here: no model call to limit or pay for
            return Admission()
        await self._check_budget(record, now)
        limits = Limits(record.rpm, record.tpm, record.max_parallel)
        if not limits.any():
            return Admission(ticket=_Ticket(record, None))
        if request.priority == "batch":
            limits = batch_share(limits)
            decision = await self._shared.acquire(record.id, limits, now)
        else:
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
        start, _ = period_window(record.period, now)
        check_budget(record, await self._spent_in(record.id, start), now)

    async def settle(self, admission: Admission, outcome: Outcome) -> None:
        ticket = admission.ticket
        if not isinstance(ticket, _Ticket):
            return
        usage = outcome.usage
        record, decision = ticket.record, ticket.decision
        now = self._clock()
        if record.tpm is not None:
            tokens = usage.input_tokens + usage.output_tokens
            self.book.add_tokens(record.id, tokens)
            self._limiter.add_tokens(record.id, tokens)
        if decision is not None and record.max_parallel is not None:
            try:  # the slot, at once: the next call of this key may be waiting for it
                await self._limiter.release(record.id, decision.ticket, 0, now)
            except Exception:  # its lease frees the slot anyway; the call is done either way
                log.exception("could not release the limiter slot of key %s", record.id)
        self._spend(record, outcome, now)

    async def settle_elsewhere(self, outcome: Outcome) -> None:
        """An item a provider's batch API ran (native batches): spend only. No rpm/tpm/parallel
        booking: the provider ran it under its own batch limits, not this key's live ones."""
        principal = outcome.request.principal
        if principal.kind != "virtual":
            return
        try:
            record = await self._resolver.by_id(principal.id)
        except StoreError as exc:
            log.error("could not book spend for key %s: %s", principal.id, exc.message)
            return
        if record is not None:
            self._spend(record, outcome, self._clock())

    def _spend(self, record: KeyRecord, outcome: Outcome, now: float) -> None:
        if outcome.candidate is None:
            return
        usage = outcome.usage
        day = datetime.fromtimestamp(now, UTC).date().isoformat()
        group = (record.id, day, outcome.candidate.upstream_model, outcome.candidate.backend)
        spend = Spend(1, usage.input_tokens, usage.output_tokens, outcome.cost_usd or 0.0)
        self.book.add(group, spend, record)


def batch_share(limits: Limits) -> Limits:
    """What batch items of a key may use of its limits: each less the live headroom."""

    def share(limit: int | None) -> int | None:
        if limit is None or limit < 2:
            return limit
        return limit - max(1, int(limit * LIVE_HEADROOM))

    return Limits(share(limits.rpm), share(limits.tpm), share(limits.max_parallel))


def check_budget(record: KeyRecord, spent: float, now: float) -> None:
    """Refuse (429, naming the budget, its period and its reset) once `spent` reaches the budget."""
    if record.budget_usd is None or spent < record.budget_usd:
        return
    _, reset = period_window(record.period, now)
    per = "in total" if record.period == "total" else f"per {record.period}"
    when = f"; it resets at {iso(reset)}" if reset is not None else ""
    raise Refused(
        ErrorKind.RATE_LIMIT,
        f"this API key's budget of {_money(record.budget_usd)} {per} is used up "
        f"({_money(spent)} spent){when}",
        retry_after=None if reset is None else max(1.0, reset - now),
    )


def _limit_message(record: KeyRecord, decision: Decision) -> str:
    what = {
        "requests": f"{record.rpm} requests per minute",
        "tokens": f"{record.tpm} tokens per minute",
        "parallel": f"{record.max_parallel} requests in flight",
    }[decision.reason]
    return f"this API key's limit of {what} is reached; retry after {decision.retry_after:.0f}s"


@functools.lru_cache(maxsize=64)
def _iso_second(ts: int) -> str:
    """`iso`, remembered: every call of a busy key in one second names the same reset times."""
    return iso(ts) or ""


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
            out[f"anthropic-ratelimit-{bucket}-reset"] = _iso_second(int(now + reset))
        else:
            out[f"x-ratelimit-limit-{bucket}"] = str(limit)
            out[f"x-ratelimit-remaining-{bucket}"] = str(remaining)
            out[f"x-ratelimit-reset-{bucket}"] = f"{reset:.3f}s"
    if not decision.allowed:
        out["retry-after"] = str(max(1, round(decision.retry_after)))
    return out
