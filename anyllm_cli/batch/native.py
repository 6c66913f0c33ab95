"""Native batches: a batch handed to its backend's own batch API, polled until it ends there.

    server create ──choose()──> mode "native", pinned to one backend with `batch = "native"` whose
                                kind speaks the batch's format (anthropic <- Message Batches,
                                openai <- OpenAI chat batches); anything else runs locally (logged)
    NativeRunner ──store.claim_native (one lease per batch, so one instance polls it)──> step:
      new        write `intent` ──> create upstream ──> write `submitted` + the upstream id
                   OpenAI: POST /files (multipart, purpose=batch), then POST /batches with
                   metadata {"anyllm_batch": id}; Anthropic: POST /messages/batches
      intent     a create whose answer was never written (crash, error): look for it upstream
                   first (OpenAI: by that metadata; Anthropic, which keeps no metadata: a batch
                   created since the intent with the same request count), create only if absent
      submitted  cancel requested? POST .../cancel once. GET the batch; not ended: poll again
                   after native_poll_seconds, x1.5 per poll up to native_poll_max_seconds
                 ended: download the results (OpenAI output + error files; Anthropic
                   /messages/batches/{id}/results), one result per custom_id through
                   `store.complete` (first result wins), each newly ended success priced at batch
                   rates through `Pipeline.complete_elsewhere` (the completion point: spend,
                   observers), items the upstream left out get a result too, then `store.finish`

Each item's body goes upstream as a live request to that backend would (clients.py's relays): the
model mapped by the router, a Chat body's output tokens clamped to the backend's limit; nothing
else is translated, since the formats match. The result body is the upstream's reply, as a live
relay returns it.

What it gives up: a crash between an upstream create and the write of its id is recovered by
lookup; for Anthropic the lookup is a heuristic (same request count, created since the intent,
the newest page of 100 batches only) and could adopt another client's batch of the same size
created in that instant on the same account. The results URL Anthropic returns is not followed:
the runner reads the same path under the backend's base URL (it never sends the key elsewhere).
A crash between writing a chunk of results and booking their cost loses that chunk's cost (it
is never booked twice). A key's allow-lists are checked when the batch is created, but its rpm,
tpm and budget are not checked per item (the provider runs them under its own batch limits).
`anyllm batch run` always runs locally.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol, cast

import anyio

from anyllm_cli.backends.base import Backend
from anyllm_cli.batch._native_api import CHAT_ENDPOINT, BatchAPI, Status
from anyllm_cli.batch.job import BatchJob, ItemResult
from anyllm_cli.config import BackendSettings, BatchSettings
from anyllm_cli.errors import AnyllmError, ErrorKind, StoreError, UpstreamError
from anyllm_cli.models.anthropic import MessagesRequest
from anyllm_cli.models.openai_chat import ChatRequest
from anyllm_cli.pipeline.seams import (
    Candidate,
    ClientAPI,
    ClientRequest,
    Principal,
    PrincipalKind,
    Router,
)
from anyllm_cli.stores.batches import Batches, BatchRecord, NativeRecord
from anyllm_cli.translate.hops import clamp_chat_body

log = logging.getLogger("anyllm.batch")

# (batch format, backend kind) pairs a provider's batch API takes as they are.
NATIVE = {("anthropic", "anthropic"), ("openai", "openai")}
CHUNK = 1000
# Upstream refusals that waiting will not change: the batch ends with them instead of retrying.
REFUSED = frozenset(
    {
        ErrorKind.INVALID_REQUEST,
        ErrorKind.REQUEST_TOO_LARGE,
        ErrorKind.NOT_FOUND,
        ErrorKind.PERMISSION,
        ErrorKind.BILLING,
    }
)


def choose(
    job: BatchJob,
    backend: str | None,
    principal: Principal,
    router: Router,
    backends: Mapping[str, BackendSettings],
) -> str | None:
    """The backend to hand this batch to, or None to run it here. Every model of the batch must
    route to one backend with `batch = "native"` whose batch API takes the batch's format."""
    if job.api == "forward":  # Responses / Embeddings batches: no native API of theirs is used
        return None
    probe = ClientRequest(api=job.api, body=b"", backend=backend, principal=principal)
    names = {router.candidates(probe, model)[0].backend for model in job.models}
    native = sorted(n for n in names if backends[n].batch == "native")
    if not native:
        return None
    if len(names) > 1:
        log.info("batch runs locally: its models route to several backends (%s)", sorted(names))
        return None
    name = native[0]
    kind = backends[name].kind
    if (job.format, kind) not in NATIVE or (
        job.format == "openai" and job.endpoint != CHAT_ENDPOINT
    ):
        log.info(
            "batch runs locally: backend %s (kind %s) has a native batch API, but not for %s "
            "batches to %s",
            name,
            kind,
            job.format,
            job.endpoint,
        )
        return None
    return name


class Delegate(Protocol):
    """What the runner needs of the pipeline: `Pipeline` satisfies it."""

    backends: Mapping[str, Backend]
    router: Router

    async def complete_elsewhere(
        self, request: ClientRequest, candidate: Candidate, response: dict[str, Any]
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class NativeSettings:
    poll_s: float = 30.0
    poll_max_s: float = 300.0
    lease_s: float = 60.0

    @classmethod
    def of(cls, config: BatchSettings) -> NativeSettings:
        return cls(config.native_poll_seconds, config.native_poll_max_seconds, config.lease_seconds)


@dataclass(slots=True)
class _Items:
    """A native batch's items, as the runner needs them: the upstream line per item, and the
    request and candidate under which a result is booked."""

    lines: list[dict[str, Any]]
    requests: dict[str, tuple[ClientRequest, Candidate]]


class NativeRunner:
    def __init__(
        self,
        store: Batches,
        delegate: Delegate,
        settings: NativeSettings | None = None,
        *,
        worker: str | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.store = store
        self.delegate = delegate
        self.settings = settings or NativeSettings()
        self.worker = worker or f"n_{uuid.uuid4().hex[:12]}"
        self._clock = clock
        self._sleep = sleep
        self._wake = anyio.Event()

    def wake(self) -> None:
        """A native batch was created or canceled: look now."""
        self._wake.set()

    async def run(self) -> None:
        tick = min(1.0, self.settings.poll_s)
        while True:
            try:
                claimed = await self.store.claim_native(
                    self.worker, 8, self.settings.lease_s, self._clock()
                )
            except StoreError as exc:
                log.warning("native batches: %s; retrying", exc)
                claimed = []
            for native in claimed:
                await self._step_safely(native)
            if not claimed:
                self._wake = anyio.Event()
                with anyio.move_on_after(tick):
                    await self._wake.wait()

    async def _step_safely(self, native: NativeRecord) -> None:
        try:
            await self._step(native)
        except (AnyllmError, ValueError, KeyError, TypeError) as exc:  # upstream/store trouble
            message = getattr(exc, "message", None) or repr(exc)
            log.warning("native batch %s: %s; trying again later", native.batch_id, message)
            with contextlib.suppress(StoreError):  # safe: the lease expires, it is claimed again
                await self._save(native, self._later(native))
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await self.store.release_native(self.worker, [native.batch_id])
                except StoreError as exc:  # safe: the lease expires on its own
                    log.warning("native batch %s: lease not released (%s)", native.batch_id, exc)

    def _later(self, native: NativeRecord) -> float:
        s = self.settings
        return self._clock() + min(s.poll_max_s, s.poll_s * 1.5**native.polls)

    async def _save(self, native: NativeRecord, next_poll: float) -> None:
        saved = await self.store.save_native(
            native,
            self.worker,
            next_poll=next_poll,
            lease_s=self.settings.lease_s,
            now=self._clock(),
        )
        if not saved:
            raise StoreError(f"native batch {native.batch_id}: its lease was lost")

    # -- the steps --------------------------------------------------------------------------------

    async def _step(self, native: NativeRecord) -> None:
        record = await self.store.get_batch(native.batch_id)
        if record is None or record.ended is not None:
            await self._save(replace(native, state="ended"), self._clock())
            return
        backend = self.delegate.backends.get(native.backend)
        if backend is None:
            raise StoreError(f"backend {native.backend!r} is not configured; cannot poll it")
        upstream = BatchAPI(backend)
        if native.state in ("new", "intent"):
            if record.cancel_requested is not None:  # never sent: every item canceled here
                await self.store.finish(record.id, "canceled", self._clock())
                await self._save(replace(native, state="ended"), self._clock())
                return
            try:
                native = await self._submit(record, native, upstream)
            except UpstreamError as exc:
                if exc.kind not in REFUSED:
                    raise  # 429, 5xx, timeouts: try again at the next poll
                await self._refused(record, native, exc)  # no upstream batch exists
                return
        if native.cancel_sent is None and record.cancel_requested is not None:
            try:
                await upstream.cancel(cast(str, native.upstream_id))
            except UpstreamError as exc:  # it ended meanwhile, say: the status tells
                if exc.kind not in REFUSED:
                    raise
                log.info("native batch %s: the upstream refused the cancel (%s)", record.id, exc)
            native = replace(native, cancel_sent=self._clock())
            await self._save(native, self._clock())
        status = await upstream.status(cast(str, native.upstream_id))
        if not status.ended:
            native = replace(native, polls=native.polls + 1)
            await self._save(native, self._later(native))
            return
        await self._collect(record, native, upstream, status)

    async def _refused(self, record: BatchRecord, native: NativeRecord, exc: UpstreamError) -> None:
        """The upstream refused to take the batch: every item ends errored, saying why."""
        log.warning("native batch %s: the upstream refused it: %s", record.id, exc.message)
        failed = ItemResult("errored", exc.status, error_kind=exc.kind, message=exc.message)
        after = 0
        while True:
            rows = await self.store.native_items(record.id, after_line=after, limit=CHUNK)
            await self.store.complete(record.id, [(c, failed.to_json()) for c, _, _ in rows])
            if len(rows) < CHUNK:
                break
            after = rows[-1][1]
        await self.store.finish(record.id, "completed", self._clock())
        await self._save(replace(native, state="ended"), self._clock())

    async def _submit(
        self, record: BatchRecord, native: NativeRecord, upstream: BatchAPI
    ) -> NativeRecord:
        items = await self._items(record)
        if native.state == "intent":
            found = await upstream.find(record, native, len(items.lines))
            if found is not None:
                log.info("native batch %s: found upstream batch %s", record.id, found)
                native = replace(native, state="submitted", upstream_id=found)
                await self._save(native, self._clock())
                return native
        else:
            native = replace(native, state="intent", intent=self._clock())
            await self._save(native, self._clock())  # before the upstream can hold a batch
        if upstream.openai and native.upstream_file_id is None:
            file_id = await upstream.upload(record.id, items.lines)
            native = replace(native, upstream_file_id=file_id)
            await self._save(native, self._clock())
        upstream_id = await upstream.create(record, native, items.lines)
        native = replace(native, state="submitted", upstream_id=upstream_id)
        await self._save(native, self._clock())
        log.info("native batch %s: submitted as %s to %s", record.id, upstream_id, native.backend)
        return native

    async def _items(self, record: BatchRecord) -> _Items:
        out = _Items([], {})
        owner = Principal(record.owner, kind=cast(PrincipalKind, record.owner_kind))
        routed: dict[str, Candidate] = {}
        after = 0
        while True:
            rows = await self.store.native_items(record.id, after_line=after, limit=CHUNK)
            for custom_id, line, body in rows:
                request = ClientRequest(
                    api=cast(ClientAPI, record.api),
                    body=body,
                    backend=record.backend,
                    stream=False,
                    principal=owner,
                    request_id=f"{record.id}:{custom_id}",
                    route=record.endpoint,
                )
                parsed = _parse(record, body)
                model = str(parsed.get("model", ""))
                if model not in routed:
                    routed[model] = self.delegate.router.candidates(request, model)[0]
                candidate = routed[model]
                out.lines.append(self._line(record, custom_id, parsed, candidate.upstream_model))
                out.requests[custom_id] = (request, candidate)
                after = line
            if len(rows) < CHUNK:
                return out

    def _line(
        self, record: BatchRecord, custom_id: str, body: dict[str, Any], upstream_model: str
    ) -> dict[str, Any]:
        """The upstream's line for an item, as a live relay would send it (clients.py): the model
        mapped; a Chat body's output tokens clamped to the backend's limit."""
        body["model"] = upstream_model
        if record.format == "anthropic":
            return {"custom_id": custom_id, "params": body}
        settings = self.delegate.backends[record.backend or ""].settings
        clamp_chat_body(body, settings.output_limit(upstream_model), upstream_model)
        return {"custom_id": custom_id, "method": "POST", "url": CHAT_ENDPOINT, "body": body}

    async def _collect(
        self, record: BatchRecord, native: NativeRecord, upstream: BatchAPI, status: Status
    ) -> None:
        items = await self._items(record)
        results = await upstream.results(native, status)
        missing = set(items.requests)
        chunk: list[tuple[str, ItemResult]] = []
        for custom_id, result in results:
            if custom_id not in missing:
                continue  # not ours, or a second line for one item: the first one counts
            missing.discard(custom_id)
            chunk.append((custom_id, result))
            if len(chunk) >= CHUNK:
                await self._write(record, items, chunk)
                chunk = []
        reason = "completed"
        if record.cancel_requested is not None or status.canceled:
            reason = "canceled"
        elif status.expired:
            reason = "expired"
        for custom_id in sorted(missing):  # every item ends with one result
            chunk.append((custom_id, _left_out(reason, status.failure)))
        await self._write(record, items, chunk)
        await self.store.finish(record.id, reason, self._clock())  # type: ignore[arg-type]
        await self._save(replace(native, state="ended"), self._clock())
        log.info("native batch %s ended (%s) upstream as %s", record.id, reason, native.upstream_id)

    async def _write(
        self, record: BatchRecord, items: _Items, chunk: list[tuple[str, ItemResult]]
    ) -> None:
        if not chunk:
            return
        written = set(await self.store.complete(record.id, [(c, r.to_json()) for c, r in chunk]))
        for custom_id, result in chunk:
            if custom_id in written and result.type == "succeeded" and result.body is not None:
                request, candidate = items.requests[custom_id]
                await self.delegate.complete_elsewhere(request, candidate, result.body)


def _parse(record: BatchRecord, body: bytes) -> dict[str, Any]:
    """An item's request, checked and dumped as the live path does (absent fields left out)."""
    if record.format == "anthropic":
        return MessagesRequest.parse(body).dump()
    return ChatRequest.parse(body).dump()


def _left_out(reason: str, failure: str | None) -> ItemResult:
    if reason == "canceled":
        return ItemResult("canceled")
    if reason == "expired":
        return ItemResult("expired")
    message = failure or "the upstream batch returned no result for this request"
    return ItemResult("errored", 502, error_kind=ErrorKind.BAD_GATEWAY, message=message)
