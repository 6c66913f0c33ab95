"""KeyResolver: lookups by hash, cached until the store's keys_version moves."""

from __future__ import annotations

from pathlib import Path

import pytest

from anyllm_cli.keys import manage
from anyllm_cli.keys.manage import KeyOptions
from anyllm_cli.keys.resolver import KeyResolver
from anyllm_cli.stores import open_store

pytestmark = pytest.mark.anyio


class CountingStore:
    """Wraps a store and counts its lookups."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.finds = 0
        self.versions = 0

    async def find_key(self, key_hash: str):  # type: ignore[no-untyped-def]
        self.finds += 1
        return await self.inner.find_key(key_hash)  # type: ignore[attr-defined]

    async def keys_version(self) -> int:
        self.versions += 1
        return await self.inner.keys_version()  # type: ignore[attr-defined,no-any-return]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


async def test_hits_and_misses_are_cached_until_the_version_moves(tmp_path: Path) -> None:
    store = await open_store(f"sqlite://{tmp_path / 'a.db'}")
    counting = CountingStore(store)
    ticks = [0.0]
    resolver = KeyResolver(counting, monotonic=lambda: ticks[0])  # type: ignore[arg-type]
    assert await resolver.active_keys() == 0
    record, secret = await manage.create(store, KeyOptions(name="a"), 0)
    assert await resolver.resolve(secret) is not None  # a new key works at once...
    assert await resolver.active_keys() == 0  # ...though the count waits for the refresh
    ticks[0] = 1.0
    assert await resolver.active_keys() == 1
    for _ in range(5):
        found = await resolver.resolve(secret)
        assert found is not None and found.id == record.id
        assert await resolver.resolve("sk-anyllm-wrong") is None
    assert counting.finds == 3  # before the refresh, then one hit and one miss
    assert counting.versions == 2
    assert await resolver.by_id(record.id) == found
    assert await resolver.by_id("name-is-not-an-id") is None
    await store.close()
