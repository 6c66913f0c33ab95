"""What batches need from storage: `BatchStore` and `FileStore` Protocols and their records.

    create(batch, items)   every item persisted before the batch is acknowledged
    claim(owner, n, lease) items not ended and not under a live lease, leased to `owner` for `lease` s
    renew(owner, items)    keeps this worker's leases alive while it runs them
    complete(batch, [(custom_id, result)])   idempotent: an item already ended keeps its first result
    finish(batch, reason)  every item without a result gets `canceled` / `expired`, the batch ends
    claim_native / save_native   a native batch's upstream ids and poll state, under one lease
                                 (mode "native" batches are never claimed as local work)

A result lives on its item's row (keyed by batch id + custom_id), so a batch can never hold two
results for one custom_id, whatever crashes and retries happened. Times are Unix seconds (UTC).

What it gives up: an item's lease is its only lock; a worker that stalls longer than its lease
without renewing may see its item re-run elsewhere (the first result written wins).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

EndReason = Literal["completed", "canceled", "expired"]


@dataclass(frozen=True, slots=True)
class Counts:
    total: int = 0
    succeeded: int = 0
    errored: int = 0
    canceled: int = 0
    expired: int = 0

    @property
    def done(self) -> int:
        return self.succeeded + self.errored + self.canceled + self.expired


@dataclass(frozen=True, slots=True)
class BatchRecord:
    id: str
    owner: str  # the principal id that created it; nobody else sees it
    owner_kind: str  # the principal's kind, so its items run as it
    format: str  # "anthropic" | "openai"
    api: str  # the pipeline API each item is: "messages" | "chat" | "forward" (to `endpoint`)
    endpoint: str
    created: float
    expires: float
    completion_window: str = "24h"
    backend: str | None = None  # pinned backend, or None for the router's choice
    input_file_id: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    cancel_requested: float | None = None
    ended: float | None = None
    end_reason: EndReason | None = None
    counts: Counts = Counts()
    mode: str = "local"  # "native": run by its backend's own batch API (NativeStore), not leased


@dataclass(frozen=True, slots=True)
class NewItem:
    custom_id: str
    body: bytes
    line: int


@dataclass(frozen=True, slots=True)
class ClaimedItem:
    batch_id: str
    custom_id: str
    body: bytes
    attempts: int  # claims before this one (a crash-resumed item has at least 1)


@dataclass(frozen=True, slots=True)
class ItemRow:
    custom_id: str
    line: int
    result: Mapping[str, Any] | None  # ItemResult.to_json(), None while not ended


@dataclass(frozen=True, slots=True)
class FileRecord:
    id: str
    owner: str
    filename: str
    purpose: str
    bytes: int
    created: float
    expires: float | None = None


class BatchStore(Protocol):
    async def create_batch(self, batch: BatchRecord, items: Sequence[NewItem]) -> None: ...

    async def get_batch(self, batch_id: str) -> BatchRecord | None: ...

    async def list_batches(
        self,
        owner: str | None,
        *,
        limit: int = 20,
        after: str | None = None,
        before: str | None = None,
        fmt: str | None = None,
    ) -> list[BatchRecord]:
        """Newest first, of one format when `fmt` is given. `after`: the batches older than that
        one (the next page). `before`: the `limit` batches just newer than that one, still newest
        first (the previous page)."""
        ...

    async def claim(
        self,
        worker: str,
        limit: int,
        per_batch: int,
        lease_s: float,
        now: float,
        *,
        only: str | None = None,
    ) -> list[ClaimedItem]:
        """Lease up to `limit` runnable items of open batches (or of batch `only`), oldest batch
        first, leaving each batch at most `per_batch` live leases (across every worker)."""
        ...

    async def renew(
        self, worker: str, keys: Sequence[tuple[str, str]], lease_s: float, now: float
    ) -> None:
        """Extend this worker's leases on these (batch id, custom_id) items."""
        ...

    async def release(self, worker: str, keys: Sequence[tuple[str, str]]) -> None:
        """Give items back unrun (shutdown), so another worker need not wait for the lease."""
        ...

    async def complete(
        self, batch_id: str, results: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[str]:
        """Write results; returns the custom_ids that ended now (not those that had a result)."""
        ...

    async def cancel(self, batch_id: str, now: float) -> None: ...

    async def due(self, now: float) -> list[BatchRecord]:
        """Open local batches that are ready to end: nothing left to run, canceled, or past
        expiry (a native batch is ended by its runner, when its upstream batch has)."""
        ...

    async def finish(self, batch_id: str, reason: EndReason, now: float) -> None: ...

    async def items(
        self, batch_id: str, *, after_line: int = 0, limit: int = 1000
    ) -> list[ItemRow]: ...

    async def delete_batch(self, batch_id: str) -> None: ...

    async def purge(self, ended_before: float) -> int:
        """Delete batches (and their items) that ended before this time; returns how many."""
        ...


NativeState = Literal["new", "intent", "submitted", "ended"]


@dataclass(frozen=True, slots=True)
class NativeRecord:
    """A native batch's upstream side: `new` -> `intent` (about to create it upstream; a restart
    looks for it before creating again) -> `submitted` (upstream id known: polled) -> `ended`."""

    batch_id: str
    backend: str
    state: NativeState = "new"
    upstream_id: str | None = None
    upstream_file_id: str | None = None  # OpenAI: the uploaded input file
    intent: float | None = None  # when the upstream create was first attempted
    cancel_sent: float | None = None
    polls: int = 0


class NativeStore(Protocol):
    async def claim_native(
        self, worker: str, limit: int, lease_s: float, now: float
    ) -> list[NativeRecord]:
        """Native batches not ended whose next poll is due and whose lease is free, leased."""
        ...

    async def save_native(
        self, record: NativeRecord, worker: str, *, next_poll: float, lease_s: float, now: float
    ) -> bool:
        """Write the record while this worker holds its lease (renewing it); False if lost."""
        ...

    async def release_native(self, worker: str, batch_ids: Sequence[str]) -> None: ...

    async def native_items(
        self, batch_id: str, *, after_line: int = 0, limit: int = 1000
    ) -> list[tuple[str, int, bytes]]:
        """(custom_id, line, body) of a batch's items, in input order."""
        ...


class FileStore(Protocol):
    async def put_file(self, record: FileRecord, content: bytes) -> None: ...

    async def get_file(self, file_id: str) -> FileRecord | None: ...

    async def file_content(self, file_id: str) -> bytes | None: ...

    async def list_files(
        self, owner: str | None, *, purpose: str | None = None
    ) -> list[FileRecord]: ...

    async def delete_file(self, file_id: str) -> bool: ...

    async def delete_results(
        self, batch_id: str, file_id: str, *, errors: bool, now: float
    ) -> bool:
        """Delete an ended batch's output file (`errors=False`: the succeeded items' results) or
        its error file (every other result): their bodies are scrubbed, the counts stay, and the
        file id is remembered as deleted. False when it was deleted already."""
        ...

    async def deleted_results(self, batch_id: str) -> frozenset[str]:
        """The ids of this batch's output and error files that were deleted."""
        ...


class Batches(BatchStore, FileStore, NativeStore, Protocol):
    """Both, as one object over one store."""


def batches_of(store: object) -> Batches:
    """The batch and file store living in an opened `Store` (SQLite or PostgreSQL)."""
    from anyllm_cli.stores._batches_sql import SQLBatches
    from anyllm_cli.stores._sql import SQLStore

    if not isinstance(store, SQLStore):
        raise TypeError(f"batches need an SQL store, not {type(store).__name__}")
    return SQLBatches(store)
