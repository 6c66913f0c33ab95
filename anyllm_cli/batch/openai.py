"""OpenAI Batches and Files <-> the neutral batch shape (pure).

    {"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}  ──from_jsonl──> BatchJob(api="chat")
    ... "url": "/v1/responses" | "/v1/embeddings" ...                       ──from_jsonl──> BatchJob(api="forward")
    ItemResult ──result_line──> output file line (a 2xx reply) or error file line (anything else)
    BatchRecord ──batch_object──> Batch (status, request_counts, output_file_id, error_file_id, ...)

Every line must name the same endpoint, and the batch's `endpoint` when one is given (as OpenAI
requires). Output and error files are not copies: they are rendered from the items' results when
read, under ids derived from the batch id (`<batch id>-output`, `<batch id>-errors`). Deleting one
deletes what it held (the store scrubs those results); as at OpenAI, the batch keeps naming the
file in `output_file_id` / `error_file_id`, and the file answers 404 from then on.

Chat Completions items run through the pipeline's translation, so any backend serves them.
Responses and Embeddings items are passed through (the pipeline's forward path, with the key's
guard and spend as for a live passthrough), each body checked first against its request model.

What it gives up: Responses and Embeddings batches need a backend that speaks the OpenAI API itself
(kind `openai` or `azure`, presets included); any other is refused at creation. `/v1/completions`,
`/v1/moderations` and the newer endpoints are refused up front, by line.
"""

from __future__ import annotations

import hashlib
from typing import Any

from anyllm_cli.batch.job import BatchJob, Collector, ItemResult, JobAPI, check_size, lines
from anyllm_cli.errors import ErrorKind, InvalidInput, openai_error
from anyllm_cli.models._base import Wire
from anyllm_cli.models.batches import (
    Batch,
    BatchRequestCounts,
    FileObject,
    OpenAIBatchLine,
    OpenAIResultLine,
)
from anyllm_cli.models.openai_chat import ChatRequest, EmbeddingsRequest
from anyllm_cli.models.openai_responses import ResponsesRequest
from anyllm_cli.stores.batches import BatchRecord, FileRecord

# endpoint -> (the pipeline API its items run as, the model its bodies must parse as)
ENDPOINTS: dict[str, tuple[JobAPI, type[Wire]]] = {
    "/v1/chat/completions": ("chat", ChatRequest),
    "/v1/responses": ("forward", ResponsesRequest),
    "/v1/embeddings": ("forward", EmbeddingsRequest),
}
OUTPUT_SUFFIX = "-output"
ERRORS_SUFFIX = "-errors"
WINDOWS = {"24h": 24 * 3600.0}


def window_seconds(window: str) -> float:
    """`completion_window` as seconds ("24h", as OpenAI accepts; any "<n>h" works here)."""
    if window in WINDOWS:
        return WINDOWS[window]
    if window.endswith("h") and window[:-1].isdigit() and int(window[:-1]) > 0:
        return int(window[:-1]) * 3600.0
    raise InvalidInput(f"completion_window {window!r}: expected hours, such as '24h'")


def from_jsonl(data: bytes, endpoint: str | None = None) -> BatchJob:
    check_size(data)
    if endpoint is not None and endpoint not in ENDPOINTS:
        raise InvalidInput(
            f"endpoint {endpoint!r} is not supported; this proxy runs {', '.join(ENDPOINTS)}"
        )
    col = Collector()
    for number, value in lines(data):
        if col.full:
            break
        if isinstance(value, str):
            col.problem(number, value)
            continue
        try:
            line = OpenAIBatchLine.parse(value)
        except InvalidInput as exc:
            col.problem(number, exc.message)
            continue
        endpoint = endpoint or line.url
        if line.url != endpoint:
            col.problem(number, f"url {line.url!r} differs from the batch's endpoint {endpoint!r}")
        elif line.url not in ENDPOINTS:
            col.problem(number, f"url {line.url!r} is not supported; use {', '.join(ENDPOINTS)}")
        else:
            try:
                ENDPOINTS[line.url][1].parse(line.body)
            except InvalidInput as exc:
                col.problem(number, f"body.{exc.message}" if exc.path else exc.message)
                continue
            col.add(line.custom_id, line.body, number)
    items = col.finish()
    endpoint = endpoint or "/v1/chat/completions"
    return BatchJob("openai", ENDPOINTS[endpoint][0], endpoint, tuple(items))


def _req_id(batch_id: str, custom_id: str) -> str:
    digest = hashlib.sha256(f"{batch_id}\0{custom_id}".encode()).hexdigest()[:24]
    return f"batch_req_{digest}"


def result_line(batch_id: str, custom_id: str, result: ItemResult) -> tuple[bool, dict[str, Any]]:
    """(is an error-file line, the line)."""
    rid = _req_id(batch_id, custom_id)
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    if result.type == "succeeded":
        response = {"status_code": result.status, "request_id": rid, "body": result.body}
    elif result.type == "errored":  # a passthrough's error keeps the upstream's own body
        status, body = openai_error(result.error_kind or ErrorKind.API_ERROR, result.message)
        body = result.body if result.body is not None else body
        response = {"status_code": result.status or status, "request_id": rid, "body": body}
    else:
        code = "batch_cancelled" if result.type == "canceled" else "batch_expired"
        what = "canceled" if result.type == "canceled" else "expired"
        error = {"code": code, "message": f"This request was not run: the batch {what}."}
    line = OpenAIResultLine(id=rid, custom_id=custom_id, response=response, error=error)
    return result.type != "succeeded", line.dump()


def _status(view: BatchRecord) -> str:
    if view.ended is None:
        return "cancelling" if view.cancel_requested else "in_progress"
    return {"canceled": "cancelled", "expired": "expired"}.get(view.end_reason or "", "completed")


def batch_object(view: BatchRecord) -> dict[str, Any]:
    c = view.counts
    ended = view.ended is not None
    ts = int(view.ended) if ended and view.ended is not None else None
    status = _status(view)
    return Batch(
        id=view.id,
        endpoint=view.endpoint,
        input_file_id=view.input_file_id or "",
        completion_window=view.completion_window,
        status=status,
        created_at=int(view.created),
        in_progress_at=int(view.created),
        expires_at=int(view.expires),
        finalizing_at=ts,
        completed_at=ts if status == "completed" else None,
        failed_at=None,
        expired_at=ts if status == "expired" else None,
        cancelling_at=int(view.cancel_requested) if view.cancel_requested else None,
        cancelled_at=ts if status == "cancelled" else None,
        output_file_id=view.id + OUTPUT_SUFFIX if ended and c.succeeded else None,
        error_file_id=view.id + ERRORS_SUFFIX if ended and c.done > c.succeeded else None,
        errors=None,
        request_counts=BatchRequestCounts(
            total=c.total, completed=c.succeeded, failed=c.done - c.succeeded
        ),
        metadata=dict(view.metadata) or None,
    ).dump()


def file_object(record: FileRecord) -> dict[str, Any]:
    return FileObject(
        id=record.id,
        bytes=record.bytes,
        created_at=int(record.created),
        filename=record.filename,
        purpose=record.purpose,
        status="processed",
        expires_at=int(record.expires) if record.expires else None,
        status_details=None,
    ).dump()


def result_file_of(file_id: str) -> tuple[str, bool] | None:
    """(batch id, errors?) for an output or error file id, None for an uploaded file."""
    for suffix, errors in ((OUTPUT_SUFFIX, False), (ERRORS_SUFFIX, True)):
        if file_id.startswith("batch_") and file_id.endswith(suffix):
            return file_id.removesuffix(suffix), errors
    return None
