"""Leases: a `Limiter` that spends request slots reserved in the shared limiter, a handful at a time.

    acquire(key) ──a live lease of this key with slots left?──yes──> take one here (no round trip)
                   │ no
                   └──> limiter.acquire(want=N) ──granted > 1──> keep the rest as a lease (TTL_S)
    sweep (every FLUSH_S, and at shutdown) ──> expired leases give their unused slots back

The shared limiter (SQLite, PostgreSQL or Redis) sizes each reservation with the count, in one
atomic step (`stores._sql.lease_size`): far from every limit it grants up to 1/16 of the requests
left, near one it grants a single slot. So a key's rpm is never exceeded, across workers and
instances, and near the limit every request is decided in the store, as before; far from it a busy
key costs one store round trip per reservation instead of one per request. `want` follows the
key's traffic: twice the last lease when that one ran out before its TTL, what was used otherwise.

Keys with a parallel limit are never leased (a slot must be held and given back per call), nor is a
refused request: refusals always come from the store, with its counts and reset times.

What it gives up: a slot reserved by one worker and not used is unavailable to the others for up to
TTL_S (at most 1/16 of what was left when it was taken); the tokens-per-minute check of a leased
request uses the count read when the lease was taken (at most TTL_S old) plus the tokens of this
process's calls since, so other workers' tokens are seen up to TTL_S late, the same staleness a
budget check accepts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from anyllm_cli.stores import Decision, Limiter, Limits

log = logging.getLogger("anyllm.keys")
TTL_S = 0.5
FIRST_WANT = 8
MAX_WANT = 1024


@dataclass(slots=True)
class _Lease:
    limits: Limits
    decision: Decision  # what the store answered when it granted the lease
    taken_at: float  # wall clock, as the store booked it
    expires: float  # monotonic
    used: int = 1
    tokens: int = 0  # of calls this process finished since the lease was taken

    @property
    def left(self) -> int:
        return self.decision.granted - self.used

    def tokens_left(self) -> int | None:
        remaining = self.decision.tokens_remaining
        return None if remaining is None else remaining - self.tokens


class Leases:
    def __init__(
        self,
        limiter: Limiter,
        *,
        ttl_s: float = TTL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limiter = limiter
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._leases: dict[str, list[_Lease]] = {}
        self._want: dict[str, int] = {}

    async def acquire(self, key_id: str, limits: Limits, now: float, want: int = 1) -> Decision:
        if limits.max_parallel is not None:
            return await self._limiter.acquire(key_id, limits, now)
        mono = self._monotonic()
        ask = self._want.get(key_id, FIRST_WANT)
        for lease in self._leases.get(key_id, ()):
            tokens = lease.tokens_left()
            usable = lease.left > 0 and lease.expires > mono and lease.limits == limits
            if usable and (tokens is None or tokens > 0):
                lease.used += 1
                return _local(lease)
            if usable:  # its tokens are used up here, maybe not yet in the store: one at a time
                ask = 1
        await self._end(key_id, mono, limits=limits)
        decision = await self._limiter.acquire(key_id, limits, now, ask)
        if decision.allowed and decision.granted > 1:
            lease = _Lease(limits, decision, now, self._monotonic() + self._ttl_s)
            self._leases.setdefault(key_id, []).append(lease)
            return _local(lease)
        return decision

    def add_tokens(self, key_id: str, tokens: int) -> None:
        """A finished call's tokens: the key's leases stop admitting once its tpm is reached."""
        for lease in self._leases.get(key_id, ()):
            lease.tokens += tokens

    async def _end(
        self, key_id: str, mono: float, everything: bool = False, limits: Limits | None = None
    ) -> None:
        """Give back what the leases of this key that are over (spent, expired, limits changed)
        did not use, and size the next reservation by how the last one went."""
        leases = self._leases.get(key_id)
        if not leases:
            return
        over = [
            x
            for x in leases
            if everything
            or x.left <= 0
            or x.expires <= mono
            or (limits is not None and x.limits != limits)
        ]
        if not over:
            return
        keep = [x for x in leases if x not in over]
        if keep:
            self._leases[key_id] = keep
        else:
            del self._leases[key_id]
        for lease in over:  # taken out first: another caller's `_end` never sees them twice
            ran_out = lease.left <= 0 and lease.expires > mono
            grown = lease.decision.granted * 2 if ran_out else lease.used
            self._want[key_id] = max(2, min(MAX_WANT, grown))
            if lease.left > 0 and lease.limits.rpm is not None:
                await self._give_back(key_id, lease)

    async def _give_back(self, key_id: str, lease: _Lease) -> None:
        d = lease.decision
        try:
            await self._limiter.give_back(key_id, d.ticket, lease.taken_at, d.granted, lease.left)
        except Exception:  # the slots stay counted until they leave the window: fewer, never more
            log.exception("could not give back %d reserved slots of key %s", lease.left, key_id)
        lease.used = d.granted

    async def sweep(self, everything: bool = False) -> None:
        """Give back what expired leases did not use (all leases, at shutdown)."""
        mono = self._monotonic()
        for key_id in list(self._leases):
            await self._end(key_id, mono, everything)

    async def release(self, key_id: str, ticket: str, tokens: int, now: float) -> None:
        await self._limiter.release(key_id, ticket, tokens, now)

    async def give_back(
        self, key_id: str, ticket: str, taken_at: float, granted: int, unused: int
    ) -> None:
        await self._limiter.give_back(key_id, ticket, taken_at, granted, unused)

    async def close(self) -> None:
        await self.sweep(everything=True)


def _local(lease: _Lease) -> Decision:
    """The decision for a slot taken from a lease: the store's counts, less what this lease used."""
    d = lease.decision
    remaining = d.requests_remaining
    if remaining is not None:
        remaining += d.granted - lease.used
    return replace(d, granted=1, requests_remaining=remaining, tokens_remaining=lease.tokens_left())
