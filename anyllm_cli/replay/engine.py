"""Drives the senders: N workers pull exchanges, keep to a rate, compare, hand each result on.

    exchanges ──filter, limit──> workers (concurrency N, start times paced at R/s) ──> Result
                                   └─ with a second sender: both at once, then `compare`

Exchanges are read lazily (a 10 GB recording is never loaded whole). `--rate R` schedules request
i at start + i/R, so the rate holds whatever the latency; `--concurrency N` bounds how many are in
flight. Each `Result` goes to `on_result` as soon as it is known (results file, progress, summary).

`--filter` expressions, all of which must hold: `FIELD=GLOB` or `FIELD!=GLOB` (shell-style globs,
`fnmatch`), FIELD one of api, model, backend, stream (true/false), status, error, id.
"""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from anyllm_cli.errors import InvalidInput
from anyllm_cli.replay.cassette import Exchange
from anyllm_cli.replay.client import Sender, Sent
from anyllm_cli.replay.compare import Diff, answer, compare

FIELDS = ("api", "model", "backend", "stream", "status", "error", "id")
Predicate = Callable[[Exchange], bool]


@dataclass(frozen=True, slots=True)
class Result:
    index: int
    exchange: Exchange
    sent: Sent
    other: Sent | None = None  # the second backend's reply (`--compare BACKEND`)
    diff: Diff | None = None


def _value(exchange: Exchange, name: str) -> str:
    value: Any = getattr(exchange, name)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def parse_filter(expression: str) -> Predicate:
    """One `FIELD=GLOB` / `FIELD!=GLOB` expression as a predicate; InvalidInput when malformed."""
    negate = "!=" in expression
    name, sep, pattern = expression.partition("!=" if negate else "=")
    name = name.strip()
    if not sep or name not in FIELDS:
        raise InvalidInput(
            f"--filter {expression!r}: expected FIELD=GLOB or FIELD!=GLOB, "
            f"FIELD one of {', '.join(FIELDS)}"
        )

    def matches(exchange: Exchange) -> bool:
        return fnmatch.fnmatchcase(_value(exchange, name), pattern.strip()) != negate

    return matches


def select(
    exchanges: Iterable[Exchange], filters: Iterable[str], limit: int | None
) -> Iterator[Exchange]:
    predicates = [parse_filter(f) for f in filters]
    chosen = (e for e in exchanges if all(p(e) for p in predicates))
    return islice(chosen, limit) if limit is not None else iter(chosen)


async def replay(
    exchanges: Iterable[Exchange],
    sender: Sender,
    on_result: Callable[[Result], None],
    *,
    other: Sender | None = None,
    against_recorded: bool = False,
    concurrency: int = 8,
    rate: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> int:
    """Send every exchange; returns how many were sent."""
    if concurrency < 1:
        raise InvalidInput("--concurrency must be at least 1")
    if rate is not None and rate <= 0:
        raise InvalidInput("--rate must be above 0")
    source = iter(exchanges)
    counter = iter(range(1 << 62))
    start = clock()

    async def one(index: int, exchange: Exchange) -> Result:
        if other is None:
            sent = await sender.send(exchange)
            second = None
        else:
            sent, second = await asyncio.gather(sender.send(exchange), other.send(exchange))
        diff = None
        if second is not None and sent.ok and second.ok:
            diff = compare(answer(sent.response), answer(second.response))
        elif against_recorded and exchange.response is not None and sent.ok:
            diff = compare(answer(exchange.response), answer(sent.response))
        return Result(index, exchange, sent, second, diff)

    async def worker() -> None:
        for exchange in source:  # shared: each worker takes the next exchange
            index = next(counter)
            if rate is not None:
                wait = start + index / rate - clock()
                if wait > 0:
                    await sleep(wait)
            on_result(await one(index, exchange))

    # gather, not a TaskGroup: the first error (a bad line in the file) surfaces as itself
    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return next(counter)
