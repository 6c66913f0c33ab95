"""KeyGuard on a real SQLite store with a fake clock: every refusal, headers, settle and spend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from anyllm_cli.errors import ErrorKind, Refused
from anyllm_cli.keys import manage
from anyllm_cli.keys.guard import KeyGuard, batch_share
from anyllm_cli.keys.manage import KeyOptions
from anyllm_cli.keys.resolver import KeyResolver
from anyllm_cli.pipeline.seams import (
    Admission,
    Candidate,
    ClientRequest,
    Outcome,
    Principal,
    Usage,
)
from anyllm_cli.stores import KeyRecord, Limits, Store, open_store

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 12, 9, 15, 30, tzinfo=UTC).timestamp()
CANDIDATE = Candidate("openai", "claude-sonnet-4-5", "gpt-4.1")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite://{tmp_path / 'a.db'}")
    yield opened
    await opened.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def guard(store: Store, clock: Clock) -> KeyGuard:
    resolver = KeyResolver(store, refresh_s=0, wall=clock)
    return KeyGuard(resolver, store, store.limiter, clock=clock)


async def make(store: Store, **options: Any) -> KeyRecord:
    record, _ = await manage.create(store, KeyOptions(name="k", **options), NOW)
    return record


def request(record: KeyRecord, api: str = "messages") -> ClientRequest:
    return ClientRequest(api=api, body=b"{}", principal=Principal(record.id, "k", "virtual"))  # type: ignore[arg-type]


def outcome(req: ClientRequest, usage: Usage, cost: float | None) -> Outcome:
    return Outcome(req, CANDIDATE, 200, usage, cost)


async def refused(guard: KeyGuard, req: ClientRequest, candidate: Candidate = CANDIDATE) -> Refused:
    with pytest.raises(Refused) as info:
        await guard.admit(req, candidate)
    return info.value


async def test_callers_without_a_virtual_key_pass(guard: KeyGuard) -> None:
    for kind in ("anonymous", "static", "master"):
        req = ClientRequest(api="chat", body=b"", principal=Principal("x", kind=kind))  # type: ignore[arg-type]
        admission = await guard.admit(req, CANDIDATE)
        assert admission.headers == {}
        await guard.settle(admission, outcome(req, Usage(1, 1), 1.0))


async def test_revoked_expired_and_deleted_keys_are_401(
    guard: KeyGuard, store: Store, clock: Clock
) -> None:
    revoked = await make(store)
    await manage.revoke(store, revoked.id, NOW)
    assert (await refused(guard, request(revoked))).message == "this API key was revoked"
    expiring = await make(store, expires=NOW + 10)
    await guard.admit(request(expiring), CANDIDATE)
    clock.now += 11
    err = await refused(guard, request(expiring))
    assert err.kind is ErrorKind.AUTHENTICATION and err.message == "this API key has expired"
    gone = await make(store)
    await manage.delete(store, gone.id)
    assert "no longer exists" in (await refused(guard, request(gone))).message


async def test_models_and_backends_allow_lists_are_403(guard: KeyGuard, store: Store) -> None:
    by_requested = await make(store, models=("claude-*",))
    await guard.admit(request(by_requested), CANDIDATE)
    by_mapped = await make(store, models=("gpt-4.1",))
    await guard.admit(request(by_mapped), CANDIDATE)
    other = await make(store, models=("gemini-*",))
    err = await refused(guard, request(other))
    assert err.kind is ErrorKind.PERMISSION
    assert err.message == "this API key may not use model 'claude-sonnet-4-5'"
    backend = await make(store, backends=("ollama",))
    err = await refused(guard, request(backend))
    assert err.kind is ErrorKind.PERMISSION and "backend 'openai'" in err.message


async def test_rpm_refusal_carries_retry_after_and_the_keys_own_headers(
    guard: KeyGuard, store: Store, clock: Clock
) -> None:
    record = await make(store, rpm=2, tpm=1000)
    first = await guard.admit(request(record), CANDIDATE)
    assert first.headers["anthropic-ratelimit-requests-limit"] == "2"
    assert first.headers["anthropic-ratelimit-requests-remaining"] == "1"
    assert first.headers["anthropic-ratelimit-tokens-remaining"] == "1000"
    assert first.headers["anthropic-ratelimit-requests-reset"] == "2026-12-09T15:31:00Z"
    clock.now += 20
    second = await guard.admit(request(record, "chat"), CANDIDATE)
    assert second.headers["x-ratelimit-limit-requests"] == "2"
    assert second.headers["x-ratelimit-remaining-requests"] == "0"
    assert second.headers["x-ratelimit-reset-requests"] == "40.000s"
    err = await refused(guard, request(record, "chat"))
    assert err.kind is ErrorKind.RATE_LIMIT and err.retry_after == pytest.approx(40)
    assert (
        err.message == "this API key's limit of 2 requests per minute is reached; retry after 40s"
    )
    assert err.headers["retry-after"] == "40"
    assert err.headers["x-ratelimit-remaining-requests"] == "0"


async def test_tpm_counts_what_settle_reports(guard: KeyGuard, store: Store) -> None:
    record = await make(store, tpm=100)
    req = request(record)
    admission = await guard.admit(req, CANDIDATE)
    await guard.settle(admission, outcome(req, Usage(input_tokens=70, output_tokens=30), None))
    await guard.admit(req, CANDIDATE)  # booked with the next flush, not while the call waits
    await guard.book.flush()
    err = await refused(guard, req)
    assert "100 tokens per minute" in err.message


async def test_parallel_slots_are_given_back_at_settle(guard: KeyGuard, store: Store) -> None:
    record = await make(store, max_parallel=1)
    req = request(record)
    admission = await guard.admit(req, CANDIDATE)
    assert "requests in flight" in (await refused(guard, req)).message
    await guard.settle(admission, outcome(req, Usage(), None))
    await guard.admit(req, CANDIDATE)


async def test_budget_is_checked_with_unwritten_spend_and_names_period_and_reset(
    guard: KeyGuard, store: Store, clock: Clock
) -> None:
    """The written spend is cached; what this process has not written yet adds to it; a flush
    drops the cache, so the figure never dips between the two."""
    record = await make(store, budget_usd=1.0, period="day")
    req = request(record)
    admission = await guard.admit(req, CANDIDATE)
    await guard.settle(admission, outcome(req, Usage(10, 5), 0.6))
    admission = await guard.admit(req, CANDIDATE)
    await guard.settle(admission, outcome(req, Usage(10, 5), 0.5))
    err = await refused(guard, req)  # not written yet: the book counts
    assert err.kind is ErrorKind.RATE_LIMIT
    assert err.message == (
        "this API key's budget of $1.00 per day is used up ($1.10 spent); "
        "it resets at 2026-12-10T00:00:00Z"
    )
    assert err.retry_after == pytest.approx(8.5 * 3600)
    await guard.book.flush()
    assert await store.spent(record.id, None) == pytest.approx(1.1)
    rows = await store.spend(record.id, None, "model")
    assert [(r.group, r.requests, r.input_tokens) for r in rows] == [("gpt-4.1", 2, 20)]
    await refused(guard, req)  # written now: the store counts
    clock.now += 9 * 3600  # the next day
    await guard.admit(req, CANDIDATE)


async def test_a_revoke_is_seen_after_the_refresh(store: Store, clock: Clock) -> None:
    ticks = [0.0]
    resolver = KeyResolver(store, refresh_s=0.5, monotonic=lambda: ticks[0], wall=clock)
    guard = KeyGuard(resolver, store, store.limiter, clock=clock)
    record = await make(store)
    await guard.admit(request(record), CANDIDATE)
    await manage.revoke(store, record.id, NOW)
    await guard.admit(request(record), CANDIDATE)  # cached until the next refresh
    ticks[0] = 0.6
    await refused(guard, request(record))


async def test_fifty_concurrent_admits_against_rpm_10(guard: KeyGuard, store: Store) -> None:
    record = await make(store, rpm=10)
    results: list[bool] = []

    async def one() -> None:
        try:
            await guard.admit(request(record), CANDIDATE)
        except Refused:
            results.append(False)
        else:
            results.append(True)

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(one)
    assert results.count(True) == 10


async def test_settle_never_raises(guard: KeyGuard, store: Store) -> None:
    record = await make(store, max_parallel=1)
    req = request(record)
    admission = await guard.admit(req, CANDIDATE)
    await store.close()
    await guard.settle(admission, outcome(req, Usage(1, 1), 0.1))
    await guard.settle(Admission(), outcome(req, Usage(1, 1), 0.1))


async def test_the_spend_book_sends_budget_alerts_after_flushing(
    store: Store, clock: Clock
) -> None:
    import httpx

    from anyllm_cli.keys.webhooks import BudgetAlerts

    sent: list[bytes] = []

    def hook(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(hook)) as client:
        alerts = BudgetAlerts(store, "http://hook.test", (50,), client, backoff_s=0)
        resolver = KeyResolver(store, refresh_s=0, wall=clock)
        guard = KeyGuard(resolver, store, store.limiter, alerts=alerts, clock=clock)
        record = await make(store, budget_usd=1.0)
        req = request(record)
        admission = await guard.admit(req, CANDIDATE)
        await guard.settle(admission, outcome(req, Usage(1, 1), 0.6))
        assert sent == []
        await guard.book.flush()
    assert len(sent) == 1 and b'"threshold_percent":50' in sent[0]


async def test_token_counts_are_checked_but_neither_limited_nor_billed(
    guard: KeyGuard, store: Store
) -> None:
    record = await make(store, rpm=1, budget_usd=0.0, models=("claude-*",))
    for api in ("count_tokens", "gemini_count", "count_tokens"):
        admission = await guard.admit(request(record, api), CANDIDATE)
        assert admission.headers == {}
        await guard.settle(admission, outcome(request(record, api), Usage(5), 1.0))
    await guard.book.flush()
    assert await store.spend(record.id, None, "key") == []
    other = Candidate("openai", "gpt-x", "gpt-x")
    assert (
        await refused(guard, request(record, "count_tokens"), other)
    ).kind is ErrorKind.PERMISSION


async def test_a_store_outage_is_a_retryable_refusal(guard: KeyGuard, store: Store) -> None:
    record = await make(store, rpm=5)
    await store.close()
    err = await refused(guard, request(record))
    assert err.kind is ErrorKind.OVERLOADED and err.retry_after == 1
    assert "a.db" not in err.message


def batch_request(record: KeyRecord) -> ClientRequest:
    return replace(request(record, "chat"), priority="batch")


async def test_batch_items_leave_live_calls_their_headroom(guard: KeyGuard, store: Store) -> None:
    record = await make(store, rpm=10)
    for _ in range(9):
        await guard.admit(batch_request(record), CANDIDATE)
    held_back = await refused(guard, batch_request(record))  # the tenth slot is for live calls
    assert held_back.kind == ErrorKind.RATE_LIMIT and held_back.retry_after
    await guard.admit(request(record, "chat"), CANDIDATE)
    assert (await refused(guard, request(record, "chat"))).kind == ErrorKind.RATE_LIMIT


def test_the_batch_share_of_each_limit() -> None:
    assert batch_share(Limits(rpm=100, tpm=10_000, max_parallel=4)) == Limits(90, 9_000, 3)
    assert batch_share(Limits(rpm=5, tpm=None, max_parallel=1)) == Limits(4, None, 1)


async def test_a_busy_live_key_is_leased_and_batch_items_never_end_its_lease(
    guard: KeyGuard, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = await make(store, rpm=100_000)
    calls: list[int] = []
    acquire = store.limiter.acquire

    async def counted(key_id: str, limits: Limits, now: float, want: int = 1) -> Any:
        calls.append(want)
        return await acquire(key_id, limits, now, want)

    monkeypatch.setattr(store.limiter, "acquire", counted)
    for _ in range(5):
        await guard.admit(request(record), CANDIDATE)
        await guard.admit(batch_request(record), CANDIDATE)
    # live calls: one reservation of 8 serves all five; each batch item: one slot in the store
    assert calls == [8] + [1] * 5


async def test_a_call_a_provider_ran_books_spend_but_no_rate_limits(
    guard: KeyGuard, store: Store
) -> None:
    record = await make(store, rpm=1, tpm=10)
    req = request(record)
    for _ in range(3):  # three native batch items: never admitted, so never refused
        await guard.settle_elsewhere(outcome(req, Usage(input_tokens=70, output_tokens=30), 0.25))
    await guard.settle_elsewhere(outcome(ClientRequest("chat", b""), Usage(), 9.0))  # no key
    await guard.book.flush()
    assert await store.spent(record.id, None) == pytest.approx(0.75)
    await guard.admit(req, CANDIDATE)  # its rpm and tpm windows saw none of them
