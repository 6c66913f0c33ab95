"""One `anyllm replay` run, from a plan to a summary: open the senders, replay, write, add up.

    Plan ──read (cassette)──> select (filter, limit, --model) ──engine.replay──> Result
                                                                   ├──> RESULTS.jsonl (one line each)
                                                                   ├──> progress callback
                                                                   └──> Summary ──> dict (--json)

The senders are opened here and closed at the end: `--url` gets an `HTTPSender` on the shared
httpx client; `--backend` (or no target) a `PipelineSender` over the backends built from the same
`Settings` as `serve`; `--compare BACKEND` (a configured name, or a URL) a second sender;
`--compare recorded` compares with the recorded replies. The composition root is the CLI command,
which loads the settings and the key; this module reads no environment.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from anyllm_cli.backends import Backend, build_backend, build_client
from anyllm_cli.config import Settings
from anyllm_cli.errors import ConfigError, InvalidInput
from anyllm_cli.keys.pricing import PriceTable
from anyllm_cli.pipeline import Pipeline
from anyllm_cli.replay.cassette import Skipped, read
from anyllm_cli.replay.client import HTTPSender, Outcomes, PipelineSender, Sender
from anyllm_cli.replay.engine import Result, replay, select
from anyllm_cli.replay.report import Summary, result_line
from anyllm_cli.routing import StaticRouter

RECORDED = "recorded"


@dataclass(frozen=True, slots=True)
class Plan:
    file: Path
    backend: str | None = None
    url: str | None = None
    api_key: str | None = None
    model: str | None = None
    concurrency: int = 8
    rate: float | None = None
    limit: int | None = None
    filters: tuple[str, ...] = ()
    compare: str | None = None
    max_error_rate: float = 0.05
    fail_on_change: bool = False
    api: str | None = None
    output: Path | None = None
    timeout_s: float = 600.0
    settings: Settings | None = field(default=None, repr=False)


def needs_settings(plan: Plan) -> bool:
    """Whether the run builds backends in-process (so the CLI must load the settings)."""
    in_process_compare = plan.compare not in (None, RECORDED) and not _is_url(plan.compare)
    return plan.url is None or in_process_compare


def _is_url(target: str | None) -> bool:
    return bool(target) and str(target).startswith(("http://", "https://"))


@asynccontextmanager
async def _pipeline(
    settings: Settings, stack: AsyncExitStack, outcomes: Outcomes
) -> AsyncIterator[Pipeline]:
    client = build_client()
    stack.push_async_callback(client.aclose)
    backends: dict[str, Backend] = {}
    for name, backend_settings in settings.backends.items():
        backend = build_backend(backend_settings, client)
        stack.push_async_callback(backend.aclose)
        backends[name] = backend
    router = StaticRouter(settings.backends, settings.default_backend)
    pricer = PriceTable.for_settings(settings)
    yield Pipeline(backends, router=router, observers=[outcomes], pricer=pricer)


class _Senders:
    def __init__(self, plan: Plan, stack: AsyncExitStack) -> None:
        self.plan = plan
        self.stack = stack
        self._pipeline: Pipeline | None = None
        self._outcomes = Outcomes()
        self._client: Any = None

    async def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            if self.plan.settings is None:
                raise ConfigError("in-process replay needs settings")
            self._pipeline = await self.stack.enter_async_context(
                _pipeline(self.plan.settings, self.stack, self._outcomes)
            )
        return self._pipeline

    async def open(self, target: str | None, *, url: bool) -> Sender:
        if url:
            if self._client is None:
                self._client = build_client()
                self.stack.push_async_callback(self._client.aclose)
            return HTTPSender(
                str(target), self._client, api_key=self.plan.api_key, timeout=self.plan.timeout_s
            )
        pipeline = await self.pipeline()
        settings = self.plan.settings
        assert settings is not None
        if target is not None and target not in settings.backends:
            known = ", ".join(settings.backends)
            raise ConfigError(f"no backend named {target!r} (configured: {known})")
        name = target or settings.default_backend
        return PipelineSender(pipeline, backend=target, name=name, outcomes=self._outcomes)


def _exchanges(plan: Plan, skipped: Skipped) -> Any:
    exchanges = read(plan.file, skipped, api=plan.api)
    chosen = select(exchanges, plan.filters, plan.limit)
    if plan.model:
        return (e.with_model(plan.model) for e in chosen)
    return chosen


async def run(plan: Plan, progress: Callable[[Result], None] | None = None) -> dict[str, Any]:
    """Replay the plan's file; the summary dict (see report.py). Raises InvalidInput, ConfigError."""
    if plan.url is not None and plan.backend is not None:
        raise InvalidInput("--backend and --url are exclusive: replay to one target")
    compare_with = plan.compare
    skipped = Skipped()
    exchanges = _exchanges(plan, skipped)
    async with AsyncExitStack() as stack:
        senders = _Senders(plan, stack)
        sender = await senders.open(plan.url or plan.backend, url=plan.url is not None)
        other = None
        if compare_with not in (None, RECORDED):
            other = await senders.open(compare_with, url=_is_url(compare_with))
        summary = Summary(sender.name, compare_with, plan.max_error_rate, plan.fail_on_change)
        out: IO[str] | None = None
        if plan.output is not None:
            out = stack.enter_context(plan.output.open("w", encoding="utf-8"))

        def on_result(result: Result) -> None:
            summary.add(result)
            if out is not None:
                out.write(json.dumps(result_line(result), ensure_ascii=False) + "\n")
            if progress is not None:
                progress(result)

        start = time.monotonic()
        await replay(
            exchanges,
            sender,
            on_result,
            other=other,
            against_recorded=compare_with == RECORDED,
            concurrency=plan.concurrency,
            rate=plan.rate,
        )
        summary.elapsed_s = time.monotonic() - start
    summary.skipped = dict(skipped.reasons)
    return summary.to_json()


def count_lines(path: Path) -> int:
    """Non-empty lines of a JSONL file or directory (a progress bar's total; 0 when unknown)."""
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if any(f.suffix == ".har" for f in files):
        return 0
    total = 0
    for file in files:
        with file.open("rb") as f:
            while chunk := f.read(1 << 20):
                total += chunk.count(b"\n")
    return total
