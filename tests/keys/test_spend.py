"""The spend book: batched upserts, token bookings for tpm, retries, and who is told after a flush."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from anyllm_cli.keys.spend import Spend, SpendBook
from anyllm_cli.stores import Limits, Store, open_store

pytestmark = pytest.mark.anyio
NOW = 1_800_000_000.0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite://{tmp_path / 'a.db'}")
    yield opened
    await opened.close()


async def test_many_calls_become_one_row_per_group(store: Store) -> None:
    book = SpendBook(store, store.limiter, clock=lambda: NOW)
    written: list[set[str]] = []
    book.on_written = lambda keys: written.append(set(keys))
    for _ in range(3):
        book.add(("k", "2027-01-15", "m", "b"), Spend(1, 10, 5, 0.25))
    book.add(("k", "2027-01-14", "m", "b"), Spend(1, 1, 1, 1.0))
    assert book.unwritten("k", None) == 1.75 and book.unwritten("k", "2027-01-15") == 0.75
    await book.flush()
    assert book.unwritten("k", None) == 0
    rows = await store.spend("k", None, "day")
    assert [(r.group, r.requests, r.input_tokens, r.cost_usd) for r in rows] == [
        ("2027-01-14", 1, 1, 1.0),
        ("2027-01-15", 3, 30, 0.75),
    ]
    assert written == [{"k"}]


async def test_tokens_are_booked_for_the_tpm_window(store: Store) -> None:
    book = SpendBook(store, store.limiter, clock=lambda: NOW)
    book.add_tokens("k", 60)
    book.add_tokens("k", 50)
    book.add_tokens("k", 0)
    await book.flush()
    decision = await store.limiter.acquire("k", Limits(tpm=100), NOW + 1)
    assert not decision.allowed and decision.reason == "tokens"


async def test_a_failed_write_is_kept_for_the_next_flush(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    class Flaky:
        def __init__(self) -> None:
            self.fail = True

        async def record_spend(self, *args: object, **kwargs: object) -> None:
            if self.fail:
                self.fail = False
                raise OSError("disk full")
            await store.record_spend(*args, **kwargs)  # type: ignore[arg-type]

        def __getattr__(self, name: str) -> object:
            return getattr(store, name)

    book = SpendBook(Flaky())  # type: ignore[arg-type]
    book.add(("k", "d", "m", "b"), Spend(2, 1, 1, 0.5))
    await book.flush()
    assert "will retry" in caplog.text and book.unwritten("k", None) == 0.5
    await book.flush()
    assert await store.spent("k", None) == 0.5
