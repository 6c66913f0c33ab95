"""Budget webhooks: a POST when a key crosses 80, 95 and 100% of its budget, once per key and period.

    SpendBook.flush ──> BudgetAlerts.check(record, spent) ──> store.claim_alert(key, period, 80)
                                                               │ first claimer only (any worker,
                                                               ▼ any instance)
                                                          POST {"type": "budget.threshold", ...}

Runs in the spend book's background task, never on a request. The claim is taken before sending, so
an alert goes out at most once even with several workers; a send is retried (ATTEMPTS, with backoff)
and then given up with a warning in the log.

What it gives up: an alert whose every attempt failed is not re-sent later.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import anyio
import httpx

from anyllm_cli.keys.manage import iso, period_window
from anyllm_cli.stores import KeyRecord, UsageStore

log = logging.getLogger("anyllm.keys")
ATTEMPTS = 3
BACKOFF_S = 0.5


class BudgetAlerts:
    def __init__(
        self,
        store: UsageStore,
        url: str,
        thresholds: Sequence[int],
        client: httpx.AsyncClient,
        *,
        backoff_s: float = BACKOFF_S,
    ) -> None:
        self._store = store
        self._url = url
        self._thresholds = tuple(sorted(thresholds))
        self._client = client
        self._backoff_s = backoff_s
        self._done: set[tuple[str, str, int]] = set()  # claimed here or seen claimed

    async def check(self, record: KeyRecord, spent: float, now: float) -> None:
        """Send each threshold this spend has crossed and nobody has sent for this period."""
        budget = record.budget_usd
        if budget is None or budget <= 0:
            return
        start, reset = period_window(record.period, now)
        period = start or "total"
        for threshold in self._thresholds:
            mark = (record.id, period, threshold)
            if 100 * spent < threshold * budget or mark in self._done:
                continue
            self._done.add(mark)
            if await self._store.claim_alert(record.id, period, threshold, now):
                await self._send(
                    {
                        "type": "budget.threshold",
                        "threshold_percent": threshold,
                        "key": {"id": record.id, "name": record.name, "prefix": record.prefix},
                        "budget_usd": budget,
                        "spent_usd": round(spent, 6),
                        "period": record.period,
                        "period_start": start,
                        "resets": iso(reset),
                        "sent": iso(now),
                    }
                )

    async def _send(self, payload: dict[str, Any]) -> None:
        for attempt in range(ATTEMPTS):
            try:
                reply = await self._client.post(self._url, json=payload)
                if reply.is_success:
                    return
                problem = f"HTTP {reply.status_code}"
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if attempt + 1 < ATTEMPTS:
                await anyio.sleep(self._backoff_s * 2**attempt)
        log.warning(
            "budget webhook for key %s at %s%% failed after %d attempts (%s)",
            payload["key"]["id"],
            payload["threshold_percent"],
            ATTEMPTS,
            problem,
        )
