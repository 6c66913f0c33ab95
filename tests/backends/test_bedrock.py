"""The Bedrock backend against a real HTTP upstream on 127.0.0.1 that checks every SigV4 signature.

The mock recomputes each signature with botocore from fixed credentials, answers the four operations
in their wire formats (JSON, and the binary event stream cut at odd places), and validates Converse
bodies against botocore's service model.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from botocore.credentials import Credentials

from anyllm_cli.backends._http import RetryPolicy, build_client
from anyllm_cli.backends.bedrock import BedrockBackend, anthropic_body, model_path
from anyllm_cli.config import BackendSettings
from anyllm_cli.errors import ConfigError, ErrorKind, UpstreamError
from anyllm_cli.models.anthropic import MessagesRequest
from anyllm_cli.translate.messages_via_converse import request as converse_request
from anyllm_cli.translate.messages_via_converse import response as converse_response
from anyllm_cli.translate.streams.accumulate import accumulate
from anyllm_cli.translate.streams.messages_via_converse import MessagesViaConverseStream
from anyllm_cli.translate.streams.pump import SSEPump
from anyllm_cli.translate.streams.sse import SSEDecoder, encode_anthropic
from tests.e2e.mock_bedrock import (
    ANTHROPIC_EVENTS,
    ANTHROPIC_MESSAGE,
    CLAUDE,
    CREDS,
    REGION,
    Upstream,
    serve,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[Upstream, str]]:
    with serve() as running:
        yield running


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
    headers = {
        "Anthropic-Beta": "interleaved-thinking-2025-05-14, claude-code-20250219",
        "anthropic-version": "2023-06-01",
    }
    body = anthropic_body(BODY, headers)
    assert body == {
        "max_tokens": 64,
        "messages": BODY["messages"],
        "anthropic_version": "bedrock-2023-05-31",
        "anthropic_beta": ["interleaved-thinking-2025-05-14"],  # first-party betas are dropped
    }


async def test_invoke_is_signed_and_answers_a_message(
    backend: BedrockBackend, upstream: tuple[Upstream, str]
) -> None:
    beta = {"anthropic-beta": "output-128k-2025-02-19,claude-code-20250219", "x-api-key": "no"}
    reply = await backend.send_messages(CLAUDE, BODY, beta)
    assert reply.body == ANTHROPIC_MESSAGE
    path, headers, sent = upstream[0].seen[-1]
    assert path == "/model/us.anthropic.claude-sonnet-4-20250514-v1:0/invoke"
    assert "x-api-key" not in {k.lower() for k in headers}
    assert json.loads(sent)["anthropic_beta"] == ["output-128k-2025-02-19"]


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
