"""The batch and file store contract, on every engine: leases, idempotent results, ending."""

from __future__ import annotations

import json
from dataclasses import replace

import anyio
import pytest

from anyllm_cli.stores import Store
from anyllm_cli.stores.batches import Batches, BatchRecord, Counts, FileRecord, NewItem, batches_of

pytestmark = pytest.mark.anyio
NOW = 1_800_000_000.0


def _batch(n: int = 1, total: int = 3, **kw: object) -> tuple[BatchRecord, list[NewItem]]:
    values: dict[str, object] = dict(
        id=f"batch_{n}",
        owner="key_a",
        owner_kind="virtual",
        format="openai",
        api="chat",
        endpoint="/v1/chat/completions",
        created=NOW + n,
        expires=NOW + 3600,
        metadata={"job": "x"},
    )
    values.update(kw)
    items = [NewItem(f"c{i}", json.dumps({"i": i}).encode(), i + 1) for i in range(total)]
    return BatchRecord(**values), items  # type: ignore[arg-type]


@pytest.fixture
def batches(store: Store) -> Batches:
    return batches_of(store)


async def test_a_batch_round_trips_with_its_items(batches: Batches) -> None:
    record, items = _batch()
    await batches.create_batch(record, items)
    got = await batches.get_batch("batch_1")
    assert got is not None and got.counts.total == 3 and got.metadata == {"job": "x"}
    assert got.owner_kind == "virtual" and got.ended is None
    rows = await batches.items("batch_1")
    assert [(r.custom_id, r.line, r.result) for r in rows] == [
        ("c0", 1, None),
        ("c1", 2, None),
        ("c2", 3, None),
    ]
    assert [r.custom_id for r in await batches.items("batch_1", after_line=1, limit=1)] == ["c1"]
    assert await batches.get_batch("nope") is None


async def test_claims_lease_items_once_until_the_lease_expires(batches: Batches) -> None:
    await batches.create_batch(*_batch())
    first = await batches.claim("w1", limit=2, per_batch=10, lease_s=30, now=NOW)
    assert [(c.custom_id, c.attempts, json.loads(c.body)) for c in first] == [
        ("c0", 0, {"i": 0}),
        ("c1", 0, {"i": 1}),
    ]
    second = await batches.claim("w2", limit=10, per_batch=10, lease_s=30, now=NOW)
    assert [c.custom_id for c in second] == ["c2"]
    assert await batches.claim("w2", limit=10, per_batch=10, lease_s=30, now=NOW + 10) == []
    await batches.renew("w1", [("batch_1", "c0")], lease_s=30, now=NOW + 20)
    # w1 died: after the lease, its unrenewed item goes to another worker, with its attempt counted
    later = await batches.claim("w3", limit=10, per_batch=10, lease_s=30, now=NOW + 31)
    assert sorted((c.custom_id, c.attempts) for c in later) == [("c1", 1), ("c2", 1)]


async def test_per_batch_caps_live_leases_across_workers(batches: Batches) -> None:
    await batches.create_batch(*_batch(total=5))
    await batches.create_batch(*_batch(2, total=2))
    got = await batches.claim("w1", limit=10, per_batch=2, lease_s=30, now=NOW)
    assert [(c.batch_id, c.custom_id) for c in got] == [
        ("batch_1", "c0"),
        ("batch_1", "c1"),
        ("batch_2", "c0"),
        ("batch_2", "c1"),
    ]
    assert await batches.claim("w2", limit=10, per_batch=2, lease_s=30, now=NOW) == []
    await batches.release("w1", [("batch_1", "c0")])
    again = await batches.claim("w2", limit=10, per_batch=2, lease_s=30, now=NOW)
    assert [c.custom_id for c in again] == ["c0"]


async def test_the_first_result_wins_and_counts_once(batches: Batches) -> None:
    await batches.create_batch(*_batch())
    await batches.complete("batch_1", [("c0", {"type": "succeeded", "body": {"n": 1}})])
    await batches.complete("batch_1", [("c0", {"type": "errored", "message": "late"})])
    record = await batches.get_batch("batch_1")
    assert record is not None and (record.counts.succeeded, record.counts.errored) == (1, 0)
    rows = await batches.items("batch_1")
    assert rows[0].result == {"type": "succeeded", "body": {"n": 1}}
    # a done item is never claimed again
    claimed = await batches.claim("w", limit=10, per_batch=10, lease_s=30, now=NOW)
    assert [c.custom_id for c in claimed] == ["c1", "c2"]
    await batches.complete("batch_1", [("c1", {"type": "errored"}), ("c2", {"type": "succeeded"})])
    assert [b.id for b in await batches.due(NOW)] == ["batch_1"]
    await batches.finish("batch_1", "completed", NOW + 5)
    ended = await batches.get_batch("batch_1")
    assert ended is not None and ended.ended == NOW + 5 and ended.end_reason == "completed"
    assert (ended.counts.succeeded, ended.counts.errored, ended.counts.done) == (2, 1, 3)
    assert await batches.due(NOW) == []


async def test_cancel_and_expiry_end_the_open_items(batches: Batches) -> None:
    await batches.create_batch(*_batch())
    await batches.create_batch(*_batch(2, expires=NOW + 10))
    await batches.complete("batch_1", [("c0", {"type": "succeeded"})])
    await batches.cancel("batch_1", NOW + 1)
    assert [b.id for b in await batches.due(NOW + 2)] == ["batch_1"]
    assert [c.batch_id for c in await batches.claim("w", 10, 10, 30, NOW + 2)] == ["batch_2"] * 3
    await batches.finish("batch_1", "canceled", NOW + 2)
    one = await batches.get_batch("batch_1")
    assert one is not None and one.cancel_requested == NOW + 1
    assert (one.counts.succeeded, one.counts.canceled) == (1, 2)
    assert [b.id for b in await batches.due(NOW + 11)] == ["batch_2"]
    await batches.finish("batch_2", "expired", NOW + 11)
    await batches.complete("batch_2", [("c0", {"type": "succeeded"})])  # a late reply is dropped
    two = await batches.get_batch("batch_2")
    assert two is not None and (two.counts.expired, two.counts.succeeded) == (3, 0)
    assert {r.result["type"] for r in await batches.items("batch_2") if r.result} == {"expired"}


async def test_lists_are_per_owner_newest_first_and_paged(batches: Batches) -> None:
    for n in range(1, 4):
        await batches.create_batch(*_batch(n, total=1))
    await batches.create_batch(*_batch(9, total=1, owner="key_b"))
    assert [b.id for b in await batches.list_batches("key_a")] == ["batch_3", "batch_2", "batch_1"]
    assert [b.id for b in await batches.list_batches("key_a", limit=1, after="batch_3")] == [
        "batch_2"
    ]
    assert len(await batches.list_batches(None)) == 4


async def test_lists_page_backwards_and_by_format(batches: Batches) -> None:
    for n in range(1, 6):
        await batches.create_batch(*_batch(n, total=1, format="anthropic" if n == 4 else "openai"))
    ids = [b.id for b in await batches.list_batches("key_a", limit=2, before="batch_1")]
    assert ids == ["batch_3", "batch_2"]  # the two just newer than the cursor, newest first
    assert await batches.list_batches("key_a", before="batch_5") == []
    mine = await batches.list_batches("key_a", fmt="openai", after="batch_5")
    assert [b.id for b in mine] == ["batch_3", "batch_2", "batch_1"]


async def test_retention_purges_ended_batches_and_deletion(batches: Batches) -> None:
    await batches.create_batch(*_batch(1, total=1))
    await batches.create_batch(*_batch(2, total=1))
    await batches.finish("batch_1", "canceled", NOW)
    assert await batches.purge(ended_before=NOW + 1) == 1
    assert await batches.get_batch("batch_1") is None and await batches.items("batch_1") == []
    await batches.delete_batch("batch_2")
    assert await batches.get_batch("batch_2") is None


async def test_files_round_trip(batches: Batches) -> None:
    record = FileRecord("file-1", "key_a", "in.jsonl", "batch", 5, NOW)
    await batches.put_file(record, b"hello")
    assert await batches.get_file("file-1") == record
    assert await batches.file_content("file-1") == b"hello"
    assert await batches.list_files("key_a", purpose="batch") == [record]
    assert await batches.list_files("key_b") == []
    assert await batches.delete_file("file-1") is True
    assert await batches.delete_file("file-1") is False
    assert await batches.get_file("file-1") is None


async def test_concurrent_claims_never_share_an_item(batches: Batches) -> None:
    await batches.create_batch(*_batch(total=60))
    seen: list[str] = []

    async def worker(name: str) -> None:
        for _ in range(20):
            seen.extend(c.custom_id for c in await batches.claim(name, 4, 100, 30, NOW))

    async with anyio.create_task_group() as tg:
        for w in range(4):
            tg.start_soon(worker, f"w{w}")
    assert sorted(seen) == sorted(f"c{i}" for i in range(60))


def test_batches_need_an_sql_store() -> None:
    with pytest.raises(TypeError, match="SQL store"):
        batches_of(object())
    assert Counts(total=9, succeeded=2, errored=1, canceled=3, expired=1).done == 7


async def test_deleting_result_files_scrubs_their_results(batches: Batches) -> None:
    await batches.create_batch(*_batch(total=3))
    ok = {"type": "succeeded", "status": 200, "body": {"secret": 1}}
    bad = {"type": "errored", "status": 400, "message": "no"}
    await batches.complete("batch_1", [("c0", ok), ("c1", ok), ("c2", bad)])
    await batches.finish("batch_1", "completed", NOW + 1)
    assert await batches.delete_results("batch_1", "batch_1-output", errors=False, now=NOW + 2)
    assert not await batches.delete_results("batch_1", "batch_1-output", errors=False, now=NOW)
    assert await batches.deleted_results("batch_1") == {"batch_1-output"}
    results = {r.custom_id: r.result for r in await batches.items("batch_1")}
    assert results == {"c0": {"type": "succeeded"}, "c1": {"type": "succeeded"}, "c2": bad}
    ended = await batches.get_batch("batch_1")
    assert ended is not None and (ended.counts.succeeded, ended.counts.errored) == (2, 1)
    await batches.delete_batch("batch_1")
    assert await batches.deleted_results("batch_1") == frozenset()


# -- native batches (batch/native.py) -------------------------------------------------------------


async def test_a_native_batch_is_never_leased_as_local_work(batches: Batches) -> None:
    await batches.create_batch(*_batch(1, mode="native", backend="oai"))
    await batches.create_batch(*_batch(2))
    claimed = await batches.claim("w1", limit=10, per_batch=10, lease_s=30, now=NOW)
    assert {c.batch_id for c in claimed} == {"batch_2"}
    record = await batches.get_batch("batch_1")
    assert record is not None and record.mode == "native" and record.backend == "oai"
    await batches.cancel("batch_1", NOW)
    assert [r.id for r in await batches.due(NOW + 7200)] == ["batch_2"]  # its runner ends it
    assert [(c, line) for c, line, _ in await batches.native_items("batch_1")] == [
        ("c0", 1),
        ("c1", 2),
        ("c2", 3),
    ]


async def test_native_batches_are_leased_and_saved_by_one_worker(batches: Batches) -> None:
    await batches.create_batch(*_batch(1, mode="native", backend="oai"))
    await batches.create_batch(*_batch(2))
    [native] = await batches.claim_native("w1", 8, lease_s=30, now=NOW)
    assert (native.batch_id, native.backend, native.state) == ("batch_1", "oai", "new")
    assert await batches.claim_native("w2", 8, lease_s=30, now=NOW + 1) == []
    intent = replace(native, state="intent", intent=NOW, upstream_file_id="file-1")
    assert await batches.save_native(intent, "w2", next_poll=NOW, lease_s=30, now=NOW) is False
    assert await batches.save_native(intent, "w1", next_poll=NOW + 5, lease_s=30, now=NOW)
    await batches.release_native("w1", ["batch_1"])
    assert await batches.claim_native("w2", 8, lease_s=30, now=NOW + 1) == []  # not due yet
    [again] = await batches.claim_native("w2", 8, lease_s=30, now=NOW + 5)
    assert again == intent
    ended = replace(again, state="ended")
    assert await batches.save_native(ended, "w2", next_poll=NOW, lease_s=30, now=NOW + 5)
    await batches.release_native("w2", ["batch_1"])
    assert await batches.claim_native("w3", 8, lease_s=30, now=NOW + 99) == []
    await batches.delete_batch("batch_1")
    assert await batches.get_batch("batch_1") is None


async def test_complete_returns_the_items_it_ended(batches: Batches) -> None:
    await batches.create_batch(*_batch())
    ok = {"type": "succeeded", "status": 200}
    assert await batches.complete("batch_1", [("c0", ok), ("c1", ok)]) == ["c0", "c1"]
    assert await batches.complete("batch_1", [("c1", ok), ("c2", ok)]) == ["c2"]
    assert await batches.complete("batch_1", []) == []
