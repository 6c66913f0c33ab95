from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from anyllm_cli.backends.base import StreamContext, UpstreamStream
from anyllm_cli.batch.engine import Engine, EngineSettings
from anyllm_cli.errors import CredentialsRefused, ErrorKind, InvalidInput, Refused, UpstreamError
from anyllm_cli.pipeline import Pipeline
from anyllm_cli.pipeline.seams import ClientRequest
from anyllm_cli.stores import open_store
from anyllm_cli.stores.batches import Batches, BatchRecord, NewItem, batches_of
from tests.conftest import FakeBackend, FakeStream, Recorder, backend_settings

pytestmark = pytest.mark.anyio
FAST = EngineSettings(
    concurrency=8, per_batch=8, lease_s=3.0, poll_s=0.02, flush_s=0.01, backoff_s=0.001
)


@dataclass
class Reply:
    body: dict[str, Any]


class Runner:
    def __init__(self, fail: dict[str, list[Exception]] | None = None, hang: bool = False) -> None:
        self.fail = fail or {}
        self.hang = hang
        self.seen: list[ClientRequest] = []

    async def run(self, request: ClientRequest) -> Reply:
        self.seen.append(request)
        cid = request.request_id.split(":", 1)[1]
        if self.hang:
            await anyio.sleep_forever()
        errors = self.fail.get(cid)
        if errors:
            raise errors.pop(0)
        return Reply({"echo": json.loads(request.body)["i"]})


@pytest.fixture
async def batches(tmp_path: Path) -> AsyncIterator[Batches]:
    store = await open_store(f"sqlite://{tmp_path / 'b.db'}")
    try:
        yield batches_of(store)
    finally:
        await store.close()


async def _create(batches: Batches, n: int, *, bid: str = "batch_1", expires: float = 3600) -> None:
    now = time.time()
    record = BatchRecord(
        id=bid,
        owner="key_a",
        owner_kind="virtual",
        format="openai",
        api="chat",
        endpoint="/v1/chat/completions",
        created=now,
        expires=now + expires,
        backend="mock",
    )
    items = [NewItem(f"c{i}", json.dumps({"i": i}).encode(), i + 1) for i in range(n)]
    await batches.create_batch(record, items)


async def _results(batches: Batches, bid: str = "batch_1") -> dict[str, dict[str, Any]]:
    return {r.custom_id: dict(r.result or {}) for r in await batches.items(bid)}


async def test_every_item_runs_as_its_owner_and_gets_one_result(batches: Batches) -> None:
    await _create(batches, 20)
    runner = Runner(
        fail={
            "c1": [UpstreamError(ErrorKind.RATE_LIMIT, "slow", status=429, retry_after=0.001)] * 2,
            "c2": [UpstreamError(ErrorKind.OVERLOADED, "busy", status=529)] * 9,
            "c3": [InvalidInput("bad body", "messages")],
            "c4": [Refused(ErrorKind.RATE_LIMIT, "budget used up")],
            "c5": [Refused(ErrorKind.RATE_LIMIT, "budget used up", retry_after=86400)],
            "c6": [Refused(ErrorKind.RATE_LIMIT, "rpm", retry_after=0.001)],
            "c7": [UpstreamError(ErrorKind.BAD_GATEWAY, "backend mock could not be reached")] * 2,
            "c8": [CredentialsRefused("backend mock refused the proxy's upstream credentials")],
        }
    )
    with anyio.fail_after(20):
        await Engine(batches, runner, FAST).run(until="batch_1")
    results = await _results(batches)
    assert len(results) == 20
    assert results["c1"] == {"type": "succeeded", "status": 200, "body": {"echo": 1}}
    assert results["c2"]["type"] == "errored" and results["c2"]["status"] == 529
    assert results["c3"] == {
        "type": "errored",
        "status": 400,
        "error_kind": "invalid_request",
        "message": "messages: bad body",
    }
    sent = [r.request_id for r in runner.seen]
    assert sent.count("batch_1:c1") == 3 and sent.count("batch_1:c2") == FAST.max_attempts
    assert sent.count("batch_1:c3") == 1
    assert sent.count("batch_1:c4") == sent.count("batch_1:c5") == 1  # a spent budget is final
    assert results["c4"]["status"] == 429 and results["c5"]["message"] == "budget used up"
    assert sent.count("batch_1:c6") == 2 and results["c6"]["type"] == "succeeded"
    assert sent.count("batch_1:c7") == 3 and results["c7"]["type"] == "succeeded"  # it came back
    assert sent.count("batch_1:c8") == 1 and results["c8"]["status"] == 502  # no retry mends it
    first = runner.seen[0]
    assert (first.api, first.stream, first.backend, first.priority) == (
        "chat",
        False,
        "mock",
        "batch",
    )
    assert (first.principal.id, first.principal.kind) == ("key_a", "virtual")
    record = await batches.get_batch("batch_1")
    assert record is not None and record.end_reason == "completed"
    assert (record.counts.succeeded, record.counts.errored) == (15, 5)


async def test_cancel_abandons_items_in_flight(batches: Batches) -> None:
    await _create(batches, 5)
    runner = Runner(hang=True)
    engine = Engine(batches, runner, FAST)
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: engine.run(until="batch_1"))
            while len(runner.seen) < 5:
                await anyio.sleep(0.01)
            await batches.cancel("batch_1", time.time())
            engine.wake()
    record = await batches.get_batch("batch_1")
    assert record is not None and record.end_reason == "canceled"
    assert record.counts.canceled == 5
    assert {r["type"] for r in (await _results(batches)).values()} == {"canceled"}


async def test_a_batch_past_its_window_expires(batches: Batches) -> None:
    await _create(batches, 3, expires=0.3)
    with anyio.fail_after(20):
        await Engine(batches, Runner(hang=True), FAST).run(until="batch_1")
    record = await batches.get_batch("batch_1")
    assert record is not None and record.end_reason == "expired" and record.counts.expired == 3


async def test_a_dead_workers_items_are_rerun_after_its_lease(batches: Batches) -> None:
    await _create(batches, 4)
    # a worker that claimed two items and died (no release, no result)
    dead = await batches.claim("dead", 2, 10, lease_s=0.3, now=time.time())
    assert len(dead) == 2
    runner = Runner()
    with anyio.fail_after(20):
        await Engine(batches, runner, FAST).run(until="batch_1")
    results = await _results(batches)
    assert {k: v["type"] for k, v in results.items()} == dict.fromkeys(
        ["c0", "c1", "c2", "c3"], "succeeded"
    )
    assert sorted(r.request_id for r in runner.seen) == [f"batch_1:c{i}" for i in range(4)]


async def test_stopping_hands_leases_back(batches: Batches) -> None:
    await _create(batches, 3)
    runner = Runner(hang=True)
    with anyio.move_on_after(0.5):
        await Engine(batches, runner, FAST).run(until="batch_1")
    assert len(runner.seen) == 3
    again = await batches.claim("other", 10, 10, lease_s=10, now=time.time())
    assert len(again) == 3 and {c.attempts for c in again} == {1}


async def test_the_engine_is_bounded_by_its_concurrency(batches: Batches) -> None:
    await _create(batches, 40)
    peak = 0
    running = 0

    class Slow(Runner):
        async def run(self, request: ClientRequest) -> Reply:
            nonlocal peak, running
            running += 1
            peak = max(peak, running)
            await anyio.sleep(0.01)
            running -= 1
            return await super().run(request)

    with anyio.fail_after(20):
        await Engine(
            batches, Slow(), EngineSettings(concurrency=4, per_batch=8, poll_s=0.02, flush_s=0.01)
        ).run(until="batch_1")
    assert peak == 4
    assert len(await _results(batches)) == 40


@pytest.mark.slow
async def test_a_thousand_items_under_an_upstream_rate_limit_all_succeed(batches: Batches) -> None:
    """The upstream serves at most LIMIT requests per WINDOW_S and refuses the rest with 429 and a
    retry-after; the engine backs off and every item ends up served, inside the limit."""
    limit, window = 250, 0.5
    served: list[float] = []
    refused = 0

    class Limited(Runner):
        async def run(self, request: ClientRequest) -> Reply:
            now = time.monotonic()
            recent = [t for t in served[-limit:] if now - t < window]
            if len(recent) >= limit:
                nonlocal refused
                refused += 1
                wait = window - (now - recent[0])
                raise UpstreamError(ErrorKind.RATE_LIMIT, "slow down", status=429, retry_after=wait)
            served.append(now)
            return await super().run(request)

    await _create(batches, 1000)
    settings = EngineSettings(
        concurrency=64, per_batch=64, poll_s=0.02, flush_s=0.02, backoff_s=0.05, backoff_max_s=1.0
    )
    with anyio.fail_after(60):
        await Engine(batches, Limited(), settings).run(until="batch_1")
    results = await _results(batches)
    assert len(results) == 1000 and {r["type"] for r in results.values()} == {"succeeded"}
    assert len(served) == 1000 and refused > 0  # the limit was hit, and waited out


async def test_two_instances_share_one_postgres_queue(pg_schema: str) -> None:
    """Two engines, each with its own PostgreSQL connections (two proxy instances): every item runs
    once, and both take part. Items hold their slot until both engines have run one, so the first
    engine to start cannot finish the batch alone (its concurrency, 8, is far below 200, and the
    batch's share over all engines, 16, leaves the other engine room to claim)."""
    stores = [await open_store(pg_schema), await open_store(pg_schema)]
    both = anyio.Event()

    class Gated(Runner):
        async def run(self, request: ClientRequest) -> Reply:
            reply = await super().run(request)
            if all(r.seen for r in runners):
                both.set()
            await both.wait()
            return reply

    try:
        shared = [batches_of(s) for s in stores]
        await _create(shared[0], 200)
        runners = [Gated(), Gated()]
        settings = dataclasses.replace(FAST, per_batch=2 * FAST.concurrency)
        engines = [Engine(b, r, settings) for b, r in zip(shared, runners, strict=True)]
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for engine in engines:
                    tg.start_soon(lambda e=engine: e.run(until="batch_1"))
        sent = [r.request_id for runner in runners for r in runner.seen]
        assert sorted(sent) == sorted(f"batch_1:c{i}" for i in range(200))
        assert all(runner.seen for runner in runners)
        assert len(await _results(shared[1])) == 200
    finally:
        for s in stores:
            await s.close()


async def test_a_store_that_fails_for_a_moment_does_not_stop_the_engine(
    batches: Batches, monkeypatch: pytest.MonkeyPatch
) -> None:
    from anyllm_cli.batch import engine as engine_module
    from anyllm_cli.errors import StoreError

    monkeypatch.setattr(engine_module, "STORE_RETRY_S", 0.01)
    await _create(batches, 10)
    failures = {"claim": 1, "complete": 1}

    class Flaky:
        def __getattr__(self, name: str) -> Any:
            real = getattr(batches, name)

            async def call(*args: Any, **kw: Any) -> Any:
                if failures.get(name):
                    failures[name] -= 1
                    raise StoreError("database is locked")
                return await real(*args, **kw)

            return call

    with anyio.fail_after(20):
        await Engine(Flaky(), Runner(), FAST).run(until="batch_1")  # type: ignore[arg-type]
    assert failures == {"claim": 0, "complete": 0}
    results = await _results(batches)
    assert len(results) == 10 and {r["type"] for r in results.values()} == {"succeeded"}


class _Passthrough(FakeBackend):
    """Answers each forward with the next (status, body) of `answers`, then 200 and usage."""

    def __init__(self, answers: list[tuple[int, dict[str, Any]]]) -> None:
        super().__init__(backend_settings())
        self.answers = answers
        self.forwarded: list[tuple[str, bytes]] = []

    def forward(
        self, method: str, path: str, content: bytes, headers: Mapping[str, str]
    ) -> StreamContext:
        self.forwarded.append((path, content))
        status, body = self.answers.pop(0) if self.answers else (200, _EMBEDDED)
        return StreamContext(self._answer(status, body))

    @asynccontextmanager
    async def _answer(self, status: int, body: dict[str, Any]) -> AsyncIterator[UpstreamStream]:
        data = json.dumps(body).encode()
        yield FakeStream([data[:7], data[7:]], status, {"content-type": "application/json"})


_EMBEDDED = {"object": "list", "data": [], "usage": {"prompt_tokens": 4, "total_tokens": 4}}


async def test_passthrough_items_are_read_whole_retried_and_metered(batches: Batches) -> None:
    now = time.time()
    record = BatchRecord(
        id="batch_e",
        owner="key_a",
        owner_kind="virtual",
        format="openai",
        api="forward",
        endpoint="/v1/embeddings",
        created=now,
        expires=now + 60,
    )
    body = {"model": "emb", "input": "x"}
    items = [
        NewItem(c, json.dumps({**body, "input": c}).encode(), n) for n, c in enumerate("ab", 1)
    ]
    await batches.create_batch(record, items)
    gone = {"error": {"message": "no such model", "type": "invalid_request_error"}}
    backend = _Passthrough([(503, {"error": {"message": "busy"}}), (404, gone)])
    recorder = Recorder()
    pipeline = Pipeline({"mock": backend}, guard=recorder, observers=[recorder])
    with anyio.fail_after(20):
        await Engine(batches, pipeline, FAST).run(until="batch_e")
    results = await _results(batches, "batch_e")
    assert {r["type"] for r in results.values()} == {"succeeded", "errored"}
    errored = next(r for r in results.values() if r["type"] == "errored")
    assert errored["status"] == 404 and errored["body"] == gone  # the upstream's own body
    assert next(r for r in results.values() if r["type"] == "succeeded")["body"] == _EMBEDDED
    assert [path for path, _ in backend.forwarded] == ["/embeddings"] * 3  # 503 retried once
    settled = [outcome for _, outcome in recorder.settled]
    assert sorted(o.status for o in settled) == [200, 404, 503]
    ok = next(o for o in settled if o.status == 200)
    assert ok.usage.input_tokens == 4 and ok.request.route == "/v1/embeddings"
