"""Leases over a real SQLite limiter: slots spent locally, given back, never more than the limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from anyllm_cli.keys.leases import Leases
from anyllm_cli.stores import Decision, Limiter, Limits, Store, open_store

pytestmark = pytest.mark.anyio
NOW = 1_800_000_000.0


class Counting:
    """The store's limiter, counting the round trips made to it."""

    def __init__(self, inner: Limiter) -> None:
        self.inner = inner
        self.acquires = 0
        self.given_back = 0

    async def acquire(self, key_id: str, limits: Limits, now: float, want: int = 1) -> Decision:
        self.acquires += 1
        return await self.inner.acquire(key_id, limits, now, want)

    async def release(self, key_id: str, ticket: str, tokens: int, now: float) -> None:
        await self.inner.release(key_id, ticket, tokens, now)

    async def give_back(
        self, key_id: str, ticket: str, taken_at: float, granted: int, unused: int
    ) -> None:
        self.given_back += unused
        await self.inner.give_back(key_id, ticket, taken_at, granted, unused)

    async def close(self) -> None:
        return None


class Mono:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite://{tmp_path / 'a.db'}")
    yield opened
    await opened.close()


async def test_a_busy_key_pays_one_round_trip_per_lease_not_per_request(store: Store) -> None:
    counting, mono = Counting(store.limiter), Mono()
    leases = Leases(counting, monotonic=mono)
    limits = Limits(rpm=100_000)
    remaining = []
    for _ in range(100):
        decision = await leases.acquire("k", limits, NOW)
        assert decision.allowed and decision.granted == 1
        remaining.append(decision.requests_remaining)
    assert counting.acquires < 10  # 8, then 16, 32, 64: the lease grows with the traffic
    assert remaining == list(range(100_000 - 1, 100_000 - 101, -1))  # headers count down


async def test_what_an_expired_lease_did_not_use_is_given_back(store: Store) -> None:
    counting, mono = Counting(store.limiter), Mono()
    leases = Leases(counting, monotonic=mono)
    limits = Limits(rpm=1000)
    await leases.acquire("k", limits, NOW)  # reserves 8, uses 1
    mono.now += 1.0
    await leases.sweep()
    assert counting.given_back == 7
    fresh = await store.limiter.acquire("k", limits, NOW)
    assert fresh.requests_remaining == 1000 - 1 - 1  # only the used slot still counts


async def test_at_shutdown_every_lease_is_given_back(store: Store) -> None:
    counting = Counting(store.limiter)
    leases = Leases(counting, monotonic=Mono())
    await leases.acquire("k", Limits(rpm=1000), NOW)
    await leases.close()
    assert counting.given_back == 7


async def test_a_new_limit_ends_the_lease_taken_under_the_old_one(store: Store) -> None:
    counting = Counting(store.limiter)
    leases = Leases(counting, monotonic=Mono())
    await leases.acquire("k", Limits(rpm=1000), NOW)
    decision = await leases.acquire("k", Limits(rpm=500), NOW)
    assert counting.acquires == 2 and counting.given_back == 7
    assert decision.requests_remaining == 500 - 1 - decision.granted


async def test_near_the_limit_every_request_is_decided_in_the_store(store: Store) -> None:
    counting = Counting(store.limiter)
    leases = Leases(counting, monotonic=Mono())
    admitted = [(await leases.acquire("k", Limits(rpm=10), NOW)).allowed for _ in range(15)]
    assert admitted == [True] * 10 + [False] * 5
    assert counting.acquires == 15


async def test_tokens_of_finished_calls_stop_a_lease_before_the_store_knows(store: Store) -> None:
    counting = Counting(store.limiter)
    leases = Leases(counting, monotonic=Mono())
    limits = Limits(rpm=100_000, tpm=1000)
    assert (await leases.acquire("k", limits, NOW)).granted == 1  # from a lease of 8
    leases.add_tokens("k", 1000)  # settled here, not booked in the store yet
    await leases.acquire("k", limits, NOW)
    assert counting.acquires == 2  # the lease no longer admits: to the store, one slot
    await store.limiter.release("k", "booked", 1000, NOW)  # the spend book's flush
    assert not (await leases.acquire("k", limits, NOW)).allowed


async def test_keys_with_a_parallel_limit_are_never_leased(store: Store) -> None:
    counting = Counting(store.limiter)
    leases = Leases(counting, monotonic=Mono())
    for _ in range(3):
        await leases.acquire("k", Limits(rpm=100_000, max_parallel=50), NOW)
    assert counting.acquires == 3


async def test_two_workers_with_leases_admit_exactly_the_limit(tmp_path: Path) -> None:
    """Two processes' worth of leases on one file: every slot is used, none twice."""
    url = f"sqlite://{tmp_path / 'a.db'}"
    a, b = await open_store(url), await open_store(url)
    admitted = 0
    try:

        async def worker(leases: Leases) -> None:
            nonlocal admitted
            for _ in range(150):
                if (await leases.acquire("k", Limits(rpm=600), NOW)).allowed:
                    admitted += 1

        async with anyio.create_task_group() as tg:
            for store in (a, b):
                leases = Leases(store.limiter, monotonic=Mono())
                for _ in range(4):
                    tg.start_soon(worker, leases)
    finally:
        await a.close()
        await b.close()
    assert admitted == 600
