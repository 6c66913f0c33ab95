"""A real OpenAI-compatible upstream on 127.0.0.1 for end-to-end tests, run in a thread.

It speaks HTTP/1.1 with keep-alive and chunked streaming (the standard library's server; no
framework) and behaves by the requested model name, so every test picks its scenario per request:

| model                 | behaviour                                                                   |
| --------------------- | --------------------------------------------------------------------------- |
| anything else         | "mock reply: <last user text>", streamed in small pieces, with usage        |
| mock-tools            | a tool call to the first tool ({"city": "Paris"}); after a tool result,      |
|                       | "tool said: <result>"                                                       |
| mock-reasoning        | reasoning_content deltas, then text                                         |
| mock-429-once-<x>     | 429 (retry-after-ms: 10) the first time for that name, then a normal reply   |
| mock-429              | always 429 with retry-after: 7                                              |
| mock-400 / 500 / 503  | that status with an OpenAI error body                                       |
| mock-die              | a 200 stream that stops mid-way: the connection is cut, no end chunk         |
| mock-stall            | a 200 stream that sends one chunk, then nothing, until the connection closes |
| mock-slow             | a chunk every 50 ms for up to 10 s; a closed connection is recorded          |
| mock-finite-slow      | 20 chunks 50 ms apart, then a normal end                                    |

`POST /v1/embeddings` and `POST /v1/responses` (not streamed) answer too, strictly: the body must
pass the openai SDK's params type (`EmbeddingCreateParams`, `ResponseCreateParamsNonStreaming`, and
each Responses input item its own param type) with no unknown argument, else a 400 like the API's.
The error models above apply to them as well.

Every request is recorded (path, headers, body); `closed` lists the tags (last user text) of streams
whose connection the proxy closed. Every wait is bounded.
"""

from __future__ import annotations

import base64
import json
import select
import socket
import struct
import threading
import time
import typing
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from openai.types.embedding_create_params import EmbeddingCreateParams
from openai.types.responses.response_create_params import ResponseCreateParamsNonStreaming
from pydantic import TypeAdapter, ValidationError

UPSTREAM_KEY = "upstream-secret-key"
RATELIMIT_HEADERS = {
    "x-ratelimit-limit-requests": "100",
    "x-ratelimit-remaining-requests": "99",
    "x-ratelimit-reset-requests": "1s",
    "x-ratelimit-limit-tokens": "10000",
    "x-ratelimit-remaining-tokens": "9000",
    "x-ratelimit-reset-tokens": "6m0s",
}


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages", [])):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""


class LoopbackMock:
    """A threaded HTTP server on 127.0.0.1:0 that records requests; subclasses give the handler
    (`handler`, whose `mock` attribute is set to the instance) and the API root (`root`)."""

    handler: type[BaseHTTPRequestHandler]
    root = ""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    def start(self) -> str:
        handler = type("Handler", (self.handler,), {"mock": self})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}{self.root}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)

    def last(self, path: str = "") -> Recorded:
        """The newest request, or the newest whose path starts with `path`."""
        with self._lock:
            return next(r for r in reversed(self.requests) if r.path.startswith(path))


def _params_types() -> dict[bool, tuple[TypeAdapter[Any], frozenset[str]]]:
    """The openai SDK's request params types, for embeddings (True) and responses (False), and the
    arguments each knows."""
    out: dict[bool, tuple[TypeAdapter[Any], frozenset[str]]] = {}
    for embeddings, params in (
        (True, EmbeddingCreateParams),
        (False, ResponseCreateParamsNonStreaming),
    ):
        out[embeddings] = (TypeAdapter(params), frozenset(typing.get_type_hints(params)))
    return out


_NATIVE = _params_types()


def native_body_error(body: dict[str, Any], *, embeddings: bool) -> str | None:
    """The API's 400 message for an embeddings or (non-streaming) responses body the openai SDK's
    params type rejects, or None."""
    adapter, known = _NATIVE[embeddings]
    unknown = sorted(set(body) - known)
    if unknown:
        return f"Unrecognized request argument supplied: {unknown[0]}"
    if embeddings and not isinstance(body.get("input"), str | list):
        return "'input' must be a string or an array"
    if body.get("stream"):
        return "this mock answers non-streaming requests here"
    try:
        adapter.validate_python(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        if first["type"] == "missing":
            return f"Missing required parameter: '{where}'."
        return f"Invalid '{where}': {first['msg']}."
    return None


class MockUpstream:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.closed: list[str] = []
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()
        self.url = ""

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> str:
        upstream = self

        class Handler(_Handler):
            mock = upstream

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        return self.url

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- records ---------------------------------------------------------------------------------

    def record(self, request: Recorded) -> int:
        with self._lock:
            self.requests.append(request)
            model = str(request.body.get("model", "")) if isinstance(request.body, dict) else ""
            self._seen[model] = self._seen.get(model, 0) + 1
            return self._seen[model]

    def mark_closed(self, tag: str) -> None:
        with self._changed:
            self.closed.append(tag)
            self._changed.notify_all()

    def wait_closed(self, tag: str, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while tag not in self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def bodies(self, model: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r.body for r in self.requests if r.body.get("model") == model]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mock: MockUpstream

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    # -- HTTP plumbing ---------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    def _error(
        self, status: int, etype: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        body = {"error": {"message": message, "type": etype, "param": None, "code": None}}
        self._json(status, body, headers)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        for key, value in RATELIMIT_HEADERS.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.flush()

    def _write(self, data: bytes) -> None:
        """One HTTP chunk, cut in two writes to exercise re-chunking downstream."""
        half = max(1, len(data) // 2)
        for piece in (data[:half], data[half:]):
            if piece:
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                self.wfile.flush()

    def _event(self, obj: dict[str, Any] | str) -> None:
        text = obj if isinstance(obj, str) else json.dumps(obj)
        self._write(f"data: {text}\n\n".encode())

    def _end_stream(self) -> None:
        self._event("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _peer_closed(self, wait: float) -> bool:
        """True when the proxy closed the connection (readable with no data), within `wait`."""
        ready, _, _ = select.select([self.connection], [], [], wait)
        if not ready:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    # -- routes ----------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self.mock.record(Recorded("GET", self.path, dict(self.headers.items()), {}))
        if self.path.startswith("/v1/models"):
            self._json(200, {"object": "list", "data": [{"id": "mock-model", "object": "model"}]})
            return
        self._error(404, "not_found_error", f"no route {self.path}")

    def do_POST(self) -> None:
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            self._error(400, "invalid_request_error", "not JSON")
            return
        count = self.mock.record(Recorded("POST", self.path, dict(self.headers.items()), body))
        if self.path in ("/v1/embeddings", "/v1/responses"):
            if not self._refused(body, count):
                self._native(body)
            return
        if self.path != "/v1/chat/completions":
            self._error(404, "not_found_error", f"no route {self.path}")
            return
        self._chat(body, count)

    def _refused(self, body: dict[str, Any], count: int) -> bool:
        """The error models' answers (mock-400, mock-429, ...); False for any other model."""
        model = str(body.get("model", ""))
        errors = {"mock-400": 400, "mock-500": 500, "mock-503": 503}
        if model in errors:
            etype = "invalid_request_error" if model == "mock-400" else "server_error"
            self._error(errors[model], etype, f"upstream says {errors[model]}")
            return True
        if model == "mock-429" or (model.startswith("mock-429-once") and count == 1):
            headers = {"retry-after": "7"} if model == "mock-429" else {"retry-after-ms": "10"}
            self._error(429, "rate_limit_error", "slow down", headers)
            return True
        return False

    def _native(self, body: dict[str, Any]) -> None:
        """`/v1/embeddings` and `/v1/responses` (not streamed), strict like the API: the body
        must pass the openai SDK's own params type, with no argument it does not know."""
        from tests.e2e.mock_responses import _output, _response, input_error

        embeddings = self.path == "/v1/embeddings"
        problem = native_body_error(body, embeddings=embeddings)
        if problem is None and not embeddings:
            problem = input_error(body)
        if problem is not None:
            self._error(400, "invalid_request_error", problem)
            return
        if not embeddings:
            self._json(200, _response(body, _output(body), "completed"), RATELIMIT_HEADERS)
            return
        inputs = [body["input"]] if isinstance(body["input"], str) else list(body["input"])
        vectors = [[0.5, float(len(str(x)))] for x in inputs]
        if body.get("encoding_format") == "base64":  # little-endian float32s, as the API sends
            vectors = [base64.b64encode(struct.pack("<2f", *v)).decode() for v in vectors]  # type: ignore[misc]
        data = [{"object": "embedding", "index": n, "embedding": v} for n, v in enumerate(vectors)]
        usage = {"prompt_tokens": 3 * len(inputs), "total_tokens": 3 * len(inputs)}
        reply = {"object": "list", "model": body["model"], "data": data, "usage": usage}
        self._json(200, reply, RATELIMIT_HEADERS)

    def _chat(self, body: dict[str, Any], count: int) -> None:
        if self._refused(body, count):
            return
        model = str(body.get("model", ""))
        if body.get("stream"):
            self._stream(body, model)
        else:
            self._reply(body, model)

    # -- answers ---------------------------------------------------------------------------------

    def _answer(self, body: dict[str, Any], model: str) -> tuple[str, list[dict[str, Any]], str]:
        """(text, tool calls, reasoning) for a request."""
        messages = body.get("messages", [])
        if model == "mock-tools":
            if messages and messages[-1].get("role") == "tool":
                content = messages[-1].get("content")
                if isinstance(content, list):
                    content = " ".join(p.get("text", "") for p in content)
                return f"tool said: {content}", [], ""
            name = body["tools"][0]["function"]["name"]
            call = {
                "id": "call_mock_1",
                "type": "function",
                "function": {"name": name, "arguments": '{"city": "Paris"}'},
            }
            return "", [call], ""
        reasoning = "Let me think about this." if model == "mock-reasoning" else ""
        return f"mock reply: {last_user_text(body)}", [], reasoning

    def _reply(self, body: dict[str, Any], model: str) -> None:
        text, calls, reasoning = self._answer(body, model)
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = calls
        if reasoning:
            message["reasoning_content"] = reasoning
        self._json(
            200,
            {
                "id": "chatcmpl-mock",
                "object": "chat.completion",
                "created": 1,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if calls else "stop",
                    }
                ],
                "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
            },
            RATELIMIT_HEADERS,
        )

    def _stream(self, body: dict[str, Any], model: str) -> None:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": "chatcmpl-mock",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        self._start_stream()
        self._event(chunk({"role": "assistant", "content": ""}))
        tag = last_user_text(body)
        try:
            if model in ("mock-slow", "mock-stall", "mock-die", "mock-finite-slow"):
                self._special(model, tag, chunk)
                if model != "mock-finite-slow":
                    return
                self._event(chunk({}, "stop"))
                self._end_stream()
                return
            text, calls, reasoning = self._answer(body, model)
            for i in range(0, len(reasoning), 5):
                self._event(chunk({"reasoning_content": reasoning[i : i + 5]}))
            for i in range(0, len(text), 4):
                self._event(chunk({"content": text[i : i + 4]}))
            for n, call in enumerate(calls):
                head = {
                    "index": n,
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""},
                }
                self._event(chunk({"tool_calls": [head]}))
                args = call["function"]["arguments"]
                for i in range(0, len(args), 6):
                    piece = {"index": n, "function": {"arguments": args[i : i + 6]}}
                    self._event(chunk({"tool_calls": [piece]}))
            self._event(chunk({}, "tool_calls" if calls else "stop"))
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
                self._event({**chunk({}), "choices": [], "usage": usage})
            self._end_stream()
        except (BrokenPipeError, ConnectionResetError):
            self.mock.mark_closed(tag)
            self.close_connection = True

    def _special(self, model: str, tag: str, chunk: Any) -> None:
        deadline = time.monotonic() + 10
        if model == "mock-die":
            for word in ("partial ", "answer "):
                self._event(chunk({"content": word}))
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if model == "mock-stall":
            self._event(chunk({"content": "thinking..."}))
            while time.monotonic() < deadline and not self.mock.stopping.is_set():
                if self._peer_closed(0.05):
                    self.mock.mark_closed(tag)
                    break
            self.close_connection = True
            return
        limit = 20 if model == "mock-finite-slow" else 200
        for n in range(limit):
            if time.monotonic() > deadline or self.mock.stopping.is_set():
                break
            self._event(chunk({"content": f"tick {n} "}))
            if self._peer_closed(0.05):
                raise ConnectionResetError
