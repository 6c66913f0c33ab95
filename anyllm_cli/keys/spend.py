"""The spend book: what finished calls spent and used, added up in memory and written in batches.

    KeyGuard.settle ──add(spend), add_tokens(tpm)──> SpendBook (memory, per process)
                                                       │ every FLUSH_S, in the lifespan's task
                                                       ▼
                              store.record_spend: one upsert per key, model, backend and day
                              limiter.release(tokens): one booking per key with a tpm limit
                              BudgetAlerts.check: keys with a budget (webhooks)
                              on_written(key ids): the guard drops its cached spend for them

No request waits on a spend or token write. What has not been written yet is visible to this
process's budget check through `unwritten`; other workers see it after the next flush.

What it gives up: a crash loses at most FLUSH_S of spend and token bookings; a key's tpm window
sees a call's tokens up to FLUSH_S late.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import anyio

from anyllm_cli.keys.manage import period_window
from anyllm_cli.keys.webhooks import BudgetAlerts
from anyllm_cli.stores import KeyRecord, Limiter, UsageStore

log = logging.getLogger("anyllm.keys")
FLUSH_S = 0.25
SpendKey = tuple[str, str, str, str]  # key id, day, model, backend


@dataclass(slots=True)
class Spend:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0

    def merge(self, other: Spend) -> None:
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost += other.cost


class SpendBook:
    def __init__(
        self,
        store: UsageStore,
        limiter: Limiter | None = None,
        alerts: BudgetAlerts | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._limiter = limiter
        self._alerts = alerts
        self._clock = clock
        self._pending: dict[SpendKey, Spend] = {}
        self._tokens: dict[str, int] = {}
        self._budgeted: dict[str, KeyRecord] = {}  # keys with a budget, spent on since the flush
        self.on_written: Callable[[Iterable[str]], None] = lambda keys: None

    def add(self, group: SpendKey, spend: Spend, record: KeyRecord | None = None) -> None:
        self._pending.setdefault(group, Spend()).merge(spend)
        if record is not None and record.budget_usd is not None and self._alerts is not None:
            self._budgeted[record.id] = record

    def add_tokens(self, key_id: str, tokens: int) -> None:
        """Tokens for a key's tpm window (written with the next flush)."""
        if tokens > 0:
            self._tokens[key_id] = self._tokens.get(key_id, 0) + tokens

    def unwritten(self, key_id: str, since_day: str | None) -> float:
        return sum(
            row.cost
            for (kid, day, _, _), row in self._pending.items()
            if kid == key_id and day >= (since_day or "")
        )

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        tokens, self._tokens = self._tokens, {}
        now = self._clock()
        for key_id, count in tokens.items():
            if self._limiter is None:
                break
            try:
                await self._limiter.release(key_id, uuid.uuid4().hex, count, now)
            except Exception:  # the limiter is down: these tokens go uncounted, say so
                log.exception("could not book %d tokens for key %s", count, key_id)
        for group, row in pending.items():
            try:
                await self._store.record_spend(
                    group[0],
                    day=group[1],
                    model=group[2],
                    backend=group[3],
                    input_tokens=row.input_tokens,
                    output_tokens=row.output_tokens,
                    cost_usd=row.cost,
                    requests=row.requests,
                )
            except Exception:  # the store is down: keep the row for the next flush
                log.exception("could not record spend for key %s; will retry", group[0])
                self.add(group, row)
        self.on_written({group[0] for group in pending})
        await self._check_alerts(now)

    async def _check_alerts(self, now: float) -> None:
        budgeted, self._budgeted = self._budgeted, {}
        if self._alerts is None:
            return
        for record in budgeted.values():
            start, _ = period_window(record.period, now)
            try:
                spent = await self._store.spent(record.id, start)
                await self._alerts.check(record, spent, now)
            except Exception:  # an alert is best effort; the spend is written
                log.exception("budget alert check failed for key %s", record.id)

    async def run(self, interval: float = FLUSH_S) -> None:
        """Flush every `interval` until cancelled, then once more."""
        try:
            while True:
                await anyio.sleep(interval)
                await self.flush()
        finally:
            with anyio.CancelScope(shield=True):
                await self.flush()
