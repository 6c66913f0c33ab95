from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from anyllm_cli.batch import jobs
from anyllm_cli.batch.job import ItemResult, load
from anyllm_cli.errors import ErrorKind
from anyllm_cli.pipeline.seams import Principal
from anyllm_cli.stores import open_store
from anyllm_cli.stores.batches import Batches, batches_of

pytestmark = pytest.mark.anyio
OWNER = Principal("key_a", kind="virtual")
A = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}
OAI = {"model": "m", "messages": [{"role": "user", "content": "x"}]}


@pytest.fixture
async def batches(tmp_path: Path) -> AsyncIterator[Batches]:
    store = await open_store(f"sqlite://{tmp_path / 'b.db'}")
    try:
        yield batches_of(store)
    finally:
        await store.close()


def _anthropic(n: int) -> bytes:
    return b"\n".join(json.dumps({"custom_id": f"c{i}", "params": A}).encode() for i in range(n))


def _openai(n: int) -> bytes:
    rows = [
        {"custom_id": f"c{i}", "method": "POST", "url": "/v1/chat/completions", "body": OAI}
        for i in range(n)
    ]
    return b"\n".join(json.dumps(r).encode() for r in rows)


async def test_create_persists_every_item_as_its_owner(batches: Batches) -> None:
    record = await jobs.create(
        batches, load(_anthropic(3)), OWNER, backend="b", window="2h", clock=lambda: 100.0
    )
    assert record.id.startswith("msgbatch_") and record.expires == 100.0 + 7200
    assert (record.owner, record.owner_kind, record.backend, record.counts.total) == (
        "key_a",
        "virtual",
        "b",
        3,
    )
    assert [r.custom_id for r in await batches.items(record.id)] == ["c0", "c1", "c2"]


async def test_results_render_in_input_order_per_format(
    batches: Batches, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "PAGE", 2)
    a = await jobs.create(batches, load(_anthropic(5)), OWNER)
    done = [(f"c{i}", ItemResult("succeeded", body={"n": i}).to_json()) for i in (4, 0, 2)]
    await batches.complete(a.id, done)
    lines = [line async for line in jobs.result_lines(batches, a)]
    assert [(x["custom_id"], x["result"]["message"]) for x in lines] == [
        ("c0", {"n": 0}),
        ("c2", {"n": 2}),
        ("c4", {"n": 4}),
    ]

    o = await jobs.create(batches, load(_openai(3)), OWNER)
    assert o.id.startswith("batch_")
    await batches.complete(o.id, [("c0", ItemResult("succeeded", body={}).to_json())])
    await batches.complete(
        o.id,
        [("c1", ItemResult("errored", 500, error_kind=ErrorKind.API_ERROR, message="x").to_json())],
    )
    await batches.finish(o.id, "expired", 1.0)
    out = [x["custom_id"] async for x in jobs.result_lines(batches, o, errors=False)]
    err = [x["custom_id"] async for x in jobs.result_lines(batches, o, errors=True)]
    assert (out, err) == (["c0"], ["c1", "c2"])
    raw = b"".join([chunk async for chunk in jobs.result_bytes(batches, o)])
    assert raw.count(b"\n") == 3


def test_run_ids_are_stable_per_file_backend_and_owner() -> None:
    one = jobs.run_id(b"x", "b", "o", "openai")
    assert one == jobs.run_id(b"x", "b", "o", "openai") and one.startswith("batch_run_")
    assert one != jobs.run_id(b"y", "b", "o", "openai") != jobs.run_id(b"x", "c", "o", "openai")
