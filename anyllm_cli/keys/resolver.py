"""Presented secret -> key record, cached in memory, invalidated by the store's `keys_version`.

    resolve(secret) ──hash──> cache hit? ──no──> store.find_key(hash) (off the event loop)
                        │
    every REFRESH_S at most: one read of keys_version; changed -> drop the cache, recount keys

A running proxy sees a CLI revoke, a new limit or a new key within REFRESH_S plus one request,
without a restart and without a store read per request. Misses are cached too (bounded), so a
client hammering with a wrong key costs one lookup per refresh, not one per request.

What it gives up: a key's status is judged on the cached record until the next refresh (an expiry
is checked against the clock every time, though).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio

from anyllm_cli.keys.format import hash_secret
from anyllm_cli.stores import KeyRecord, KeyStore

REFRESH_S = 0.5
MAX_CACHED = 10_000


class KeyResolver:
    def __init__(
        self,
        store: KeyStore,
        *,
        refresh_s: float = REFRESH_S,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self._monotonic = monotonic
        self._wall = wall
        self._by_hash: dict[str, KeyRecord | None] = {}
        self._by_id: dict[str, KeyRecord] = {}
        self._version = -1
        self._checked = -float("inf")
        self._active = 0
        self._lock = anyio.Lock()

    async def _refresh(self) -> None:
        if self._monotonic() - self._checked < self._refresh_s:
            return
        async with self._lock:
            if self._monotonic() - self._checked < self._refresh_s:
                return
            version = await self._store.keys_version()
            if version != self._version:
                self._by_hash.clear()
                self._by_id.clear()
                self._active = await self._store.count_active_keys(self._wall())
                self._version = version
            self._checked = self._monotonic()

    async def active_keys(self) -> int:
        """How many usable keys the store holds (as of the last refresh)."""
        await self._refresh()
        return self._active

    async def resolve(self, secret: str) -> KeyRecord | None:
        """The record of this secret (whatever its status), or None when no key has it."""
        await self._refresh()
        digest = hash_secret(secret)
        if digest in self._by_hash:
            return self._by_hash[digest]
        record = await self._store.find_key(digest)
        if len(self._by_hash) >= MAX_CACHED:
            self._by_hash.clear()
        self._by_hash[digest] = record
        if record is not None:
            self._by_id[record.id] = record
        return record

    async def by_id(self, key_id: str) -> KeyRecord | None:
        """The record of a key id (for the guard; a batch's owner may never have been resolved)."""
        await self._refresh()
        record = self._by_id.get(key_id)
        if record is None:
            record = await self._store.get_key(key_id)
            if record is not None and record.id == key_id:
                self._by_id[key_id] = record
            else:
                record = None
        return record
