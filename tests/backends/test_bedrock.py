"""The Bedrock backend against a real HTTP upstream on 127.0.0.1 that checks every SigV4 signature.

The mock recomputes each signature with botocore from fixed credentials, answers the four operations
in their wire formats (JSON, and the binary event stream cut at odd places), and validates Converse
bodies against botocore's service model.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.session import get_session
from botocore.validate import ParamValidator

from anyllm_cli.backends._http import RetryPolicy, build_client
from anyllm_cli.backends.bedrock import BedrockBackend, anthropic_body, model_path
from anyllm_cli.backends.eventstream import encode_message
from anyllm_cli.config import BackendSettings
from anyllm_cli.errors import ConfigError, ErrorKind, UpstreamError
from anyllm_cli.models.anthropic import MessagesRequest
from anyllm_cli.translate.messages_via_converse import request as converse_request
from anyllm_cli.translate.messages_via_converse import response as converse_response
from anyllm_cli.translate.streams.accumulate import accumulate
from anyllm_cli.translate.streams.messages_via_converse import MessagesViaConverseStream
from anyllm_cli.translate.streams.pump import SSEPump
from anyllm_cli.translate.streams.sse import SSEDecoder, encode_anthropic

pytestmark = pytest.mark.anyio

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
            elif "model" in data or data.get("anthropic_version") != "bedrock-2023-05-31":
                return self.error(400, "ValidationException", "not a Bedrock Anthropic body")
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


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[Upstream, str]]:
    state = Upstream()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(params=["httpx", "aiohttp"])
async def backend(
    request: pytest.FixtureRequest, upstream: tuple[Upstream, str]
) -> AsyncIterator[BedrockBackend]:
    settings = BackendSettings(
        name="bedrock", kind="bedrock", base_url=upstream[1], max_retries=1, read_timeout=5.0
    )
    async with build_client(engine=request.param) as client:
        retry = RetryPolicy(sleep=_no_sleep)
        yield BedrockBackend(settings, client, retry=retry, credentials=CREDS, region=REGION)
    assert upstream[0].failures == []


async def _no_sleep(seconds: float) -> None:
    return None


def sse_events(data: bytes) -> list[dict[str, Any]]:
    decoder = SSEDecoder()
    frames = decoder.decode(data) + decoder.flush()
    return [json.loads(f.data) for f in frames]


BODY = {
    "model": "claude-x",
    "max_tokens": 64,
    "stream": True,
    "messages": [{"role": "user", "content": "Hi"}],
}


def test_paths_quote_the_model_id_as_one_segment() -> None:
    assert model_path(CLAUDE, "invoke") == f"/model/{CLAUDE}/invoke"
    arn = "arn:aws:bedrock:us-east-1:123:inference-profile/us.anthropic.x"
    assert model_path(arn, "converse") == (
        "/model/arn:aws:bedrock:us-east-1:123:inference-profile%2Fus.anthropic.x/converse"
    )


def test_anthropic_body_moves_betas_into_the_body() -> None:
    body = anthropic_body(BODY, {"Anthropic-Beta": "a-1, b-2", "anthropic-version": "2023-06-01"})
    assert body == {
        "max_tokens": 64,
        "messages": BODY["messages"],
        "anthropic_version": "bedrock-2023-05-31",
        "anthropic_beta": ["a-1", "b-2"],
    }


async def test_invoke_is_signed_and_answers_a_message(
    backend: BedrockBackend, upstream: tuple[Upstream, str]
) -> None:
    reply = await backend.send_messages(CLAUDE, BODY, {"anthropic-beta": "x-1", "x-api-key": "no"})
    assert reply.body == ANTHROPIC_MESSAGE
    path, headers, sent = upstream[0].seen[-1]
    assert path == "/model/us.anthropic.claude-sonnet-4-20250514-v1:0/invoke"
    assert "x-api-key" not in {k.lower() for k in headers}
    assert json.loads(sent)["anthropic_beta"] == ["x-1"]


async def test_invoke_stream_becomes_anthropic_sse(backend: BedrockBackend) -> None:
    async with backend.stream_messages(CLAUDE, BODY) as stream:
        assert stream.headers["content-type"] == "text/event-stream"
        data = b"".join([c async for c in stream])
    expected = [dict(e) for e in ANTHROPIC_EVENTS]
    expected[-1] = {"type": "message_stop"}
    assert data == b"".join(encode_anthropic(e) for e in expected)


async def test_an_invoke_stream_exception_becomes_an_error_event(backend: BedrockBackend) -> None:
    async with backend.stream_messages("dies", BODY) as stream:
        events = sse_events(b"".join([c async for c in stream]))
    assert events[-1] == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "throttlingException: slow down"},
    }


async def test_converse_round_trip_through_the_translators(backend: BedrockBackend) -> None:
    req = MessagesRequest.parse({**BODY, "tools": [{"name": "weather", "input_schema": {}}]})
    body = converse_request(req).body
    reply = await backend.send_converse(body)
    message = converse_response(reply.body, requested_model="claude-x").body
    assert message["content"] == [{"type": "text", "text": "ok"}]
    assert message["usage"]["input_tokens"] == 3


async def test_converse_stream_feeds_the_stream_translator(backend: BedrockBackend) -> None:
    body = converse_request(MessagesRequest.parse(BODY)).body
    translator = MessagesViaConverseStream(requested_model="claude-x", message_id="msg_1")
    pump = SSEPump(translator, encode_anthropic)
    async with backend.stream_converse(body) as stream:
        out = b"".join([pump.feed(c) async for c in stream]) + pump.finish()
    message = accumulate(sse_events(out))
    assert message["content"] == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "tu_1", "name": "weather", "input": {"city": "Oslo"}},
    ]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"]["output_tokens"] == 9
    assert translator.degradations == []


async def test_a_converse_stream_exception_arrives_as_its_event(backend: BedrockBackend) -> None:
    body = converse_request(MessagesRequest.parse(BODY)).body
    async with backend.stream_converse({**body, "modelId": "dies"}) as stream:
        events = sse_events(b"".join([c async for c in stream]))
    assert events[-1] == {"modelStreamErrorException": {"message": "boom"}}
    assert events[0] == {"messageStart": {"role": "assistant"}}


@pytest.mark.parametrize(
    ("model", "kind", "status"),
    [("throttled", ErrorKind.RATE_LIMIT, 429), ("unavailable", ErrorKind.OVERLOADED, 529)],
)
async def test_error_statuses_are_classified_by_their_exception_name(
    backend: BedrockBackend,
    upstream: tuple[Upstream, str],
    model: str,
    kind: ErrorKind,
    status: int,
) -> None:
    before = len(upstream[0].seen)
    with pytest.raises(UpstreamError) as caught:
        await backend.send_messages(model, BODY)
    assert (caught.value.kind, caught.value.status) == (kind, status)
    assert caught.value.message.startswith(
        ("ThrottlingException: ", "ServiceUnavailableException: ")
    )
    assert len(upstream[0].seen) - before == 2  # retried once, signed both times


async def test_a_bad_signature_is_an_authentication_error(upstream: tuple[Upstream, str]) -> None:
    settings = BackendSettings(name="b", kind="bedrock", base_url=upstream[1], max_retries=0)
    wrong = Credentials("AKIDEXAMPLE", "not-the-secret", "session-token")
    async with build_client(engine="httpx") as client:
        backend = BedrockBackend(settings, client, credentials=wrong, region=REGION)
        with pytest.raises(UpstreamError) as caught:
            await backend.send_messages(CLAUDE, BODY)
    upstream[0].failures.clear()
    assert caught.value.kind is ErrorKind.AUTHENTICATION
    assert caught.value.message.startswith("InvalidSignatureException: ")


async def test_the_region_comes_from_the_url_or_the_env() -> None:
    async with build_client(engine="httpx") as client:
        url = "https://bedrock-runtime.eu-central-1.amazonaws.com"
        by_url = BackendSettings(name="b", kind="bedrock", base_url=url)
        assert BedrockBackend(by_url, client, credentials=CREDS).region == "eu-central-1"
        empty = BackendSettings(name="b", kind="bedrock", base_url="")
        by_env = BedrockBackend(empty, client, credentials=CREDS, env={"AWS_REGION": "ap-south-1"})
        assert by_env.region == "ap-south-1"
        assert by_env._http.url("/x") == "https://bedrock-runtime.ap-south-1.amazonaws.com/x"


async def test_missing_botocore_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    real = importlib.import_module

    def fake(name: str, package: str | None = None) -> Any:
        if name.startswith("botocore"):
            raise ImportError(name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", fake)
    settings = BackendSettings(name="b", kind="bedrock", base_url="")
    async with build_client(engine="httpx") as client:
        with pytest.raises(ConfigError, match=r"anyllm-cli\[bedrock\]"):
            BedrockBackend(settings, client, credentials=CREDS, env={})


async def test_no_aws_credentials_is_a_startup_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask the network
    settings = BackendSettings(name="b", kind="bedrock", base_url="", region="us-east-1")
    async with build_client(engine="httpx") as client:
        with pytest.raises(ConfigError, match="AWS_ACCESS_KEY_ID"):
            BedrockBackend(settings, client, region="us-east-1")
