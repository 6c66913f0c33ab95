"""A real upstream with the providers' batch APIs on 127.0.0.1: OpenAI Files + Batches and
Anthropic Message Batches, strict about what it is sent, as the real APIs are.

| route                                   | checks, then                                                    |
| --------------------------------------- | --------------------------------------------------------------- |
| POST /v1/files (multipart)              | Bearer key; `purpose=batch`; each line {custom_id, method, url, |
|                                         | body} with a Chat body (`CompletionCreateParamsNonStreaming`)   |
| POST /v1/batches                        | `openai.types.batch_create_params.BatchCreateParams`; the file   |
| GET  /v1/batches[/{id}], POST .../cancel| a `Batch` (checked with `openai.types.Batch`)                    |
| GET  /v1/files/{id}/content             | the output / error file JSONL                                   |
| POST /v1/messages/batches               | x-api-key, anthropic-version; `BatchCreateParams` / `Request` / |
|                                         | `MessageCreateParamsNonStreaming` keys and values                |
| GET  /v1/messages/batches[/{id}], POST .../cancel, GET .../results  | `MessageBatch` objects; JSONL    |

Unknown or missing fields are a 400 `invalid_request_error`, as the real APIs answer. A batch is
`in_progress` until it has been read `polls_to_end` times, then ended: each request whose model is
`mock-400` errored, every other one succeeded with "native reply: <last user text>" and usage
(USAGE_IN, USAGE_OUT). A cancel ends the batch at the next read with the first half of its
requests run and the rest canceled (Anthropic: `canceled` results; OpenAI: left out of the files).
`create_delay` holds the answer to a create after the batch exists (`created` is set then), so a
test can kill the proxy in that window.
"""

from __future__ import annotations

import email.parser
import functools
import json
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any, Required, get_origin, get_type_hints

import anthropic.types.messages as anthropic_batches
import openai.types
from anthropic.types import message_create_params
from anthropic.types.messages import batch_create_params as anthropic_create
from openai.types import batch_create_params as openai_create
from openai.types.chat import completion_create_params
from pydantic import TypeAdapter, ValidationError

from tests.e2e.mock_upstream import UPSTREAM_KEY, LoopbackMock, Recorded, last_user_text

USAGE_IN = 100
USAGE_OUT = 20
CHAT_PARAMS = completion_create_params.CompletionCreateParamsNonStreaming
MESSAGE_PARAMS = message_create_params.MessageCreateParamsNonStreaming


class Invalid(Exception):
    pass


def check_typed(td: Any, data: Any, where: str) -> None:
    """Unknown or missing keys of a TypedDict, then its values, as the API's validation would."""
    if not isinstance(data, dict):
        raise Invalid(f"{where}: expected an object")
    hints = get_type_hints(td, include_extras=True)
    unknown = sorted(set(data) - set(hints))
    if unknown:
        raise Invalid(f"{where}.{unknown[0]}: Extra inputs are not permitted")
    missing = sorted(k for k, v in hints.items() if get_origin(v) is Required and k not in data)
    if missing:
        raise Invalid(f"{where}.{missing[0]}: Field required")
    try:
        _adapter(td).validate_python(data)
    except ValidationError as exc:
        raise Invalid(f"{where}: {exc.errors()[0]['msg']}") from None


@functools.cache
def _adapter(td: Any) -> TypeAdapter[Any]:
    return TypeAdapter(td)


def _iso(ts: float | None) -> str | None:
    return (
        None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
    )


class MockBatchAPIs(LoopbackMock):
    root = ""

    def __init__(self, polls_to_end: int = 3, create_delay: float = 0.0) -> None:
        super().__init__()
        self.polls_to_end = polls_to_end
        self.create_delay = create_delay
        self.created = threading.Event()
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}  # id -> state (both APIs)
        self.creates: dict[str, int] = {"openai": 0, "anthropic": 0}
        self.cancels: list[str] = []
        self.state_lock = threading.Lock()

    @property
    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _Handler

    # -- processing -----------------------------------------------------------------------------

    def new_batch(self, api: str, requests: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        prefix = "msgbatch_" if api == "anthropic" else "batch_"
        state = {
            "id": prefix + uuid.uuid4().hex[:20],
            "api": api,
            "requests": requests,
            "created": time.time(),
            "polls": 0,
            "cancel": None,
            "ended": None,
            "results": None,
            **extra,
        }
        with self.state_lock:
            self.batches[state["id"]] = state
            self.creates[api] += 1
        return state

    def advance(self, state: dict[str, Any]) -> None:
        with self.state_lock:
            if state["ended"] is not None:
                return
            state["polls"] += 1
            if state["cancel"] is not None and state["polls"] > 1:
                run = len(state["requests"]) // 2 + len(state["requests"]) % 2
            elif state["polls"] >= self.polls_to_end:
                run = len(state["requests"])
            else:
                return
            state["results"] = [
                (req["custom_id"], _outcome(req) if i < run else None)
                for i, req in enumerate(state["requests"])
            ]
            state["ended"] = time.time()


def _outcome(req: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """(succeeded, reply or error) for one request (its params / body)."""
    body = req.get("params") or req.get("body") or {}
    if body.get("model") == "mock-400":
        return False, {"type": "invalid_request_error", "message": "mock-400 is refused"}
    return True, {"text": f"native reply: {last_user_text(body)}", "model": body.get("model")}


# -- the wire objects -------------------------------------------------------------------------------


def openai_batch(state: dict[str, Any]) -> dict[str, Any]:
    ended, cancel = state["ended"], state["cancel"]
    results = state["results"] or []
    ok = sum(1 for _, r in results if r is not None and r[0])
    failed = sum(1 for _, r in results if r is not None and not r[0])
    status = "in_progress"
    if ended is not None:
        status = "cancelled" if cancel is not None else "completed"
    elif cancel is not None:
        status = "cancelling"
    created = int(state["created"])
    batch = {
        "id": state["id"],
        "object": "batch",
        "endpoint": state["endpoint"],
        "errors": None,
        "input_file_id": state["input_file_id"],
        "completion_window": "24h",
        "status": status,
        "output_file_id": state["id"] + "-out" if ended and ok else None,
        "error_file_id": state["id"] + "-err" if ended and failed else None,
        "created_at": created,
        "in_progress_at": created,
        "expires_at": created + 86400,
        "finalizing_at": int(ended) if ended else None,
        "completed_at": int(ended) if ended and cancel is None else None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": int(cancel) if cancel else None,
        "cancelled_at": int(ended) if ended and cancel else None,
        "request_counts": {"total": len(state["requests"]), "completed": ok, "failed": failed},
        "metadata": state.get("metadata"),
    }
    openai.types.Batch.model_validate(batch)  # the mock speaks the real shape
    return batch


def openai_file(state: dict[str, Any], errors: bool) -> bytes:
    lines = []
    for custom_id, result in state["results"] or []:
        if result is None or result[0] == errors:
            continue
        ok, data = result
        rid = "req_" + uuid.uuid4().hex[:12]
        if ok:
            body: dict[str, Any] = {
                "id": "chatcmpl-" + uuid.uuid4().hex[:12],
                "object": "chat.completion",
                "created": int(time.time()),
                "model": data["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": data["text"]},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": USAGE_IN,
                    "completion_tokens": USAGE_OUT,
                    "total_tokens": USAGE_IN + USAGE_OUT,
                },
            }
            response = {"status_code": 200, "request_id": rid, "body": body}
        else:
            error = {"message": data["message"], "type": data["type"], "param": None, "code": None}
            response = {"status_code": 400, "request_id": rid, "body": {"error": error}}
        line = {"id": "batch_req_" + uuid.uuid4().hex[:12], "custom_id": custom_id}
        lines.append({**line, "response": response, "error": None})
    return b"".join(json.dumps(x).encode() + b"\n" for x in lines)


def anthropic_batch(state: dict[str, Any], base: str) -> dict[str, Any]:
    ended, cancel = state["ended"], state["cancel"]
    counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    if ended is None:
        counts["processing"] = len(state["requests"])
    for _, result in state["results"] or []:
        kind = "canceled" if result is None else "succeeded" if result[0] else "errored"
        counts[kind] += 1
    status = "ended" if ended else "canceling" if cancel else "in_progress"
    batch = {
        "id": state["id"],
        "type": "message_batch",
        "processing_status": status,
        "request_counts": counts,
        "created_at": _iso(state["created"]),
        "expires_at": _iso(state["created"] + 86400),
        "ended_at": _iso(ended),
        "cancel_initiated_at": _iso(cancel),
        "archived_at": None,
        "results_url": f"{base}/v1/messages/batches/{state['id']}/results" if ended else None,
    }
    anthropic_batches.MessageBatch.model_validate(batch)
    return batch


def anthropic_results(state: dict[str, Any]) -> bytes:
    lines = []
    for custom_id, result in state["results"] or []:
        if result is None:
            out: dict[str, Any] = {"type": "canceled"}
        elif result[0]:
            message = {
                "id": "msg_" + uuid.uuid4().hex[:12],
                "type": "message",
                "role": "assistant",
                "model": result[1]["model"],
                "content": [{"type": "text", "text": result[1]["text"]}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": USAGE_IN, "output_tokens": USAGE_OUT},
            }
            out = {"type": "succeeded", "message": message}
        else:
            out = {"type": "errored", "error": {"type": "error", "error": result[1]}}
        lines.append({"custom_id": custom_id, "result": out})
    return b"".join(json.dumps(x).encode() + b"\n" for x in lines)


# -- HTTP -------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    mock: MockBatchAPIs
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, etype: str, message: str, anthropic: bool) -> None:
        if anthropic:
            self._send(status, {"type": "error", "error": {"type": etype, "message": message}})
        else:
            error = {"message": message, "type": etype, "param": None, "code": None}
            self._send(status, {"error": error})

    def _read(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        raw = self._read()
        path, _, _ = self.path.partition("?")
        anthropic = path.startswith("/v1/messages/")
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.mock.record(Recorded(method, self.path, headers, raw))
        if anthropic:
            ok = headers.get("x-api-key") == UPSTREAM_KEY and "anthropic-version" in headers
        else:
            ok = headers.get("authorization") == f"Bearer {UPSTREAM_KEY}"
        if not ok:
            self._error(401, "authentication_error", "invalid x-api-key", anthropic)
            return
        try:
            if anthropic:
                self._anthropic(method, path, raw)
            else:
                self._openai(method, path, raw, headers)
        except Invalid as exc:
            self._error(400, "invalid_request_error", str(exc), anthropic)
        except KeyError as exc:
            self._error(404, "not_found_error", f"not found: {exc}", anthropic)

    # -- OpenAI -------------------------------------------------------------------------------------

    def _openai(self, method: str, path: str, raw: bytes, headers: dict[str, str]) -> None:
        mock = self.mock
        parts = path.strip("/").split("/")  # v1, files|batches, id, ...
        if method == "POST" and parts == ["v1", "files"]:
            self._send(200, self._upload(raw, headers.get("content-type", "")))
        elif method == "POST" and parts == ["v1", "batches"]:
            body = json.loads(raw or b"null")
            check_typed(openai_create.BatchCreateParams, body, "body")
            if body["endpoint"] != "/v1/chat/completions" or body["completion_window"] != "24h":
                raise Invalid("endpoint / completion_window not supported by this mock")
            content = mock.files[body["input_file_id"]]
            requests = [json.loads(x) for x in content.splitlines() if x.strip()]
            state = mock.new_batch(
                "openai",
                requests,
                endpoint=body["endpoint"],
                input_file_id=body["input_file_id"],
                metadata=body.get("metadata"),
            )
            self._created()
            self._send(200, openai_batch(state))
        elif method == "GET" and parts == ["v1", "batches"]:
            with mock.state_lock:
                mine = [s for s in mock.batches.values() if s["api"] == "openai"]
            data = [openai_batch(s) for s in sorted(mine, key=lambda s: -s["created"])]
            self._send(200, {"object": "list", "data": data, "has_more": False})
        elif method == "GET" and len(parts) == 3 and parts[1] == "batches":
            state = mock.batches[parts[2]]
            mock.advance(state)
            self._send(200, openai_batch(state))
        elif (
            method == "POST" and len(parts) == 4 and parts[1] == "batches" and parts[3] == "cancel"
        ):
            state = mock.batches[parts[2]]
            state["cancel"] = state["cancel"] or time.time()
            mock.cancels.append(state["id"])
            self._send(200, openai_batch(state))
        elif method == "GET" and len(parts) == 4 and parts[1] == "files" and parts[3] == "content":
            batch_id, _, which = parts[2].rpartition("-")
            self._send(
                200, openai_file(mock.batches[batch_id], which == "err"), "application/jsonl"
            )
        else:
            raise KeyError(path)

    def _upload(self, raw: bytes, content_type: str) -> dict[str, Any]:
        if not content_type.startswith("multipart/form-data"):
            raise Invalid("expected multipart/form-data")
        message = email.parser.BytesParser().parsebytes(
            b"content-type: " + content_type.encode() + b"\r\n\r\n" + raw
        )
        fields: dict[str, tuple[str | None, bytes]] = {}
        for part in message.get_payload():  # type: ignore[union-attr]
            name = part.get_param("name", header="content-disposition")
            fields[str(name)] = (part.get_filename(), part.get_payload(decode=True))
        unknown = sorted(set(fields) - {"file", "purpose", "expires_after"})
        if unknown or "file" not in fields or fields.get("purpose", (None, b""))[1] != b"batch":
            raise Invalid(
                f"multipart fields: expected file and purpose=batch, got {sorted(fields)}"
            )
        filename, content = fields["file"]
        for number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            item = json.loads(line)
            if set(item) != {"custom_id", "method", "url", "body"} or item["method"] != "POST":
                raise Invalid(f"line {number}: expected custom_id, method POST, url and body")
            check_typed(CHAT_PARAMS, item["body"], f"line {number}: body")
        file_id = "file-" + uuid.uuid4().hex[:20]
        self.mock.files[file_id] = content
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename or "upload.jsonl",
            "purpose": "batch",
            "status": "processed",
        }

    def _created(self) -> None:
        self.mock.created.set()
        if self.mock.create_delay:
            time.sleep(self.mock.create_delay)

    # -- Anthropic ----------------------------------------------------------------------------------

    def _anthropic(self, method: str, path: str, raw: bytes) -> None:
        mock = self.mock
        base = f"http://{self.headers.get('host')}"
        parts = path.strip("/").split("/")  # v1, messages, batches, id, ...
        if method == "POST" and parts == ["v1", "messages", "batches"]:
            body = json.loads(raw or b"null")
            if not isinstance(body, dict) or set(body) != {"requests"}:
                raise Invalid("body: expected exactly {requests}")
            requests = list(body["requests"])
            for i, req in enumerate(requests):
                check_typed(anthropic_create.Request, req, f"requests.{i}")
                check_typed(MESSAGE_PARAMS, req["params"], f"requests.{i}.params")
            state = mock.new_batch("anthropic", requests)
            self._created()
            self._send(200, anthropic_batch(state, base))
        elif method == "GET" and parts == ["v1", "messages", "batches"]:
            with mock.state_lock:
                mine = [s for s in mock.batches.values() if s["api"] == "anthropic"]
            data = [anthropic_batch(s, base) for s in sorted(mine, key=lambda s: -s["created"])]
            first = data[0]["id"] if data else None
            last = data[-1]["id"] if data else None
            self._send(200, {"data": data, "has_more": False, "first_id": first, "last_id": last})
        elif method == "GET" and len(parts) == 4:
            state = mock.batches[parts[3]]
            mock.advance(state)
            self._send(200, anthropic_batch(state, base))
        elif method == "POST" and len(parts) == 5 and parts[4] == "cancel":
            state = mock.batches[parts[3]]
            state["cancel"] = state["cancel"] or time.time()
            mock.cancels.append(state["id"])
            self._send(200, anthropic_batch(state, base))
        elif method == "GET" and len(parts) == 5 and parts[4] == "results":
            state = mock.batches[parts[3]]
            if state["ended"] is None:
                raise Invalid("results are not available until the batch has ended")
            self._send(200, anthropic_results(state), "application/x-jsonl")
        else:
            raise KeyError(path)
