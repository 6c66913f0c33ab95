"""LocalKeys: the JSON answers the CLI and the admin API share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from anyllm_cli.errors import KeyNotFound
from anyllm_cli.keys.manage import KeyOptions
from anyllm_cli.keys.service import LocalKeys
from anyllm_cli.stores import open_store

pytestmark = pytest.mark.anyio
NOW = 1_800_000_000.0


@pytest.fixture
async def keys(tmp_path: Path) -> AsyncIterator[LocalKeys]:
    store = await open_store(f"sqlite://{tmp_path / 'a.db'}")
    yield LocalKeys(store, clock=lambda: NOW)
    await store.close()


async def test_views_never_hold_the_secret_or_its_hash(keys: LocalKeys) -> None:
    view, secret = await keys.create(KeyOptions(name="a", budget_usd=3.0, period="day"))
    assert secret not in str(view) and "key_hash" not in view
    assert view["spent_usd"] == 0.0 and view["remaining_usd"] == 3.0
    assert view["budget_resets"] is not None and view["created"].endswith("Z")


async def test_spend_for_one_key_and_all(keys: LocalKeys) -> None:
    a, _ = await keys.create(KeyOptions(name="a"))
    b, _ = await keys.create(KeyOptions(name="b"))
    for key_id, cost in ((a["id"], 1.0), (b["id"], 2.0)):
        await keys.store.record_spend(
            key_id, day="2027-01-15", model="m", backend="x", input_tokens=1, output_tokens=1,
            cost_usd=cost,
        )  # fmt: skip
    assert [r["cost_usd"] for r in await keys.spend("a", None, "key")] == [1.0]
    assert sorted(r["cost_usd"] for r in await keys.spend(None, "2027-01-01", "key")) == [1.0, 2.0]
    assert await keys.spend(None, "2027-02-01", "key") == []
    assert {r["name"] for r in await keys.spend(None, None, "key")} == {"a", "b"}  # beside ids
    await keys.delete("b")
    assert {r["name"] for r in await keys.spend(None, None, "key")} == {"a", None}
    assert "name" not in (await keys.spend(None, None, "model"))[0]
    shown = await keys.show("a")
    assert shown["spent_usd"] == 1.0  # period total: everything
    with pytest.raises(KeyNotFound):
        await keys.spend("nope", None, "key")


async def test_list_hides_inactive_keys_unless_asked(keys: LocalKeys) -> None:
    await keys.create(KeyOptions(name="a"))
    await keys.create(KeyOptions(name="old", expires=NOW - 1))
    await keys.create(KeyOptions(name="gone"))
    await keys.revoke("gone")
    assert [k["name"] for k in await keys.list_keys(False)] == ["a"]
    statuses = {k["name"]: k["status"] for k in await keys.list_keys(True)}
    assert statuses == {"a": "active", "old": "expired", "gone": "revoked"}
    deleted = await keys.delete("a")
    assert deleted["spent_usd"] is None and len(await keys.list_keys(True)) == 2
