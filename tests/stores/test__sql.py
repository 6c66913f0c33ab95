"""The store contract, run on every engine: keys, the version counter, spend, and the limiter."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from anyllm_cli.stores import KeyRecord, Limiter, Limits, Store, _sql, open_store

pytestmark = pytest.mark.anyio
NOW = 1_800_000_000.0


def _key(n: int = 1, **changes: object) -> KeyRecord:
    values: dict[str, object] = {
        "id": f"key_{n}",
        "name": f"name{n}",
        "key_hash": f"hash{n}",
        "prefix": "sk-anyllm-abcd",
        "created": NOW + n,
        "rpm": 10,
        "budget_usd": 5.0,
        "period": "month",
        "models": ("claude-*", "gpt-4.1"),
        "backends": ("openai",),
        "metadata": {"team": "ml", "n": 3},
    }
    values.update(changes)
    return KeyRecord(**values)  # type: ignore[arg-type]


async def test_a_key_round_trips_and_is_found_by_id_name_and_hash(store: Store) -> None:
    await store.create_key(_key())
    assert await store.get_key("key_1") == _key()
    assert await store.get_key("name1") == _key()
    assert await store.find_key("hash1") == _key()
    assert await store.find_key("nope") is None
    assert await store.get_key("nope") is None


async def test_a_name_finds_the_newest_key_of_that_name(store: Store) -> None:
    await store.create_key(_key(1, name="ci"))
    await store.create_key(_key(2, name="ci"))
    found = await store.get_key("ci")
    assert found is not None and found.id == "key_2"
    assert [k.id for k in await store.list_keys()] == ["key_1", "key_2"]


async def test_every_key_write_bumps_the_version(store: Store) -> None:
    v0 = await store.keys_version()
    await store.create_key(_key())
    v1 = await store.keys_version()
    updated = await store.update_key("key_1", {"revoked": NOW, "rpm": None, "models": ()})
    v2 = await store.keys_version()
    assert updated is not None and updated.revoked == NOW and updated.rpm is None
    assert updated.models == ()
    assert await store.delete_key("key_1") is True
    assert await store.delete_key("key_1") is False
    assert v0 < v1 < v2 < await store.keys_version()


async def test_an_unknown_column_is_refused(store: Store) -> None:
    await store.create_key(_key())
    with pytest.raises(ValueError, match="not updatable: id"):
        await store.update_key("key_1", {"id": "other"})


async def test_active_keys_exclude_revoked_and_expired(store: Store) -> None:
    await store.create_key(_key(1))
    await store.create_key(_key(2, key_hash="h2", revoked=NOW))
    await store.create_key(_key(3, key_hash="h3", expires=NOW - 1))
    await store.create_key(_key(4, key_hash="h4", expires=NOW + 60))
    assert await store.count_active_keys(NOW) == 2


async def test_spend_adds_up_per_key_model_backend_and_day(store: Store) -> None:
    rows = [
        ("k1", "2026-12-01", "m1", "b1", 10, 5, 0.5),
        ("k1", "2026-12-01", "m1", "b1", 10, 5, 0.25),
        ("k1", "2026-12-02", "m2", "b1", 1, 1, 1.0),
        ("k2", "2026-12-02", "m1", "b2", 2, 2, 2.0),
    ]
    for key, day, model, backend, i, o, cost in rows:
        await store.record_spend(
            key,
            day=day,
            model=model,
            backend=backend,
            input_tokens=i,
            output_tokens=o,
            cost_usd=cost,
        )
    assert await store.spent("k1", None) == pytest.approx(1.75)
    assert await store.spent("k1", "2026-12-02") == pytest.approx(1.0)
    by_key = {r.group: r for r in await store.spend(None, None, "key")}
    assert by_key["k1"].requests == 3 and by_key["k1"].input_tokens == 21
    by_model = {r.group: r.cost_usd for r in await store.spend("k1", None, "model")}
    assert by_model == pytest.approx({"m1": 0.75, "m2": 1.0})
    by_day = [r.group for r in await store.spend(None, "2026-12-02", "day")]
    assert by_day == ["2026-12-02"]
    assert [r.group for r in await store.spend(None, None, "backend")] == ["b1", "b2"]


# -- the limiter -------------------------------------------------------------------------------------


async def test_rpm_is_a_sliding_window(limiter: Limiter) -> None:
    limits = Limits(rpm=2)
    first = await limiter.acquire("k", limits, NOW)
    assert first.allowed and first.requests_remaining == 1
    assert (await limiter.acquire("k", limits, NOW + 10)).allowed
    refused = await limiter.acquire("k", limits, NOW + 30)
    assert not refused.allowed and refused.reason == "requests"
    assert refused.retry_after == pytest.approx(30)
    assert refused.requests_remaining == 0
    assert (await limiter.acquire("k", limits, NOW + 60.5)).allowed  # the first one slid out
    assert not (await limiter.acquire("k", limits, NOW + 61)).allowed
    assert (await limiter.acquire("other", limits, NOW + 61)).allowed  # keys are separate


async def test_tpm_counts_tokens_booked_at_release(limiter: Limiter) -> None:
    limits = Limits(tpm=100)
    d = await limiter.acquire("k", limits, NOW)
    assert d.allowed and d.tokens_remaining == 100
    await limiter.release("k", d.ticket, 60, NOW + 1)
    d2 = await limiter.acquire("k", limits, NOW + 2)
    assert d2.allowed and d2.tokens_remaining == 40
    await limiter.release("k", d2.ticket, 50, NOW + 3)
    refused = await limiter.acquire("k", limits, NOW + 4)
    assert not refused.allowed and refused.reason == "tokens"
    assert refused.retry_after == pytest.approx(57)
    assert (await limiter.acquire("k", limits, NOW + 62)).allowed


async def test_parallel_slots_are_given_back(limiter: Limiter) -> None:
    limits = Limits(max_parallel=1)
    d = await limiter.acquire("k", limits, NOW)
    assert d.allowed
    refused = await limiter.acquire("k", limits, NOW)
    assert not refused.allowed and refused.reason == "parallel"
    await limiter.release("k", d.ticket, 0, NOW)
    assert (await limiter.acquire("k", limits, NOW)).allowed


async def test_a_lost_parallel_slot_frees_itself_after_its_lease(limiter: Limiter) -> None:
    limits = Limits(max_parallel=1)
    assert (await limiter.acquire("k", limits, NOW)).allowed
    assert not (await limiter.acquire("k", limits, NOW + 10)).allowed
    assert (await limiter.acquire("k", limits, NOW + 601)).allowed


async def test_fifty_concurrent_acquires_against_rpm_10_admit_exactly_10(
    limiter: Limiter,
) -> None:
    admitted: list[bool] = []

    async def one() -> None:
        admitted.append((await limiter.acquire("k", Limits(rpm=10), NOW)).allowed)

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(one)
    assert admitted.count(True) == 10


async def test_a_reservation_takes_a_sixteenth_of_what_is_left_and_gives_back_the_rest(
    limiter: Limiter,
) -> None:
    limits = Limits(rpm=1000)
    lease = await limiter.acquire("k", limits, NOW, want=64)
    assert (lease.granted, lease.requests_remaining) == (62, 1000 - 62)  # 1000 // 16
    await limiter.give_back("k", lease.ticket, NOW, lease.granted, 60)  # used 2 of 62
    after = await limiter.acquire("k", limits, NOW + 1)
    assert (after.granted, after.requests_remaining) == (1, 1000 - 2 - 1)
    await limiter.give_back("k", after.ticket, NOW + 1, 1, 0)  # nothing unused: nothing changes
    assert (await limiter.acquire("k", limits, NOW + 2)).requests_remaining == 1000 - 4


@pytest.mark.parametrize(
    "limits",
    [Limits(rpm=20), Limits(rpm=1000, max_parallel=5), Limits(tpm=100)],
    ids=["near-rpm", "parallel", "tokens-low"],
)
async def test_near_a_limit_or_with_a_parallel_limit_a_reservation_is_one_slot(
    limiter: Limiter, limits: Limits
) -> None:
    if limits.tpm is not None:  # 80 of 100 tokens used: under a quarter left
        first = await limiter.acquire("k", limits, NOW, want=1)
        await limiter.release("k", first.ticket, 80, NOW)
    decision = await limiter.acquire("k", limits, NOW + 1, want=64)
    assert decision.allowed and decision.granted == 1


async def test_reservations_never_admit_more_than_rpm(limiter: Limiter) -> None:
    granted = 0

    async def one() -> None:
        nonlocal granted
        for _ in range(100):  # until refused; 20 tasks x 100 could take far more than 500
            decision = await limiter.acquire("k", Limits(rpm=500), NOW, want=1024)
            if not decision.allowed:
                return
            granted += decision.granted

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(one)
    assert granted == 500  # big reservations first, single slots near the end, none over


async def test_an_alert_is_claimed_once_per_key_period_and_threshold(store: Store) -> None:
    claims = []

    async def one() -> None:
        claims.append(await store.claim_alert("k", "2026-12-01", 80, NOW))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(one)
    assert claims.count(True) == 1
    assert await store.claim_alert("k", "2026-12-01", 95, NOW)
    assert await store.claim_alert("k", "2027-01-01", 80, NOW)
    assert not await store.claim_alert("k", "2026-12-01", 95, NOW)


class _Recording:
    """A cursor that remembers the statements it ran (to read their query plans afterwards)."""

    def __init__(self, cur: sqlite3.Cursor) -> None:
        self.cur, self.ran = cur, list[tuple[str, Sequence[Any]]]()

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Any:
        self.ran.append((sql, params))
        return self.cur.execute(sql, params)

    def fetchone(self) -> Any:
        return self.cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self.cur.fetchall()


async def test_a_decision_reads_at_most_61_buckets_however_full_the_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20,000 requests admitted within one minute leave 61 counters per kind, and every statement
    of the next decision finds its rows through the primary key (no per-request log, no scan)."""
    path = tmp_path / "anyllm.db"
    await (await open_store(f"sqlite://{path}")).close()
    conn = sqlite3.connect(path)
    try:
        cur = conn.cursor()
        limits = Limits(rpm=1_000_000, tpm=1_000_000_000)
        for i in range(20_000):
            now = NOW + i * 0.003
            d = _sql.acquire_sync(cur, "k", limits, now)
            assert d.allowed and d.ticket is not None
            _sql.release_sync(cur, "k", d.ticket, 7, now)
        recording = _Recording(cur)
        monkeypatch.setattr(_sql, "PRUNE_CHANCE", 0.0)  # no pruning in the recorded decision
        last = _sql.acquire_sync(recording, "k", limits, NOW + 60)
        assert last.requests_remaining == 1_000_000 - 20_001
        assert last.tokens_remaining == 1_000_000_000 - 140_000
        cur.execute("SELECT kind, COUNT(*) FROM rate_buckets GROUP BY kind ORDER BY kind")
        assert cur.fetchall() == [("r", 61), ("t", 60)]
        reads = [(q, p) for q, p in recording.ran if q.startswith("SELECT")]
        assert len(reads) == 2 and len(recording.ran) == 3  # r, t, and the one upsert
        for sql, params in reads:
            cur.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = " ".join(str(row[-1]) for row in cur.fetchall())
            assert "SEARCH rate_buckets USING" in plan and "bucket>?" in plan, plan
    finally:
        conn.close()
