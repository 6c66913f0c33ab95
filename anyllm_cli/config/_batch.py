"""The `[batch]` table: how hard the batch engine works and how long results are kept.

    [batch]
    concurrency = 64      # items in flight per proxy worker (or `anyllm batch run`), over all batches
    per_batch = 64        # items in flight per batch, over every worker and instance
    retention_days = 29   # ended batches (and their results) are deleted after this long
    lease_seconds = 60    # an item's lease; a dead worker's items are run again after it
    native_poll_seconds = 30        # native batches: first wait between status polls upstream
    native_poll_max_seconds = 300   # ... growing by half each poll up to this

A backend's own `batch = "native"` (under `[backends.NAME]`) hands the batches of its format to its
provider's batch API; see `batch/native.py`.

What it gives up: no environment variables for these (the TOML file only).
"""

from __future__ import annotations

from dataclasses import dataclass

from anyllm_cli.config._files import _Table

_KEYS = frozenset(
    {
        "concurrency",
        "per_batch",
        "retention_days",
        "lease_seconds",
        "native_poll_seconds",
        "native_poll_max_seconds",
    }
)


@dataclass(frozen=True, slots=True)
class BatchSettings:
    concurrency: int = 64
    per_batch: int = 64
    retention_days: float = 29.0
    lease_seconds: float = 60.0
    native_poll_seconds: float = 30.0
    native_poll_max_seconds: float = 300.0


def batch_settings(doc: _Table) -> BatchSettings:
    table = _Table(doc.data.get("batch", {}), "batch", doc.file)
    table.only(_KEYS)
    default = BatchSettings()
    concurrency = table.integer("concurrency", 1, 4096)
    per_batch = table.integer("per_batch", 1, 4096)
    retention = table.number("retention_days", 0.0)
    lease = table.number("lease_seconds", 1.0)
    poll = table.number("native_poll_seconds", 0.01)
    poll_max = table.number("native_poll_max_seconds", 0.01)
    poll = poll if poll is not None else default.native_poll_seconds
    poll_max = poll_max if poll_max is not None else max(poll, default.native_poll_max_seconds)
    if poll_max < poll:
        raise table.error(
            "native_poll_max_seconds", f"must be at least native_poll_seconds ({poll:g})"
        )
    return BatchSettings(
        concurrency=concurrency if concurrency is not None else default.concurrency,
        per_batch=per_batch if per_batch is not None else default.per_batch,
        retention_days=retention if retention is not None else default.retention_days,
        lease_seconds=lease if lease is not None else default.lease_seconds,
        native_poll_seconds=poll,
        native_poll_max_seconds=poll_max,
    )
