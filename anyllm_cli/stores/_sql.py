"""The SQL both engines share: keys, spend and the bucketed-window limiter over a DB-API cursor.

`SQLStore` implements `KeyStore` and `UsageStore`; `SQLLimiter` implements `Limiter`. Each operation is
a small synchronous function of one cursor, run by the engine either as a read or inside one write
transaction (`_write`): SQLite serialises writers with `BEGIN IMMEDIATE` (across processes too),
PostgreSQL with a transaction-scoped advisory lock on the limiter's key. Statements use `?`
placeholders; the PostgreSQL engine rewrites them.

The rate windows are per-key counters in one-second buckets (`rate_buckets`: kind 'r' counts
admitted requests, kind 't' the tokens of finished ones; bucket = floor(time), `latest` = the time of
the newest event in it). A bucket counts, whole, while its newest event is inside the 60-second
window (latest > now - 60): a decision reads at most 61 rows per kind (bucket >= floor(now - 60)),
however many requests the window holds, and a take or a release is one upsert. Counting a bucket
whole may count older events of the same second a little too long, never an event too short: no
60-second window ever admits more than rpm requests or tpm tokens. The reset/retry time is when the
oldest counted bucket stops counting (its latest + 60 s), so a client that waits that long finds the
count lower. Buckets that left the window are deleted now and then (PRUNE_CHANCE).

An acquire may reserve several request slots at once (`want`, sized by `lease_size` in the same
transaction as the count): the caller (keys/leases.py) spends them without a round trip and gives
back what it did not use. Near a limit a reservation is always one slot, so the count stays exact.

What it gives up: every limiter decision is a write transaction (exactness across workers and
instances costs one round trip per limited request, or per reservation; keys without limits never
touch it); events of one second leave the window together, with that second's newest one.
"""

from __future__ import annotations

import json
import math
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from anyllm_cli.stores import Decision, KeyRecord, Limiter, Limits, SpendGroup, SpendRow

T = TypeVar("T")
WINDOW_S = 60.0
LEASE_S = 600.0  # an in-flight slot of a crashed worker frees itself after this long
PRUNE_CHANCE = 0.02  # of an acquire also deleting its key's rows that left the window
LEASE_SHARE = 16  # a reservation takes at most 1/16 of the requests left in the window
MAX_LEASE = 1024

_COLUMNS = (
    "id",
    "name",
    "key_hash",
    "prefix",
    "created",
    "expires",
    "revoked",
    "rpm",
    "tpm",
    "max_parallel",
    "budget_usd",
    "period",
    "models",
    "backends",
    "metadata",
)
UPDATABLE = frozenset(_COLUMNS) - {"id", "created"}
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM keys"
_GROUPS: dict[str, str] = {"key": "key_id", "model": "model", "backend": "backend", "day": "day"}


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


def _record(row: Sequence[Any]) -> KeyRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["models"] = tuple(json.loads(values["models"]))
    values["backends"] = tuple(json.loads(values["backends"]))
    values["metadata"] = json.loads(values["metadata"])
    return KeyRecord(**values)


def _column_value(name: str, value: Any) -> Any:
    if name in ("models", "backends"):
        return json.dumps(list(value))
    if name == "metadata":
        return json.dumps(dict(value), separators=(",", ":"))
    return value


def _bump(cur: Cursor) -> None:
    cur.execute("UPDATE counters SET value = value + 1 WHERE name = 'keys_version'")


class SQLStore:
    """Keys and spend over an engine's `_read` / `_write`; the engine sets `url`."""

    url: str
    limiter: Limiter

    async def _read(self, fn: Callable[[Cursor], T]) -> T:
        raise NotImplementedError

    async def _write(self, fn: Callable[[Cursor], T], lock: str | None = None) -> T:
        raise NotImplementedError

    async def _write_short(self, fn: Callable[[Cursor], T], lock: str | None = None) -> T:
        """A write of a few indexed statements (the limiter's); an engine may run it inline."""
        return await self._write(fn, lock)

    async def close(self) -> None:
        raise NotImplementedError

    # -- keys -----------------------------------------------------------------------------------

    async def create_key(self, record: KeyRecord) -> None:
        values = [_column_value(c, getattr(record, c)) for c in _COLUMNS]
        marks = ", ".join("?" for _ in _COLUMNS)

        def run(cur: Cursor) -> None:
            cur.execute(f"INSERT INTO keys ({', '.join(_COLUMNS)}) VALUES ({marks})", values)
            _bump(cur)

        await self._write(run)

    async def get_key(self, ref: str) -> KeyRecord | None:
        def run(cur: Cursor) -> KeyRecord | None:
            cur.execute(f"{_SELECT} WHERE id = ?", (ref,))
            row = cur.fetchone()
            if row is None:
                cur.execute(f"{_SELECT} WHERE name = ? ORDER BY created DESC LIMIT 1", (ref,))
                row = cur.fetchone()
            return None if row is None else _record(row)

        return await self._read(run)

    async def find_key(self, key_hash: str) -> KeyRecord | None:
        def run(cur: Cursor) -> KeyRecord | None:
            cur.execute(f"{_SELECT} WHERE key_hash = ?", (key_hash,))
            row = cur.fetchone()
            return None if row is None else _record(row)

        return await self._read(run)

    async def list_keys(self) -> list[KeyRecord]:
        def run(cur: Cursor) -> list[KeyRecord]:
            cur.execute(f"{_SELECT} ORDER BY created, id")
            return [_record(row) for row in cur.fetchall()]

        return await self._read(run)

    async def update_key(self, key_id: str, changes: Mapping[str, Any]) -> KeyRecord | None:
        bad = set(changes) - UPDATABLE
        if bad:
            raise ValueError(f"not updatable: {', '.join(sorted(bad))}")

        def run(cur: Cursor) -> KeyRecord | None:
            if changes:
                sets = ", ".join(f"{name} = ?" for name in changes)
                params = [_column_value(n, v) for n, v in changes.items()]
                cur.execute(f"UPDATE keys SET {sets} WHERE id = ?", [*params, key_id])
                _bump(cur)
            cur.execute(f"{_SELECT} WHERE id = ?", (key_id,))
            row = cur.fetchone()
            return None if row is None else _record(row)

        return await self._write(run)

    async def delete_key(self, key_id: str) -> bool:
        def run(cur: Cursor) -> bool:
            cur.execute("SELECT 1 FROM keys WHERE id = ?", (key_id,))
            if cur.fetchone() is None:
                return False
            cur.execute("DELETE FROM keys WHERE id = ?", (key_id,))
            _bump(cur)
            return True

        return await self._write(run)

    async def keys_version(self) -> int:
        def run(cur: Cursor) -> int:
            cur.execute("SELECT value FROM counters WHERE name = 'keys_version'")
            return int(cur.fetchone()[0])

        return await self._read(run)

    async def count_active_keys(self, now: float) -> int:
        def run(cur: Cursor) -> int:
            cur.execute(
                "SELECT COUNT(*) FROM keys WHERE revoked IS NULL "
                "AND (expires IS NULL OR expires > ?)",
                (now,),
            )
            return int(cur.fetchone()[0])

        return await self._read(run)

    # -- spend ----------------------------------------------------------------------------------

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
    ) -> None:
        def run(cur: Cursor) -> None:
            cur.execute(
                "INSERT INTO spend (key_id, day, model, backend, requests, input_tokens, "
                "output_tokens, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (key_id, day, model, backend) DO UPDATE SET "
                "requests = spend.requests + excluded.requests, "
                "input_tokens = spend.input_tokens + excluded.input_tokens, "
                "output_tokens = spend.output_tokens + excluded.output_tokens, "
                "cost_usd = spend.cost_usd + excluded.cost_usd",
                (key_id, day, model, backend, requests, input_tokens, output_tokens, cost_usd),
            )

        await self._write(run)

    async def spent(self, key_id: str, since_day: str | None) -> float:
        def run(cur: Cursor) -> float:
            cur.execute(
                "SELECT COALESCE(SUM(cost_usd), 0) FROM spend WHERE key_id = ? AND day >= ?",
                (key_id, since_day or ""),
            )
            return float(cur.fetchone()[0])

        return await self._read(run)

    async def spend(
        self, key_id: str | None, since_day: str | None, by: SpendGroup
    ) -> list[SpendRow]:
        column = _GROUPS[by]

        def run(cur: Cursor) -> list[SpendRow]:
            where, params = "day >= ?", [since_day or ""]
            if key_id is not None:
                where += " AND key_id = ?"
                params.append(key_id)
            cur.execute(
                f"SELECT {column}, SUM(requests), SUM(input_tokens), SUM(output_tokens), "
                f"SUM(cost_usd) FROM spend WHERE {where} GROUP BY {column} ORDER BY {column}",
                params,
            )
            return [
                SpendRow(str(r[0]), int(r[1]), int(r[2]), int(r[3]), float(r[4]))
                for r in cur.fetchall()
            ]

        return await self._read(run)

    async def claim_alert(self, key_id: str, period_start: str, threshold: int, now: float) -> bool:
        def run(cur: Cursor) -> bool:
            cur.execute(
                "SELECT 1 FROM budget_alerts WHERE key_id = ? AND period_start = ? "
                "AND threshold = ?",
                (key_id, period_start, threshold),
            )
            if cur.fetchone() is not None:
                return False
            cur.execute(
                "INSERT INTO budget_alerts (key_id, period_start, threshold, sent) "
                "VALUES (?, ?, ?, ?)",
                (key_id, period_start, threshold, now),
            )
            return True

        return await self._write(run, f"alert:{key_id}")


# -- the limiter ---------------------------------------------------------------------------------


def _window(cur: Cursor, key_id: str, kind: str, now: float) -> tuple[int, float]:
    """The amount in the buckets that still count, and in how long the oldest of them stops."""
    cur.execute(
        "SELECT COALESCE(SUM(amount), 0), MIN(latest) FROM rate_buckets "
        "WHERE key_id = ? AND kind = ? AND bucket >= ? AND latest > ?",
        (key_id, kind, math.floor(now - WINDOW_S), now - WINDOW_S),
    )
    total, oldest = cur.fetchone()
    return int(total), (0.0 if oldest is None else float(oldest) + WINDOW_S - now)


def lease_size(limits: Limits, want: int, requests: int, tokens: int) -> int:
    """How many request slots an admitted acquire takes: 1, or (asked for more, far from every
    limit, no parallel limit) up to 1/LEASE_SHARE of the requests left. With fewer than
    LEASE_SHARE left, or under a quarter of the tokens left, it is 1: exact where it matters."""
    if want <= 1 or limits.max_parallel is not None:
        return 1
    if limits.tpm is not None and (limits.tpm - tokens) * 4 < limits.tpm:
        return 1
    room = min(want, MAX_LEASE)
    if limits.rpm is not None:
        room = min(room, (limits.rpm - requests) // LEASE_SHARE)
    return max(1, room)


def acquire_sync(cur: Cursor, key_id: str, limits: Limits, now: float, want: int = 1) -> Decision:
    """One atomic check-and-take (the caller holds the write transaction). Only the limits the key
    has are read; old buckets are pruned now and then, not on every call."""
    requests = tokens = parallel = 0
    requests_reset = tokens_reset = 0.0
    if limits.rpm is not None:
        requests, requests_reset = _window(cur, key_id, "r", now)
    if limits.tpm is not None:
        tokens, tokens_reset = _window(cur, key_id, "t", now)
    if limits.max_parallel is not None:
        cur.execute("SELECT COUNT(*) FROM inflight WHERE key_id = ? AND expires > ?", (key_id, now))
        parallel = int(cur.fetchone()[0])
    if random.random() < PRUNE_CHANCE:
        cur.execute(
            "DELETE FROM rate_buckets WHERE key_id = ? AND bucket < ?",
            (key_id, math.floor(now - WINDOW_S)),
        )
        cur.execute("DELETE FROM inflight WHERE key_id = ? AND expires <= ?", (key_id, now))
    return decide(
        limits,
        requests=requests,
        tokens=tokens,
        parallel=parallel,
        requests_reset=requests_reset,
        tokens_reset=tokens_reset,
        take=lambda ticket, granted: _take(cur, key_id, limits, now, ticket, granted=granted),
        want=want,
    )


def decide(
    limits: Limits,
    *,
    requests: int,
    tokens: int,
    parallel: int,
    requests_reset: float,
    tokens_reset: float,
    take: Callable[[str, int], None],
    want: int = 1,
) -> Decision:
    """The limiter's rule, shared by every engine: refuse on the first limit reached, else take
    (`lease_size` slots)."""
    state = Decision(
        False,
        requests_remaining=None if limits.rpm is None else max(0, limits.rpm - requests),
        tokens_remaining=None if limits.tpm is None else max(0, limits.tpm - tokens),
        requests_reset=max(0.0, requests_reset),
        tokens_reset=max(0.0, tokens_reset),
    )
    if limits.rpm is not None and requests >= limits.rpm:
        return replace(state, reason="requests", retry_after=max(1.0, requests_reset))
    if limits.tpm is not None and tokens >= limits.tpm:
        return replace(state, reason="tokens", retry_after=max(1.0, tokens_reset))
    if limits.max_parallel is not None and parallel >= limits.max_parallel:
        return replace(state, reason="parallel", retry_after=1.0)
    ticket = uuid.uuid4().hex
    granted = lease_size(limits, want, requests, tokens)
    take(ticket, granted)
    if limits.rpm is None:
        return replace(state, allowed=True, ticket=ticket, granted=granted)
    return replace(
        state,
        allowed=True,
        ticket=ticket,
        granted=granted,
        requests_remaining=max(0, limits.rpm - requests - granted),
        requests_reset=state.requests_reset or WINDOW_S,
    )


def _book(cur: Cursor, key_id: str, kind: str, now: float, amount: int) -> None:
    """Add to the second's counter (`latest` never goes back: workers' clocks may interleave)."""
    cur.execute(
        "INSERT INTO rate_buckets (key_id, kind, bucket, amount, latest) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (key_id, kind, bucket) DO UPDATE SET "
        "amount = rate_buckets.amount + excluded.amount, latest = CASE WHEN "
        "excluded.latest > rate_buckets.latest THEN excluded.latest ELSE rate_buckets.latest END",
        (key_id, kind, math.floor(now), amount, now),
    )


def _take(
    cur: Cursor, key_id: str, limits: Limits, now: float, ticket: str, *, granted: int
) -> None:
    if limits.rpm is not None:
        _book(cur, key_id, "r", now, granted)
    if limits.max_parallel is not None:
        cur.execute(
            "INSERT INTO inflight (ticket, key_id, expires) VALUES (?, ?, ?)",
            (ticket, key_id, now + LEASE_S),
        )


def release_sync(cur: Cursor, key_id: str, ticket: str, tokens: int, now: float) -> None:
    cur.execute("DELETE FROM inflight WHERE ticket = ?", (ticket,))
    if tokens > 0:
        _book(cur, key_id, "t", now, tokens)


def give_back_sync(cur: Cursor, key_id: str, taken_at: float, unused: int) -> None:
    """Unused reserved slots leave the bucket they were booked in (gone already: nothing to do)."""
    cur.execute(
        "UPDATE rate_buckets SET amount = amount - ? WHERE key_id = ? AND kind = 'r' "
        "AND bucket = ? AND amount >= ?",
        (unused, key_id, math.floor(taken_at), unused),
    )


class SQLLimiter:
    """The limiter in the store's own tables (the default when no Redis is configured)."""

    def __init__(self, store: SQLStore) -> None:
        self._store = store

    async def acquire(self, key_id: str, limits: Limits, now: float, want: int = 1) -> Decision:
        return await self._store._write_short(
            lambda cur: acquire_sync(cur, key_id, limits, now, want), key_id
        )

    async def release(self, key_id: str, ticket: str, tokens: int, now: float) -> None:
        await self._store._write_short(
            lambda cur: release_sync(cur, key_id, ticket, tokens, now), key_id
        )

    async def give_back(
        self, key_id: str, ticket: str, taken_at: float, granted: int, unused: int
    ) -> None:
        if unused > 0:
            await self._store._write_short(
                lambda cur: give_back_sync(cur, key_id, taken_at, unused), key_id
            )

    async def close(self) -> None:
        return None
