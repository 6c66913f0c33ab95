"""The `[batch]` table: how hard the batch engine works and how long results are kept.

    [batch]
    concurrency = 64      # items in flight per proxy worker (or `anyllm batch run`), over all batches
    per_batch = 64        # items in flight per batch, over every worker and instance
    retention_days = 29   # ended batches (and their results) are deleted after this long
    lease_seconds = 60    # an item's lease; a dead worker's items are run again after it

What it gives up: no environment variables for these (the TOML file only).
"""

from __future__ import annotations

from dataclasses import dataclass

from anyllm_cli.config._files import _Table

_KEYS = frozenset({"concurrency", "per_batch", "retention_days", "lease_seconds"})


@dataclass(frozen=True, slots=True)
class BatchSettings:
    concurrency: int = 64
    per_batch: int = 64
    retention_days: float = 29.0
    lease_seconds: float = 60.0


def batch_settings(doc: _Table) -> BatchSettings:
    table = _Table(doc.data.get("batch", {}), "batch", doc.file)
    table.only(_KEYS)
    default = BatchSettings()
    concurrency = table.integer("concurrency", 1, 4096)
    per_batch = table.integer("per_batch", 1, 4096)
    retention = table.number("retention_days", 0.0)
    lease = table.number("lease_seconds", 1.0)
    return BatchSettings(
        concurrency=concurrency if concurrency is not None else default.concurrency,
        per_batch=per_batch if per_batch is not None else default.per_batch,
        retention_days=retention if retention is not None else default.retention_days,
        lease_seconds=lease if lease is not None else default.lease_seconds,
    )
