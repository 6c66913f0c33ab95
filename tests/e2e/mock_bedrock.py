"""A real Bedrock Runtime upstream on 127.0.0.1 for tests: it checks every SigV4 signature.

The handler recomputes each request's signature with botocore from `CREDS` (a mismatch is a 403
InvalidSignatureException, recorded in `failures`), validates Converse bodies against botocore's
own input shape, holds InvokeModel bodies to the fields and betas Bedrock documents for Claude
(`invoke_problem`), and answers the four operations in their wire formats: JSON for invoke and
converse, the binary event stream (cut every 37 bytes, across message boundaries) for the streams.
Model names pick faults: `throttled` (429), `unavailable` (503), `dies` (an exception mid-stream).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.session import get_session
from botocore.validate import ParamValidator

from anyllm_cli.backends.eventstream import encode_message

CREDS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token")
REGION = "us-west-2"
CLAUDE = "us.anthropic.claude-sonnet-4-20250514-v1:0"
SERVICE_MODEL = get_session().get_service_model("bedrock-runtime")
ANTHROPIC_MESSAGE = {
    "id": "msg_bdrk_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-20250514",
    "content": [{"type": "text", "text": "Hello from Bedrock"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 5, "output_tokens": 4},
}
ANTHROPIC_EVENTS: list[dict[str, Any]] = [
    {"type": "message_start", "message": {**ANTHROPIC_MESSAGE, "content": [], "stop_reason": None}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hé"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
    {"type": "message_stop", "amazon-bedrock-invocationMetrics": {"inputTokenCount": 5}},
]
CONVERSE_EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("messageStart", {"role": "assistant"}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Let me "}}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "check."}}),
    ("contentBlockStop", {"contentBlockIndex": 0}),
    (
        "contentBlockStart",
        {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tu_1", "name": "weather"}}},
    ),
    ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"city":'}}}),
    ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '"Oslo"}'}}}),
    ("contentBlockStop", {"contentBlockIndex": 1}),
    ("messageStop", {"stopReason": "tool_use"}),
    ("metadata", {"usage": {"inputTokens": 20, "outputTokens": 9, "totalTokens": 29}}),
]


def event(name: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": name, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, json.dumps({**payload, "p": "abcdef"}).encode())


def exception(name: str, message: str) -> bytes:
    headers = {":exception-type": name, ":content-type": "application/json"}
    return encode_message(
        {**headers, ":message-type": "exception"}, json.dumps({"message": message}).encode()
    )


def chunk(inner: dict[str, Any]) -> bytes:
    return event("chunk", {"bytes": base64.b64encode(json.dumps(inner).encode()).decode()})


class Upstream:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str], bytes]] = []
        self.failures: list[str] = []


def verify(handler: BaseHTTPRequestHandler, body: bytes) -> str | None:
    """None when the SigV4 signature is what botocore computes for these bytes; else why not."""
    auth = handler.headers.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return "no SigV4 authorization"
    fields = dict(
        p.strip().split("=", 1) for p in auth.removeprefix("AWS4-HMAC-SHA256 ").split(",")
    )
    scope = fields["Credential"].split("/")
    if scope[0] != CREDS.access_key or scope[2:] != [REGION, "bedrock", "aws4_request"]:
        return f"bad scope {scope}"
    signed = fields["SignedHeaders"].split(";")
    if not {"host", "x-amz-date", "x-amz-security-token", "content-type"} <= set(signed):
        return f"unsigned essentials: {signed}"
    headers = {name: handler.headers[name] for name in signed if name != "host"}
    url = f"http://{handler.headers['host']}{handler.path}"
    request = AWSRequest(method=handler.command, url=url, data=body, headers=headers)
    request.context["timestamp"] = handler.headers["x-amz-date"]
    signer = SigV4Auth(CREDS, "bedrock", REGION)
    expected = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    return None if expected == fields["Signature"] else "signature mismatch"


# What Bedrock documents for Claude's InvokeModel body, written out here on purpose (not imported).
INVOKE_FIELDS = {
    "anthropic_version",
    "anthropic_beta",
    "max_tokens",
    "messages",
    "system",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "tools",
    "tool_choice",
    "thinking",
}
INVOKE_BETAS = {
    "interleaved-thinking-2025-05-14",
    "context-1m-2025-08-07",
    "token-efficient-tools-2025-02-19",
    "output-128k-2025-02-19",
}


def invoke_problem(data: dict[str, Any]) -> str | None:
    """Bedrock's 400 for an Anthropic body it would refuse, or None."""
    if data.get("anthropic_version") != "bedrock-2023-05-31":
        return "Malformed input request: #: required key [anthropic_version] not found"
    extra = sorted(set(data) - INVOKE_FIELDS)
    if extra:
        return f"Malformed input request: #: extraneous key [{extra[0]}] is not permitted"
    for beta in data.get("anthropic_beta", []):
        if beta not in INVOKE_BETAS:
            return f"invalid beta flag: {beta}"
    for n, message in enumerate(data.get("messages", [])):
        if message.get("role") not in ("user", "assistant"):
            return f"messages.{n}.role: Input should be 'user' or 'assistant'"
    return None


def make_handler(upstream: Upstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            upstream.seen.append((self.path, dict(self.headers.items()), body))
            problem = verify(self, body)
            if problem:
                upstream.failures.append(problem)
                return self.error(403, "InvalidSignatureException", problem)
            _, _, quoted, operation = self.path.split("/")
            model = unquote(quoted)
            data = json.loads(body)
            if model == "throttled":
                return self.error(429, "ThrottlingException", "Too many requests")
            if model == "unavailable":
                return self.error(503, "ServiceUnavailableException", "busy")
            if operation in ("converse", "converse-stream"):
                report = ParamValidator().validate(
                    {"modelId": model, **data},
                    SERVICE_MODEL.operation_model("Converse").input_shape,
                )
                if report.has_errors():
                    upstream.failures.append(report.generate_report())
                    return self.error(400, "ValidationException", report.generate_report())
            else:
                problem = invoke_problem(data)
                if problem:
                    upstream.failures.append(problem)
                    return self.error(400, "ValidationException", problem)
            if operation == "invoke":
                return self.json(ANTHROPIC_MESSAGE)
            if operation == "converse":
                return self.json(
                    {
                        "output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}},
                        "stopReason": "end_turn",
                        "usage": {"inputTokens": 3, "outputTokens": 1, "totalTokens": 4},
                        "metrics": {"latencyMs": 10},
                    }
                )
            if operation == "invoke-with-response-stream":
                frames = [chunk(e) for e in ANTHROPIC_EVENTS]
                if model == "dies":
                    frames = [*frames[:3], exception("throttlingException", "slow down")]
            else:
                frames = [event(n, p) for n, p in CONVERSE_EVENTS]
                if model == "dies":
                    frames = [*frames[:2], exception("modelStreamErrorException", "boom")]
            self.stream(b"".join(frames))

        def error(self, status: int, name: str, message: str) -> None:
            payload = json.dumps({"message": message}).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("x-amzn-ErrorType", f"{name}:http://internal.amazon.com/coral/")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def json(self, obj: dict[str, Any]) -> None:
            payload = json.dumps(obj).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def stream(self, data: bytes) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/vnd.amazon.eventstream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for start in range(0, len(data), 37):  # cut across message boundaries
                piece = data[start : start + 37]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

    return Handler


@contextmanager
def serve() -> Iterator[tuple[Upstream, str]]:
    """The mock on a free loopback port: its state and its base URL."""
    state = Upstream()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
