"""A real Anthropic Messages upstream on 127.0.0.1 for end-to-end tests, run in a thread.

It answers like the Anthropic API (JSON messages, SSE with `event:` lines and pings, error bodies)
and behaves by the requested model name:

| model          | behaviour                                                                   |
| -------------- | --------------------------------------------------------------------------- |
| anything else  | a thinking block (signed) and "claude says: <last user text>"; with tools   |
|                | and no tool result yet, a signed thinking block and a tool_use instead      |
| mock-429       | 429 rate_limit_error with retry-after: 3                                    |
| mock-529       | 529 overloaded_error                                                        |

`POST /v1/messages/count_tokens` answers 42. Every request is recorded with its headers.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.e2e.mock_upstream import LoopbackMock, Recorded, last_user_text

SIGNATURE = "EqQBCkYIBxgCKkBsig-from-anthropic=="
COUNT = 42


class MockAnthropic(LoopbackMock):
    root = ""

    @property
    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _Handler


def _content(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages", [])
    last = messages[-1]["content"] if messages else ""
    results = [
        b for b in (last if isinstance(last, list) else []) if b.get("type") == "tool_result"
    ]
    thinking = {"type": "thinking", "thinking": "Let me think.", "signature": SIGNATURE}
    if body.get("tools") and not results:
        tool = body["tools"][0]["name"]
        call = {"type": "tool_use", "id": "toolu_01Mock", "name": tool, "input": {"city": "Paris"}}
        return [thinking, call]
    if results:
        inner = results[0]["content"]
        text = inner if isinstance(inner, str) else " ".join(b.get("text", "") for b in inner)
        return [thinking, {"type": "text", "text": f"tool said: {text}"}]
    return [thinking, {"type": "text", "text": f"claude says: {last_user_text(body)}"}]


def _message(body: dict[str, Any]) -> dict[str, Any]:
    content = _content(body)
    return {
        "id": "msg_01Mock",
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": content,
        "stop_reason": "tool_use" if content[-1]["type"] == "tool_use" else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 21, "output_tokens": 9, "cache_read_input_tokens": 5},
    }


def _events(message: dict[str, Any]) -> list[dict[str, Any]]:
    start = {**message, "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": 21, "output_tokens": 1, "cache_read_input_tokens": 5}
    out: list[dict[str, Any]] = [{"type": "message_start", "message": start}, {"type": "ping"}]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        if kind == "thinking":
            opened = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [
                {"type": "thinking_delta", "thinking": block["thinking"]},
                {"type": "signature_delta", "signature": block["signature"]},
            ]
        elif kind == "text":
            opened = {"type": "text", "text": ""}
            text = block["text"]
            deltas = [
                {"type": "text_delta", "text": text[i : i + 5]} for i in range(0, len(text), 5)
            ]
        else:
            opened = {**block, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": json.dumps(block["input"])}]
        out.append({"type": "content_block_start", "index": index, "content_block": opened})
        out += [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]
        out.append({"type": "content_block_stop", "index": index})
    out.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": 9},
        }
    )
    out.append({"type": "message_stop"})
    return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mock: MockAnthropic

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.send_header("request-id", "req_upstream_1")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def _error(self, status: int, etype: str, headers: dict[str, str] | None = None) -> None:
        body = {"type": "error", "error": {"type": etype, "message": f"upstream {etype}"}}
        self._json(status, body, headers)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.mock.record(Recorded("POST", self.path, dict(self.headers.items()), body))
        if self.path.startswith("/v1/messages/count_tokens"):
            self._json(200, {"input_tokens": COUNT})
            return
        if not self.path.startswith("/v1/messages"):
            self._error(404, "not_found_error")
            return
        model = body.get("model")
        if model == "mock-429":
            self._error(429, "rate_limit_error", {"retry-after": "3"})
            return
        if model == "mock-529":
            self._error(529, "overloaded_error")
            return
        message = _message(body)
        if not body.get("stream"):
            self._json(200, message)
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for event in _events(message):
            data = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
