"""A real OpenAI Responses API upstream on 127.0.0.1 for end-to-end tests, run in a thread.

`POST /v1/responses` answers with a response object, or (with `"stream": true`) the real event
sequence: `response.created`, output items with their deltas, `response.completed`; no `[DONE]`.
Every answer starts with a reasoning item carrying `encrypted_content` (when the request includes
`reasoning.encrypted_content`); with tools and no `function_call_output` in the input it calls the
first tool, else it says "responses says: <last user text>" (or "tool said: <output>").
`mock-429` answers 429 with retry-after. Requests are recorded.

Strict like the API: every input item is validated against the openai SDK's own param type for its
`type` (`ResponseReasoningItemParam`, `ResponseFunctionToolCallParam`, ...); a missing required
field is the API's 400 "Missing required parameter: 'input[N].<field>'." and any other mismatch a
400 "Invalid value" naming the item.
"""

from __future__ import annotations

import json
import typing
from http.server import BaseHTTPRequestHandler
from typing import Any

from openai.types.responses import EasyInputMessageParam, ResponseInputItemParam
from pydantic import TypeAdapter, ValidationError

from tests.e2e.mock_upstream import LoopbackMock, Recorded

ENCRYPTED = "gAAAAABmock-encrypted-reasoning"


def _item_types() -> dict[str, Any]:
    """The SDK's input item param TypedDict for each `type` literal."""
    table: dict[str, Any] = {}
    for member in typing.get_args(ResponseInputItemParam):
        hint = typing.get_type_hints(member).get("type")
        args = list(typing.get_args(hint))
        while args:  # Literal["x"], or Optional[Literal["x"]]
            arg = args.pop()
            if isinstance(arg, str):
                table.setdefault(arg, member)
            else:
                args += typing.get_args(arg)
    return table


_ITEM_TYPES = _item_types()


def input_error(body: dict[str, Any]) -> str | None:
    """The API's 400 message for the first input item the SDK's types reject, or None."""
    items = body.get("input")
    if isinstance(items, str):
        return None
    if not isinstance(items, list):
        return "Invalid type for 'input': expected a string or an array."
    for n, item in enumerate(items):
        kind = item.get("type", "message") if isinstance(item, dict) else None
        member = EasyInputMessageParam if kind == "message" else _ITEM_TYPES.get(kind or "")
        if member is None:
            return f"Invalid value: '{kind}'. Supported values are listed at 'input[{n}].type'."
        try:
            TypeAdapter(member).validate_python(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
            if first["type"] == "missing":
                return f"Missing required parameter: 'input[{n}]{where}'."
            return f"Invalid 'input[{n}]{where}': {first['msg']}."
    return None


class MockResponses(LoopbackMock):
    root = "/v1"

    @property
    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _Handler


def _input_text(body: dict[str, Any]) -> tuple[str, str | None]:
    """The last user text, and the output of a function call result if the input has one."""
    text, output = "", None
    for item in body.get("input", []):
        if item.get("type") == "function_call_output":
            output = (
                item["output"] if isinstance(item["output"], str) else json.dumps(item["output"])
            )
        elif item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                text = content
            elif isinstance(content, list):
                text = " ".join(p.get("text", "") for p in content if p.get("type") == "input_text")
    return text, output


def _output(body: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if "reasoning.encrypted_content" in body.get("include", []):
        summary = [{"type": "summary_text", "text": "Thinking it over."}]
        items.append(
            {"id": "rs_1", "type": "reasoning", "summary": summary, "encrypted_content": ENCRYPTED}
        )
    text, output = _input_text(body)
    tools = body.get("tools") or []
    if tools and output is None:
        items.append(
            {
                "id": "fc_1",
                "type": "function_call",
                "status": "completed",
                "call_id": "call_mock1",
                "name": tools[0]["name"],
                "arguments": json.dumps({"city": "Paris"}),
            }
        )
        return items
    said = f"tool said: {output}" if output is not None else f"responses says: {text}"
    items.append(
        {
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": said, "annotations": []}],
        }
    )
    return items


def _response(body: dict[str, Any], output: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {
        "id": "resp_mock1",
        "object": "response",
        "created_at": 1741476542,
        "status": status,
        "model": body.get("model"),
        "output": output,
        "incomplete_details": None,
        "error": None,
        "usage": {
            "input_tokens": 30,
            "input_tokens_details": {"cached_tokens": 10},
            "output_tokens": 12,
            "output_tokens_details": {"reasoning_tokens": 4},
            "total_tokens": 42,
        },
    }


def _events(body: dict[str, Any]) -> list[dict[str, Any]]:
    output = _output(body)
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": _response(body, [], "in_progress")},
        {"type": "response.in_progress", "response": _response(body, [], "in_progress")},
    ]
    for n, item in enumerate(output):
        kind = item["type"]
        if kind == "reasoning":
            events.append(
                {
                    "type": "response.output_item.added",
                    "output_index": n,
                    "item": {"id": item["id"], "type": "reasoning", "summary": []},
                }
            )
            part = {"type": "summary_text", "text": ""}
            events.append(
                {
                    "type": "response.reasoning_summary_part.added",
                    "item_id": item["id"],
                    "output_index": n,
                    "summary_index": 0,
                    "part": part,
                }
            )
            for word in item["summary"][0]["text"].split(" "):
                events.append(
                    {
                        "type": "response.reasoning_summary_text.delta",
                        "item_id": item["id"],
                        "output_index": n,
                        "summary_index": 0,
                        "delta": word + " ",
                    }
                )
        elif kind == "message":
            events.append(
                {
                    "type": "response.output_item.added",
                    "output_index": n,
                    "item": {**item, "status": "in_progress", "content": []},
                }
            )
            part = {"type": "output_text", "text": "", "annotations": []}
            events.append(
                {
                    "type": "response.content_part.added",
                    "item_id": item["id"],
                    "output_index": n,
                    "content_index": 0,
                    "part": part,
                }
            )
            text = item["content"][0]["text"]
            for i in range(0, len(text), 4):
                events.append(
                    {
                        "type": "response.output_text.delta",
                        "item_id": item["id"],
                        "output_index": n,
                        "content_index": 0,
                        "delta": text[i : i + 4],
                        "logprobs": [],
                    }
                )
            events.append(
                {
                    "type": "response.output_text.done",
                    "item_id": item["id"],
                    "output_index": n,
                    "content_index": 0,
                    "text": text,
                    "logprobs": [],
                }
            )
        else:
            events.append(
                {
                    "type": "response.output_item.added",
                    "output_index": n,
                    "item": {**item, "status": "in_progress", "arguments": ""},
                }
            )
            args = item["arguments"]
            for i in range(0, len(args), 5):
                events.append(
                    {
                        "type": "response.function_call_arguments.delta",
                        "item_id": item["id"],
                        "output_index": n,
                        "delta": args[i : i + 5],
                    }
                )
            events.append(
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": item["id"],
                    "output_index": n,
                    "name": item["name"],
                    "arguments": args,
                }
            )
        events.append({"type": "response.output_item.done", "output_index": n, "item": item})
    events.append({"type": "response.completed", "response": _response(body, output, "completed")})
    return [{**event, "sequence_number": i} for i, event in enumerate(events)]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mock: MockResponses

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.mock.record(Recorded("POST", self.path, dict(self.headers.items()), body))
        if not self.path.partition("?")[0].endswith("/responses"):  # OpenAI's and Azure's paths
            self._json(
                404, {"error": {"message": "no such route", "type": "invalid_request_error"}}
            )
            return
        if body.get("model") == "mock-429":
            error = {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}
            self._json(429, {"error": error}, {"retry-after": "4"})
            return
        problem = input_error(body)
        if problem is not None:
            error = {"message": problem, "type": "invalid_request_error", "param": "input"}
            self._json(400, {"error": {**error, "code": "missing_required_parameter"}})
            return
        if not body.get("stream"):
            self._json(200, _response(body, _output(body), "completed"))
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for event in _events(body):
            data = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
