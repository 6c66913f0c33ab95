"""The engine: filters and limits, bounded concurrency, paced starts, comparisons per result."""

from __future__ import annotations

import asyncio

import pytest

from anyllm_cli.errors import InvalidInput
from anyllm_cli.replay.cassette import Exchange
from anyllm_cli.replay.client import Sent
from anyllm_cli.replay.engine import Result, parse_filter, replay, select


def ex(n: int, **kw: object) -> Exchange:
    values: dict[str, object] = {"api": "chat", "body": {"n": n}, "model": "gpt-4o", "id": f"r{n}"}
    values.update(kw)
    return Exchange(**values)  # type: ignore[arg-type]


def reply(text: str, stop: str = "stop") -> dict[str, object]:
    return {"choices": [{"message": {"content": text}, "finish_reason": stop}]}


class FakeSender:
    def __init__(self, name: str = "fake", text: str = "ok", delay: float = 0.0) -> None:
        self.name = name
        self.text = text
        self.delay = delay
        self.in_flight = 0
        self.peak = 0
        self.seen: list[int] = []

    async def send(self, exchange: Exchange) -> Sent:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(self.delay)
        self.in_flight -= 1
        self.seen.append(exchange.body["n"])
        if exchange.body["n"] == 3:
            return Sent(500, None, "api_error", "boom", 0.01)
        return Sent(200, reply(self.text), None, "", 0.01)


def test_filters() -> None:
    items = [ex(0), ex(1, model="claude-x", stream=True), ex(2, api="messages", status=429)]
    assert [e.id for e in select(items, ["model=claude*"], None)] == ["r1"]
    assert [e.id for e in select(items, ["api!=chat"], None)] == ["r2"]
    assert [e.id for e in select(items, ["stream=true"], None)] == ["r1"]
    assert [e.id for e in select(items, ["status=4*"], None)] == ["r2"]
    assert [e.id for e in select(items, [], 2)] == ["r0", "r1"]
    for bad in ("nonsense", "colour=red"):
        with pytest.raises(InvalidInput, match="FIELD=GLOB"):
            parse_filter(bad)


@pytest.mark.anyio
async def test_concurrency_is_bounded_and_every_exchange_sent_once() -> None:
    sender = FakeSender(delay=0.01)
    results: list[Result] = []
    sent = await replay([ex(n) for n in range(20)], sender, results.append, concurrency=4)
    assert sent == 20 and sorted(sender.seen) == list(range(20))
    assert sender.peak == 4
    assert sorted(r.index for r in results) == list(range(20))


@pytest.mark.anyio
async def test_rate_paces_the_starts() -> None:
    now = [0.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(round(seconds, 6))
        now[0] += seconds

    await replay(
        [ex(n) for n in range(4)],
        FakeSender(),
        lambda r: None,
        concurrency=1,
        rate=2.0,
        clock=lambda: now[0],
        sleep=sleep,
    )
    assert waits == [0.5, 0.5, 0.5]


@pytest.mark.anyio
async def test_a_second_sender_or_the_recording_is_compared() -> None:
    results: list[Result] = []
    await replay(
        [ex(0), ex(3)],
        FakeSender(),
        results.append,
        other=FakeSender("b", "different"),
        concurrency=1,
    )
    first, failed = sorted(results, key=lambda r: r.index)
    assert first.other is not None and first.diff is not None and first.diff.similarity == 0.0
    assert failed.diff is None  # a failed call is counted, not compared
    results.clear()
    await replay(
        [ex(0, response=reply("ok", "length"))], FakeSender(), results.append, against_recorded=True
    )
    assert results[0].diff is not None and results[0].diff.stop == ("length", "end")


@pytest.mark.anyio
async def test_bad_settings_are_refused() -> None:
    with pytest.raises(InvalidInput, match="concurrency"):
        await replay([], FakeSender(), lambda r: None, concurrency=0)
    with pytest.raises(InvalidInput, match="rate"):
        await replay([], FakeSender(), lambda r: None, rate=0)
