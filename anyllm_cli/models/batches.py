"""Batch wire shapes: Anthropic Message Batches, OpenAI Files and Batches, and their JSONL lines.

    Anthropic                               OpenAI
    POST /v1/messages/batches {requests}    POST /v1/files (purpose=batch) -> FileObject
      -> MessageBatch                       POST /v1/batches {input_file_id, endpoint} -> Batch
    GET .../{id}/results -> JSONL of        GET /v1/files/{output_file_id}/content -> JSONL of
      {custom_id, result: {type, ...}}        {id, custom_id, response: {status_code, body}, error}

Input lines (`MessageBatchRequest`, `OpenAIBatchLine`) parse loosely: the request body inside stays a
dict and is checked by the API's own request model when the item runs, so one bad item errors alone
instead of refusing its batch. Output objects are built with every field the SDKs read (`null` where
the SDK types say Optional), checked against `anthropic.types.messages.MessageBatch` and
`openai.types.Batch` / `FileObject` in the tests.

What it gives up: OpenAI's `usage` on a Batch is left out (the SDK makes it optional).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from anyllm_cli.models._base import Wire


class Out(Wire):
    """An object we build and send: every field is dumped, defaults and nulls included."""

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


# -- Anthropic Message Batches --------------------------------------------------------------------

ProcessingStatus = Literal["in_progress", "canceling", "ended"]
ResultType = Literal["succeeded", "errored", "canceled", "expired"]


class MessageBatchRequest(Wire):
    """One line of an Anthropic batch file, or one entry of `requests` in the create body."""

    custom_id: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    params: dict[str, Any]


class MessageBatchCreate(Wire):
    requests: list[dict[str, Any]]


class RequestCounts(Out):
    processing: int
    succeeded: int
    errored: int
    canceled: int
    expired: int


class MessageBatch(Out):
    id: str
    type: Literal["message_batch"] = "message_batch"
    processing_status: ProcessingStatus
    request_counts: RequestCounts
    created_at: str  # RFC 3339
    expires_at: str
    ended_at: str | None = None
    cancel_initiated_at: str | None = None
    archived_at: str | None = None
    results_url: str | None = None


class DeletedMessageBatch(Out):
    id: str
    type: Literal["message_batch_deleted"] = "message_batch_deleted"


class MessageBatchList(Out):
    data: list[MessageBatch]
    has_more: bool
    first_id: str | None
    last_id: str | None


class BatchResultLine(Out):
    """`{"custom_id": ..., "result": {"type": "succeeded", "message": {...}}}` and its siblings."""

    custom_id: str
    result: dict[str, Any]


# -- OpenAI Files and Batches ---------------------------------------------------------------------

BatchStatus = Literal[
    "validating",
    "failed",
    "in_progress",
    "finalizing",
    "completed",
    "expired",
    "cancelling",
    "cancelled",
]
FileStatus = Literal["uploaded", "processed", "error"]


class OpenAIBatchLine(Wire):
    """One line of an OpenAI batch input file."""

    custom_id: str = Field(min_length=1)
    method: Literal["POST"]
    url: str
    body: dict[str, Any]


class FileObject(Out):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: FileStatus = "processed"
    expires_at: int | None = None
    status_details: str | None = None


class FileDeleted(Out):
    id: str
    object: Literal["file"] = "file"
    deleted: bool


class FileList(Out):
    object: Literal["list"] = "list"
    data: list[FileObject]
    has_more: bool = False
    first_id: str | None = None
    last_id: str | None = None


class BatchCreate(Wire):
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None = None


class BatchRequestCounts(Out):
    total: int
    completed: int
    failed: int


class BatchErrorItem(Out):
    code: str | None = None
    message: str | None = None
    param: str | None = None
    line: int | None = None


class BatchErrors(Out):
    object: Literal["list"] = "list"
    data: list[BatchErrorItem]


class Batch(Out):
    id: str
    object: Literal["batch"] = "batch"
    endpoint: str
    input_file_id: str
    completion_window: str
    status: BatchStatus
    created_at: int
    in_progress_at: int | None = None
    expires_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: BatchErrors | None = None
    request_counts: BatchRequestCounts
    metadata: dict[str, str] | None = None
    model: str | None = None


class BatchList(Out):
    object: Literal["list"] = "list"
    data: list[Batch]
    has_more: bool
    first_id: str | None
    last_id: str | None


class OpenAIResultLine(Out):
    """A line of an output file (a reply) or an error file (an error reply, or `error` when the
    request was never answered: canceled or expired)."""

    id: str
    custom_id: str
    response: dict[str, Any] | None
    error: dict[str, Any] | None
