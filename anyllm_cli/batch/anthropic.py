"""Anthropic Message Batches <-> the neutral batch shape (pure).

    {"custom_id": "a-1", "params": {Messages request}}   ──from_jsonl / from_create──> BatchJob(api="messages")
    ItemResult ──result_line──> {"custom_id": "a-1", "result": {"type": "succeeded", "message": {...}}}
    BatchView  ──message_batch──> MessageBatch (processing_status, request_counts, results_url, ...)

Each item's params are checked against the Messages request model up front, so a malformed item
refuses the batch with its line number instead of erroring alone hours later. `request_counts`
follows the API: while a batch runs, everything not yet ended counts as `processing`.

The proxy adds one field of its own, `anyllm_counts` ({total, done, failed}, live), which SDKs
ignore and `anyllm batch wait` draws its progress bar from.

What it gives up: `archived_at` is always null (results are deleted at retention, not archived).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from anyllm_cli.batch.job import BatchJob, Collector, ItemResult, check_size, lines
from anyllm_cli.errors import ErrorKind, InvalidInput, anthropic_error
from anyllm_cli.models.anthropic import MessagesRequest
from anyllm_cli.models.batches import (
    BatchResultLine,
    MessageBatch,
    MessageBatchCreate,
    MessageBatchRequest,
    RequestCounts,
)
from anyllm_cli.stores.batches import BatchRecord

ENDPOINT = "/v1/messages"


def _add(col: Collector, number: int, value: dict[str, Any]) -> None:
    try:
        line = MessageBatchRequest.parse(value)
        MessagesRequest.parse(line.params)
    except InvalidInput as exc:
        where = "params." if exc.path and not exc.path.startswith(("custom_id", "params")) else ""
        col.problem(number, f"{where}{exc.message}")
        return
    col.add(line.custom_id, line.params, number)


def from_jsonl(data: bytes) -> BatchJob:
    check_size(data)
    col = Collector()
    for number, value in lines(data):
        if col.full:
            break
        if isinstance(value, str):
            col.problem(number, value)
        else:
            _add(col, number, value)
    return BatchJob("anthropic", "messages", ENDPOINT, tuple(col.finish()))


def from_create(body: bytes) -> BatchJob:
    """The body of `POST /v1/messages/batches`; a "line" is the request's 1-based position."""
    check_size(body)
    create = MessageBatchCreate.parse(body)
    col = Collector()
    for number, value in enumerate(create.requests, start=1):
        if col.full:
            break
        if isinstance(value, dict):
            _add(col, number, value)
        else:
            col.problem(number, "expected a JSON object")
    return BatchJob("anthropic", "messages", ENDPOINT, tuple(col.finish()))


def rfc3339(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def result_line(custom_id: str, result: ItemResult) -> dict[str, Any]:
    out: dict[str, Any] = {"type": result.type}
    if result.type == "succeeded":
        out["message"] = result.body
    elif result.type == "errored":
        _, out["error"] = anthropic_error(result.error_kind or ErrorKind.API_ERROR, result.message)
    return BatchResultLine(custom_id=custom_id, result=out).dump()


def message_batch(view: BatchRecord, base_url: str) -> dict[str, Any]:
    """The MessageBatch object for a batch, `results_url` under `base_url` once it has ended."""
    c = view.counts
    ended = view.ended is not None
    if ended:
        counts = RequestCounts(
            processing=0,
            succeeded=c.succeeded,
            errored=c.errored,
            canceled=c.canceled,
            expired=c.expired,
        )
    else:
        counts = RequestCounts(processing=c.total, succeeded=0, errored=0, canceled=0, expired=0)
    status = "ended" if ended else ("canceling" if view.cancel_requested else "in_progress")
    return MessageBatch(
        id=view.id,
        processing_status=status,
        request_counts=counts,
        created_at=rfc3339(view.created) or "",
        expires_at=rfc3339(view.expires) or "",
        ended_at=rfc3339(view.ended),
        cancel_initiated_at=rfc3339(view.cancel_requested),
        archived_at=None,
        results_url=f"{base_url}/v1/messages/batches/{view.id}/results" if ended else None,
        anyllm_counts={"total": c.total, "done": c.done, "failed": c.done - c.succeeded},
    ).dump()
