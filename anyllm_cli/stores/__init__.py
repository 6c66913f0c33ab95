"""What the features need from storage, as Protocols, and `open_store` to pick an implementation.

    Store = KeyStore + UsageStore + (a Limiter, its own or Redis's)

    sqlite:///path        the default, at <ANYLLM_HOME or user data dir>/anyllm.db (`sqlite/`)
    postgresql://...      several proxy instances sharing one store (`postgres.py`)
    redis://...           rate-limit windows and in-flight counters shared across instances (`redis.py`)

Records are plain frozen dataclasses; times are Unix seconds (floats, UTC). A key record holds the
SHA-256 of its secret and a short visible prefix, never the secret. Every write to a key bumps a
store-wide `keys_version`, which a running proxy polls to drop its cached lookups, so a CLI revoke is
seen within a second without a write per request.

The limiter is a sliding log (exact, unlike fixed windows that let 2x through across a boundary):
`acquire` checks rpm, tpm and parallel and takes a slot in one atomic step shared by every worker and
instance; `release` gives the parallel slot back and books the call's tokens.

What it gives up: spend is kept per key, model, backend and UTC day (no per-request rows), so a
budget period starts on a UTC day boundary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from anyllm_cli.errors import StoreError

Period = Literal["day", "week", "month", "total"]
PERIODS: tuple[Period, ...] = ("day", "week", "month", "total")
SpendGroup = Literal["key", "model", "backend", "day"]

__all__ = [
    "PERIODS",
    "Decision",
    "KeyRecord",
    "KeyStore",
    "Limiter",
    "Limits",
    "Period",
    "SpendGroup",
    "SpendRow",
    "Store",
    "StoreError",
    "UsageStore",
    "open_store",
]


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    name: str
    key_hash: str
    prefix: str  # "sk-anyllm-AbCd": enough to recognise a key in a list, useless to call with
    created: float
    expires: float | None = None
    revoked: float | None = None
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None
    budget_usd: float | None = None
    period: Period = "total"
    models: tuple[str, ...] = ()  # globs over the requested and the mapped model; empty = any
    backends: tuple[str, ...] = ()  # backend names; empty = any
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def status(self, now: float) -> str:
        if self.revoked is not None:
            return "revoked"
        if self.expires is not None and self.expires <= now:
            return "expired"
        return "active"


@dataclass(frozen=True, slots=True)
class SpendRow:
    group: str  # the key id, model, backend or day (YYYY-MM-DD)
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class Limits:
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None

    def any(self) -> bool:
        return self.rpm is not None or self.tpm is not None or self.max_parallel is not None


@dataclass(frozen=True, slots=True)
class Decision:
    """The limiter's answer, with what remains for the rate-limit headers."""

    allowed: bool
    ticket: str = ""  # give back with `release`
    reason: str = ""  # "requests", "tokens" or "parallel" when refused
    retry_after: float = 0.0
    requests_remaining: int | None = None
    tokens_remaining: int | None = None
    requests_reset: float = 0.0  # seconds until a request slot frees
    tokens_reset: float = 0.0
    granted: int = 0  # request slots taken (1, or a reservation of several: see `lease_size`)


class KeyStore(Protocol):
    async def create_key(self, record: KeyRecord) -> None: ...
    async def get_key(self, ref: str) -> KeyRecord | None:
        """By id, else by name (the newest key of that name)."""
        ...

    async def find_key(self, key_hash: str) -> KeyRecord | None: ...
    async def list_keys(self) -> list[KeyRecord]: ...
    async def update_key(self, key_id: str, changes: Mapping[str, Any]) -> KeyRecord | None: ...
    async def delete_key(self, key_id: str) -> bool: ...
    async def keys_version(self) -> int:
        """A counter bumped by every key write, for cache invalidation."""
        ...

    async def count_active_keys(self, now: float) -> int: ...


class UsageStore(Protocol):
    async def record_spend(
        self,
        key_id: str,
        *,
        day: str,
        model: str,
        backend: str,
        input_tokens: int,
        output_tokens: int,
        cost_usd: float,
        requests: int = 1,
    ) -> None: ...
    async def spent(self, key_id: str, since_day: str | None) -> float:
        """USD spent by a key from that UTC day on (None: ever)."""
        ...

    async def spend(
        self, key_id: str | None, since_day: str | None, by: SpendGroup
    ) -> list[SpendRow]: ...
    async def claim_alert(self, key_id: str, period_start: str, threshold: int, now: float) -> bool:
        """True for the first caller only (across workers and instances): it sends the alert."""
        ...


class Limiter(Protocol):
    async def acquire(self, key_id: str, limits: Limits, now: float, want: int = 1) -> Decision:
        """Check and take atomically; with `want` > 1, reserve up to that many request slots
        (how many: `lease_size`, decided with the count, so near a limit it is always 1)."""
        ...

    async def release(self, key_id: str, ticket: str, tokens: int, now: float) -> None: ...
    async def give_back(
        self, key_id: str, ticket: str, taken_at: float, granted: int, unused: int
    ) -> None:
        """Return the last `unused` of the `granted` request slots a decision reserved."""
        ...

    async def close(self) -> None: ...


class Store(KeyStore, UsageStore, Protocol):
    url: str  # for banners and messages (no password)
    limiter: Limiter

    async def close(self) -> None: ...


async def open_store(url: str, redis_url: str | None = None) -> Store:
    """Open (and migrate) the store at `url`; with `redis_url`, limits live in Redis."""
    store: Store
    if url.startswith("sqlite:"):
        from anyllm_cli.stores.sqlite import SQLiteStore

        store = await SQLiteStore.open(url)
    elif url.startswith(("postgresql:", "postgres:")):
        from anyllm_cli.stores.postgres import PostgresStore

        store = await PostgresStore.open(url)
    else:
        raise StoreError(f"store URL {url!r}: expected sqlite:///PATH or postgresql://...")
    if redis_url:
        from anyllm_cli.stores.redis import RedisLimiter

        try:
            store.limiter = await RedisLimiter.open(redis_url)
        except BaseException:
            await store.close()
            raise
    return store
