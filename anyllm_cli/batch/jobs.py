"""Creating batches and reading their results over a `BatchStore`: shared by the server and the CLI.

    create(store, job, owner, ...)  -> BatchRecord   (every item persisted before it returns)
    candidates(job, router, ...)    -> where its models will run (a passthrough batch's backend checked)
    result_lines(store, record)     -> JSONL lines in the batch's own format, in input order
                                       (OpenAI: `errors=False` the output file, `True` the error file)

Batch ids carry their format's prefix (`msgbatch_` for Anthropic, `batch_` for OpenAI). `run_id`
derives an id from a file's bytes, its backend and owner, so `anyllm batch run FILE` started again
after a crash finds the batch it was running and continues it.

What it gives up: results are rendered on every read (nothing is cached).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from typing import Any

from anyllm_cli.batch import anthropic, openai
from anyllm_cli.batch.job import BatchJob, ItemResult
from anyllm_cli.errors import InvalidInput
from anyllm_cli.pipeline import FORWARD_KINDS
from anyllm_cli.pipeline.seams import Candidate, ClientRequest, Principal, Router
from anyllm_cli.stores.batches import BatchRecord, BatchStore, NewItem

PAGE = 1000
DEFAULT_WINDOW = "24h"


def new_id(fmt: str) -> str:
    return ("msgbatch_" if fmt == "anthropic" else "batch_") + uuid.uuid4().hex[:24]


def run_id(data: bytes, backend: str | None, owner: str, fmt: str) -> str:
    digest = hashlib.sha256(b"\0".join([data, (backend or "").encode(), owner.encode()]))
    return ("msgbatch_run_" if fmt == "anthropic" else "batch_run_") + digest.hexdigest()[:24]


async def create(
    store: BatchStore,
    job: BatchJob,
    owner: Principal,
    *,
    backend: str | None = None,
    window: str = DEFAULT_WINDOW,
    input_file_id: str | None = None,
    metadata: Mapping[str, str] | None = None,
    batch_id: str | None = None,
    mode: str = "local",
    clock: Callable[[], float] = time.time,
) -> BatchRecord:
    now = clock()
    record = BatchRecord(
        id=batch_id or new_id(job.format),
        owner=owner.id,
        owner_kind=owner.kind,
        format=job.format,
        api=job.api,
        endpoint=job.endpoint,
        created=now,
        expires=now + openai.window_seconds(window),
        completion_window=window,
        backend=backend,
        input_file_id=input_file_id,
        metadata=dict(metadata or {}),
        mode=mode,
    )
    items = [NewItem(i.custom_id, i.body, i.line) for i in job.items]
    await store.create_batch(record, items)
    stored = await store.get_batch(record.id)
    return stored or record


def candidates(
    job: BatchJob, router: Router, probe: ClientRequest, kinds: Mapping[str, str]
) -> list[Candidate]:
    """Where each of the job's models will run, picked as the pipeline will pick it, to check a
    batch before it is accepted. A passthrough batch (Responses, Embeddings) goes where a live
    passthrough would, and is refused when that backend does not speak the OpenAI API itself."""
    if job.api != "forward":
        return [c for model in sorted(job.models) for c in router.candidates(probe, model)[:1]]
    target = router.candidates(probe, "")[0]
    kind = kinds.get(target.backend, "unknown")
    if kind not in FORWARD_KINDS:
        raise InvalidInput(
            f"backend {target.backend!r} (kind {kind}) cannot serve {job.endpoint}: a "
            f"{job.endpoint} batch is passed through to a backend that speaks the OpenAI API "
            f"(kind {' or '.join(sorted(FORWARD_KINDS))}); name one in the URL (/NAME/v1/batches)"
        )
    return [replace(target, requested_model=m, upstream_model=m) for m in sorted(job.models)]


async def result_lines(
    store: BatchStore, record: BatchRecord, *, errors: bool | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Each ended item's result line, in input order. For OpenAI batches `errors` picks the output
    file (False), the error file (True) or both (None)."""
    after = 0
    while True:
        rows = await store.items(record.id, after_line=after, limit=PAGE)
        for row in rows:
            if row.result is None:
                continue
            result = ItemResult.from_json(dict(row.result))
            if record.format == "anthropic":
                yield anthropic.result_line(row.custom_id, result)
                continue
            is_error, line = openai.result_line(record.id, row.custom_id, result)
            if errors is None or errors == is_error:
                yield line
        if len(rows) < PAGE:
            return
        after = rows[-1].line


async def result_bytes(
    store: BatchStore, record: BatchRecord, *, errors: bool | None = None
) -> AsyncIterator[bytes]:
    async for line in result_lines(store, record, errors=errors):
        yield json.dumps(line, separators=(",", ":")).encode() + b"\n"
