"""The batch engine: claims items under leases, runs each through the pipeline, records one result.

    claimer ──store.claim(free slots)──> item tasks ──Runner.run(ClientRequest, stream=False)──>
        reply (a passthrough's read whole) / error (429, 5xx, timeouts, an unreachable upstream
        retried with backoff; refused credentials are final)
        ──> result buffer
    flusher ──store.complete(batch, results gathered for flush_s)──> one result per custom_id
    renewer ──store.renew(leases of items in flight) every lease/3──>
    keeper  ──store.due() -> finish(completed | canceled | expired); purge past retention──>

Every item runs as its batch's owner (`Principal`), so key limits, allow-lists and spend apply as
for a live request. Crash safety comes from the store, not from here: results are written with
"first result wins", and an item whose worker died is claimed again once its lease expires. So
after `kill -9` every item still ends with exactly one result, but an item that was in flight (or
whose result was still in the buffer) is sent to the upstream again.

Cancel: the batch ends at once; items in flight are abandoned (their tasks are cancelled, and a
reply that still arrives is dropped), so every open item reads `canceled`. Expiry works the same
way with `expired`.

Live traffic goes first: every item enters the pipeline with `priority="batch"`, and the key guard
lets batch items use only part of their key's rpm, tpm and max-parallel (the rest, 10% and at
least one, is kept for live requests; see `keys/guard.py`). A batch that saturates its key is
refused by the guard at that lower line and backs off (its 429 carries the wait), so a live request
of the same key still finds room. Batch items never pass the server's concurrency gate either: that
is for HTTP callers alone.

What it gives up: the headroom is per key; callers without key limits (static keys, no auth) have
none, and a batch and live traffic then share the upstream's own rate limits, the batch backing off
on the upstream's 429s like any client. A key limited to 1 has no headroom to keep.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

import anyio

from anyllm_cli.backends._http import parse_retry_after
from anyllm_cli.batch.job import ItemResult
from anyllm_cli.config import BatchSettings
from anyllm_cli.errors import (
    AnyllmError,
    CredentialsRefused,
    ErrorKind,
    StoreError,
    UpstreamError,
    anthropic_error,
    parse_error_body,
)
from anyllm_cli.models import codec
from anyllm_cli.pipeline.replies import ForwardReply
from anyllm_cli.pipeline.seams import ClientAPI, ClientRequest, Principal, PrincipalKind
from anyllm_cli.stores.batches import BatchRecord, BatchStore, ClaimedItem, EndReason

log = logging.getLogger("anyllm.batch")

RETRYABLE = frozenset(
    {
        ErrorKind.RATE_LIMIT,
        ErrorKind.OVERLOADED,
        ErrorKind.UNAVAILABLE,
        ErrorKind.API_ERROR,
        ErrorKind.TIMEOUT,
        ErrorKind.BAD_GATEWAY,  # unreachable, a garbled reply, a 502; not refused credentials
    }
)
Key = tuple[str, str]  # (batch id, custom_id)
_HEADERS: dict[str, Mapping[str, str]] = {
    "messages": {"anthropic-version": "2023-06-01"},
    "forward": {"content-type": "application/json", "accept": "application/json"},
}
STORE_RETRY_S = 1.0


class Runner(Protocol):
    """What the engine needs of the pipeline: `Pipeline.run` satisfies it."""

    async def run(self, request: ClientRequest) -> Any: ...


@dataclass(frozen=True, slots=True)
class EngineSettings:
    concurrency: int = 64  # items in flight in this engine, over all batches
    per_batch: int = 64  # live leases per batch, over every engine sharing the store
    lease_s: float = 60.0
    poll_s: float = 0.25
    flush_s: float = 0.01  # results gathered this long after the first, then written at once
    max_attempts: int = 5  # sends of one item for 5xx / timeouts (per claim)
    max_rate_limited: int = 60  # sends of one item refused with 429 (per claim)
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    max_wait_s: float = 300.0  # a 429 asking to wait longer (a spent budget) ends the item
    retention_s: float = 29 * 86400.0

    @classmethod
    def of(cls, config: BatchSettings, **overrides: Any) -> EngineSettings:
        """From the `[batch]` table, with command-line overrides."""
        values: dict[str, Any] = {
            "concurrency": config.concurrency,
            "per_batch": config.per_batch,
            "lease_s": config.lease_seconds,
            "retention_s": config.retention_days * 86400.0,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


class Engine:
    def __init__(
        self,
        store: BatchStore,
        runner: Runner,
        settings: EngineSettings | None = None,
        *,
        worker: str | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.runner = runner
        self.settings = settings or EngineSettings()
        self.worker = worker or f"w_{uuid.uuid4().hex[:12]}"
        self._clock = clock
        self._sleep = sleep
        self._rand = rand
        self._records: dict[str, BatchRecord] = {}
        self._inflight: dict[Key, anyio.CancelScope] = {}
        self._held: set[Key] = set()  # claimed and not run to the end: released on shutdown
        self._results: list[tuple[str, str, dict[str, Any]]] = []
        self._wake = anyio.Event()
        self._slot_free = anyio.Event()
        self._has_results = anyio.Event()
        self._until: str | None = None
        self._stop = anyio.Event()

    def wake(self) -> None:
        """A batch was created or canceled: look for work now rather than at the next poll."""
        self._wake.set()

    async def run(self, *, until: str | None = None) -> None:
        """Work until cancelled; with `until`, run only that batch and return once it has ended."""
        self._until = until
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._survive, self._keeper)
                tg.start_soon(self._survive, self._flusher)
                tg.start_soon(self._survive, self._renewer)
                tg.start_soon(self._survive, lambda: self._claimer(tg))
                await self._stop.wait()
                tg.cancel_scope.cancel()
        finally:
            await self._give_back()

    async def _survive(self, loop: Callable[[], Awaitable[None]]) -> None:
        """Run one of the engine's loops; a store that is briefly away (a restarting PostgreSQL, a
        locked SQLite file) pauses it instead of ending the engine and the server with it."""
        while True:
            try:
                await loop()
                return
            except StoreError as exc:
                log.warning("batch engine: %s; retrying in %.0f s", exc, STORE_RETRY_S)
                await self._sleep(STORE_RETRY_S)

    # -- claiming and running ---------------------------------------------------------------------

    async def _claimer(self, tg: anyio.abc.TaskGroup) -> None:
        s = self.settings
        while True:
            free = s.concurrency - len(self._inflight)
            if free < max(1, s.concurrency // 8):  # claim in chunks, not one slot at a time
                self._slot_free = anyio.Event()
                with anyio.move_on_after(s.poll_s):
                    await self._slot_free.wait()
                continue
            claimed = await self.store.claim(
                self.worker, free, s.per_batch, s.lease_s, self._clock(), only=self._until
            )
            for item in claimed:
                scope = anyio.CancelScope()
                self._inflight[(item.batch_id, item.custom_id)] = scope
                self._held.add((item.batch_id, item.custom_id))
                tg.start_soon(self._run_item, item, scope)
            if len(claimed) < free:
                self._wake = anyio.Event()
                with anyio.move_on_after(s.poll_s):
                    await self._wake.wait()

    async def _run_item(self, item: ClaimedItem, scope: anyio.CancelScope) -> None:
        key = (item.batch_id, item.custom_id)
        try:
            with scope:
                record = await self._record(item.batch_id)
                if record is None:
                    return
                result = await self._attempts(record, item)
                self._results.append((item.batch_id, item.custom_id, result.to_json()))
                self._has_results.set()
            self._held.discard(key)  # ran to the end, or its batch ended (scope cancelled)
        finally:
            self._inflight.pop(key, None)
            self._slot_free.set()

    async def _record(self, batch_id: str) -> BatchRecord | None:
        record = self._records.get(batch_id)
        if record is None:
            record = await self.store.get_batch(batch_id)
            if record is not None:
                self._records[batch_id] = record
        return record

    def _request(self, record: BatchRecord, item: ClaimedItem) -> ClientRequest:
        headers = _HEADERS.get(record.api, {})
        return ClientRequest(
            api=cast(ClientAPI, record.api),
            body=item.body,
            headers=headers,
            backend=record.backend,
            stream=False,
            principal=Principal(record.owner, kind=cast(PrincipalKind, record.owner_kind)),
            path=record.endpoint.removeprefix("/v1") if record.api == "forward" else "",
            request_id=f"{record.id}:{item.custom_id}",
            route=record.endpoint,
            priority="batch",
        )

    async def _attempts(self, record: BatchRecord, item: ClaimedItem) -> ItemResult:
        s = self.settings
        request = self._request(record, item)
        failures = limited = 0
        while True:
            try:
                body = await self._reply_body(await self.runner.run(request))
            except AnyllmError as exc:
                if exc.kind == ErrorKind.RATE_LIMIT:
                    limited += 1
                    spent = limited >= s.max_rate_limited
                else:
                    failures += 1
                    spent = failures >= s.max_attempts
                if spent or not _retryable(exc, s.max_wait_s):
                    return _errored(exc)
                await self._sleep(self._backoff(max(failures, limited), exc))
                continue
            if body is None:
                kind = ErrorKind.API_ERROR
                return ItemResult("errored", 500, error_kind=kind, message="no JSON reply")
            return ItemResult("succeeded", 200, body=body)

    async def _reply_body(self, reply: Any) -> dict[str, Any] | None:
        """The reply's JSON body. A passthrough is read whole (and its call completed) here; its
        error status raises as the upstream's error, retried like any other."""
        if not isinstance(reply, ForwardReply):
            body = getattr(reply, "body", None)
            return body if isinstance(body, dict) else None
        async with reply:
            data = await reply.read()
        try:
            parsed = codec.loads(data) if data else None
        except ValueError:
            parsed = None
        body = parsed if isinstance(parsed, dict) else None
        if reply.status >= 400:
            raise ForwardedError(reply.status, body, reply.headers, self._clock())
        return body

    def _backoff(self, attempt: int, exc: AnyllmError) -> float:
        s = self.settings
        delay = min(s.backoff_max_s, s.backoff_s * 2 ** (attempt - 1)) * (0.5 + self._rand() / 2)
        after = getattr(exc, "retry_after", None)
        if isinstance(after, int | float) and after > 0:
            delay = max(delay, min(float(after), s.backoff_max_s))
        return float(delay)

    # -- writing, leases, ending ------------------------------------------------------------------

    async def _flusher(self) -> None:
        while True:
            if not self._results:
                self._has_results = anyio.Event()
                await self._has_results.wait()
            await self._sleep(self.settings.flush_s)
            await self._flush()
            self._wake.set()  # written items no longer hold their batch's leases: claim more

    async def _flush(self) -> None:
        if not self._results:
            return
        taken, self._results = self._results, []
        grouped: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
        for batch_id, custom_id, result in taken:
            grouped.setdefault(batch_id, []).append((custom_id, result))
        pending = list(grouped.items())
        for i, (batch_id, results) in enumerate(pending):
            try:
                await self.store.complete(batch_id, results)
            except BaseException:  # not written: keep them for the next flush, then re-raise
                unwritten = {b for b, _ in pending[i:]}
                self._results[:0] = [r for r in taken if r[0] in unwritten]
                raise

    async def _renewer(self) -> None:
        s = self.settings
        while True:
            await self._sleep(s.lease_s / 3)
            await self.store.renew(self.worker, list(self._inflight), s.lease_s, self._clock())

    async def _keeper(self) -> None:
        s = self.settings
        purged_at = 0.0
        while True:
            now = self._clock()
            for record in await self.store.due(now):
                await self._end(record, now)
            if now - purged_at > 3600:
                purged_at = now
                gone = await self.store.purge(now - s.retention_s)
                if gone:
                    log.info("batch retention: deleted %d ended batches", gone)
            if self._until is not None:
                mine = await self.store.get_batch(self._until)
                if mine is None or mine.ended is not None:
                    self._stop.set()
                    return
            with anyio.move_on_after(s.poll_s):
                await self._wake.wait()

    async def _end(self, record: BatchRecord, now: float) -> None:
        reason: EndReason = "completed"
        if record.cancel_requested is not None:
            reason = "canceled"
        elif record.expires <= now and record.counts.done < record.counts.total:
            reason = "expired"
        await self.store.finish(record.id, reason, now)
        self._records.pop(record.id, None)
        for (batch_id, _), scope in list(self._inflight.items()):
            if batch_id == record.id:
                scope.cancel()
        log.info("batch %s ended: %s", record.id, reason)

    async def _give_back(self) -> None:
        """On shutdown: write what is buffered, hand leases back so a restart need not wait."""
        with anyio.CancelScope(shield=True):
            try:
                await self._flush()
                await self.store.release(self.worker, list(self._held))
            except StoreError as exc:  # safe: unwritten items run again once their leases expire
                log.warning("batch engine: could not hand back its work (%s)", exc)
            self._held.clear()


def _retryable(exc: AnyllmError, max_wait_s: float) -> bool:
    """An upstream's 429/5xx/timeout, or a guard's rate limit that lifts soon. A key's spent
    budget (no retry-after, or one hours away) is final: waiting would only stall the batch."""
    after = getattr(exc, "retry_after", None)
    if exc.kind == ErrorKind.RATE_LIMIT:
        if after is not None:
            return float(after) <= max_wait_s
        return isinstance(exc, UpstreamError)
    if isinstance(exc, CredentialsRefused):
        return False
    return isinstance(exc, UpstreamError) and exc.kind in RETRYABLE


class ForwardedError(UpstreamError):
    """A passthrough item's error status, keeping the upstream's own error body for its line."""

    def __init__(
        self, status: int, body: dict[str, Any] | None, headers: Mapping[str, str], now: float
    ) -> None:
        kind, message = parse_error_body(body if body is not None else f"status {status}", status)
        super().__init__(kind, message, status=status, retry_after=parse_retry_after(headers, now))
        self.body = body


def _errored(exc: AnyllmError) -> ItemResult:
    status = getattr(exc, "status", None)
    if not isinstance(status, int):
        status, _ = anthropic_error(exc.kind, exc.message)
    body = exc.body if isinstance(exc, ForwardedError) else None
    return ItemResult("errored", status, body=body, error_kind=exc.kind, message=exc.message)
