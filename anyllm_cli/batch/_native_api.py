"""The providers' batch APIs, as the native runner uses them: OpenAI Files + Batches and Anthropic
Message Batches, through a backend's `forward` (its auth, retries and base URL; never another host).

    upload(lines)   POST /files, multipart purpose=batch                       (OpenAI)
    create          POST /batches {input_file_id, endpoint, metadata}          (OpenAI)
                    POST /messages/batches {requests}                          (Anthropic)
    find            the newest page of batches: ours by metadata (OpenAI), or by request count
                    and creation time (Anthropic keeps no metadata)
    status, cancel  GET /batches/{id} | /messages/batches/{id}, POST .../cancel
    results         the output and error files (OpenAI), .../results JSONL (Anthropic),
                    each line as an `ItemResult` keyed by custom_id

This is the one place a batch reaches a backend outside `Pipeline.run`: these calls manage a batch,
they are not model calls; each item's result still completes through the pipeline.

What it gives up: `find` reads one page (100 batches); an older orphan is not found.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anyllm_cli.backends.base import Backend
from anyllm_cli.batch.job import ItemResult
from anyllm_cli.errors import (
    ErrorKind,
    UpstreamError,
    anthropic_error,
    kind_from_error_type,
    parse_error_body,
)
from anyllm_cli.stores.batches import BatchRecord, NativeRecord

CHAT_ENDPOINT = "/v1/chat/completions"
OPENAI_ENDED = {"completed", "expired", "cancelled", "failed"}
ADOPT_SKEW_S = 300.0  # Anthropic lookup: batches created this long before the intent count too


@dataclass(frozen=True, slots=True)
class Status:
    ended: bool
    canceled: bool = False
    expired: bool = False
    failure: str | None = None  # OpenAI: the batch failed validation upstream
    output_file_id: str | None = None
    error_file_id: str | None = None


class BatchAPI:
    """One backend's batch API, through its `forward` (its auth, retries and base URL)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.openai = backend.settings.kind == "openai"

    async def _call(
        self,
        method: str,
        path: str,
        content: bytes = b"",
        content_type: str = "application/json",
    ) -> bytes:
        headers = {"content-type": content_type} if content else {}
        async with self.backend.forward(method, path, content, headers) as reply:
            data = b"".join([chunk async for chunk in reply])
            status = reply.status
        if not 200 <= status < 300:
            try:
                body: Any = json.loads(data)
            except ValueError:
                body = data[:500].decode(errors="replace")
            kind, message = parse_error_body(body, status)
            raise UpstreamError(
                kind,
                f"backend {self.backend.settings.name}: {method} {path.partition('?')[0]}: {message}",
                status=status,
            )
        return data

    async def _json(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        content = json.dumps(body).encode() if body is not None else b""
        data = await self._call(method, path, content)
        parsed = json.loads(data)
        if not isinstance(parsed, dict):
            raise UpstreamError(ErrorKind.BAD_GATEWAY, f"{path}: the reply is not a JSON object")
        return parsed

    async def upload(self, batch_id: str, lines: list[dict[str, Any]]) -> str:
        boundary = "anyllm-" + uuid.uuid4().hex
        jsonl = b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n" for line in lines)
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="{batch_id}.jsonl"\r\nContent-Type: application/jsonl\r\n\r\n'
            ).encode()
            + jsonl
            + f"\r\n--{boundary}--\r\n".encode()
        )
        data = await self._call("POST", "/files", body, f"multipart/form-data; boundary={boundary}")
        return str(json.loads(data)["id"])

    async def create(
        self, record: BatchRecord, native: NativeRecord, lines: list[dict[str, Any]]
    ) -> str:
        if self.openai:
            body = {
                "input_file_id": native.upstream_file_id,
                "endpoint": CHAT_ENDPOINT,
                "completion_window": "24h",
                "metadata": {"anyllm_batch": record.id},
            }
            return str((await self._json("POST", "/batches", body))["id"])
        return str((await self._json("POST", "/messages/batches", {"requests": lines}))["id"])

    async def find(self, record: BatchRecord, native: NativeRecord, total: int) -> str | None:
        """The upstream batch an earlier create made, if there is one (see the module's note)."""
        if self.openai:
            listed = await self._json("GET", "/batches?limit=100")
            for batch in listed.get("data") or []:
                meta = batch.get("metadata") or {}
                if meta.get("anyllm_batch") == record.id:
                    return str(batch["id"])
            return None
        listed = await self._json("GET", "/messages/batches?limit=100")
        since = (native.intent or record.created) - ADOPT_SKEW_S
        found: list[tuple[float, str]] = []
        for batch in listed.get("data") or []:
            counts = batch.get("request_counts") or {}
            created = _rfc3339(batch.get("created_at"))
            if created >= since and sum(int(v) for v in counts.values()) == total:
                found.append((abs(created - (native.intent or since)), str(batch["id"])))
        return min(found)[1] if found else None

    async def cancel(self, upstream_id: str) -> None:
        path = (
            f"/batches/{upstream_id}/cancel"
            if self.openai
            else f"/messages/batches/{upstream_id}/cancel"
        )
        await self._json("POST", path)

    async def status(self, upstream_id: str) -> Status:
        if self.openai:
            batch = await self._json("GET", f"/batches/{upstream_id}")
            state = batch.get("status")
            errors = (batch.get("errors") or {}).get("data") or []
            failure = "; ".join(str(e.get("message")) for e in errors) or None
            return Status(
                ended=state in OPENAI_ENDED,
                canceled=state == "cancelled",
                expired=state == "expired",
                failure=f"the upstream batch failed: {failure}" if state == "failed" else None,
                output_file_id=batch.get("output_file_id"),
                error_file_id=batch.get("error_file_id"),
            )
        batch = await self._json("GET", f"/messages/batches/{upstream_id}")
        return Status(ended=batch.get("processing_status") == "ended")

    async def results(self, native: NativeRecord, status: Status) -> list[tuple[str, ItemResult]]:
        out: list[tuple[str, ItemResult]] = []
        if not self.openai:
            data = await self._call("GET", f"/messages/batches/{native.upstream_id}/results")
            for line in _jsonl(data):
                out.append((str(line.get("custom_id")), _anthropic_result(line.get("result"))))
            return out
        for file_id in (status.output_file_id, status.error_file_id):
            if file_id:
                data = await self._call("GET", f"/files/{file_id}/content")
                out += [(str(line.get("custom_id")), _openai_result(line)) for line in _jsonl(data)]
        return out


def _jsonl(data: bytes) -> list[dict[str, Any]]:
    lines = [json.loads(raw) for raw in data.split(b"\n") if raw.strip()]
    return [line for line in lines if isinstance(line, dict)]


def _rfc3339(value: Any) -> float:
    if not isinstance(value, str):
        return 0.0
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _anthropic_result(result: Any) -> ItemResult:
    result = result if isinstance(result, dict) else {}
    kind = result.get("type")
    if kind == "succeeded" and isinstance(result.get("message"), dict):
        return ItemResult("succeeded", 200, body=result["message"])
    if kind in ("canceled", "expired"):
        return ItemResult(kind)
    error = result.get("error") or {}
    inner = error.get("error", error) if isinstance(error, dict) else {}
    etype = inner.get("type") if isinstance(inner, dict) else None
    message = inner.get("message") if isinstance(inner, dict) else None
    error_kind = kind_from_error_type(etype if isinstance(etype, str) else None)
    return _errored(error_kind, str(message or "the upstream reported an error"))


def _openai_result(line: dict[str, Any]) -> ItemResult:
    response = line.get("response")
    if isinstance(response, dict):
        status = int(response.get("status_code") or 500)
        body = response.get("body")
        if 200 <= status < 300 and isinstance(body, dict):
            return ItemResult("succeeded", status, body=body)
        kind, message = parse_error_body(body, status)
        return ItemResult("errored", status, error_kind=kind, message=message)
    error = line.get("error") or {}
    code = error.get("code") if isinstance(error, dict) else None
    if code == "batch_cancelled":
        return ItemResult("canceled")
    if code == "batch_expired":
        return ItemResult("expired")
    said = error.get("message") if isinstance(error, dict) else None
    return _errored(ErrorKind.API_ERROR, str(said or "the upstream reported an error"))


def _errored(kind: ErrorKind, message: str) -> ItemResult:
    status, _ = anthropic_error(kind, message)
    return ItemResult("errored", status, error_kind=kind, message=message)
