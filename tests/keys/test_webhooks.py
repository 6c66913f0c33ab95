"""Budget webhooks: each threshold once per key and period, across instances; retried; then logged."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from anyllm_cli.keys.webhooks import BudgetAlerts
from anyllm_cli.stores import KeyRecord, Store, open_store

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 12, 9, 15, 30, tzinfo=UTC).timestamp()
KEY = KeyRecord("key_1", "ci", "h", "sk-anyllm-abcd", 0, budget_usd=10.0, period="month")
URL = "http://hooks.test/anyllm"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite://{tmp_path / 'a.db'}")
    yield opened
    await opened.close()


class Hook:
    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[dict[str, object]] = []
        self.fail_first = fail_first
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls <= self.fail_first:
            return httpx.Response(503)
        self.bodies.append(json.loads(request.content))
        return httpx.Response(204)

    def alerts(self, store: Store) -> BudgetAlerts:
        client = httpx.AsyncClient(transport=httpx.MockTransport(self))
        return BudgetAlerts(store, URL, (80, 95, 100), client, backoff_s=0)


async def test_each_threshold_once_per_period_across_instances(store: Store) -> None:
    hook = Hook()
    a, b = hook.alerts(store), hook.alerts(store)  # two workers
    await a.check(KEY, 7.9, NOW)
    assert hook.bodies == []
    await a.check(KEY, 8.0, NOW)
    await b.check(KEY, 8.5, NOW)
    await b.check(KEY, 12.0, NOW)
    await a.check(KEY, 12.0, NOW)
    assert [body["threshold_percent"] for body in hook.bodies] == [80, 95, 100]
    first = hook.bodies[0]
    assert first["key"] == {"id": "key_1", "name": "ci", "prefix": "sk-anyllm-abcd"}
    assert first["period_start"] == "2026-12-01" and first["resets"] == "2027-01-01T00:00:00Z"
    next_month = datetime(2027, 1, 2, tzinfo=UTC).timestamp()
    await a.check(KEY, 9.0, next_month)
    assert [body["period_start"] for body in hook.bodies][-1] == "2027-01-01"


async def test_a_failed_send_is_retried_then_logged(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = Hook(fail_first=2)
    await flaky.alerts(store).check(KEY, 8.0, NOW)
    assert flaky.calls == 3 and len(flaky.bodies) == 1
    down = Hook(fail_first=99)
    other = KeyRecord("key_2", "x", "h2", "p", 0, budget_usd=1.0)
    caplog.set_level(logging.WARNING, "anyllm")
    await down.alerts(store).check(other, 1.0, NOW)
    assert down.calls == 9  # three thresholds, three attempts each
    assert "budget webhook for key key_2 at 80% failed after 3 attempts (HTTP 503)" in caplog.text


async def test_keys_without_a_budget_send_nothing(store: Store) -> None:
    hook = Hook()
    await hook.alerts(store).check(KeyRecord("k", "n", "h", "p", 0), 1e9, NOW)
    assert hook.calls == 0
