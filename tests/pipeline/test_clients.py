"""The client sides through the one entry: a scripted backend in, bodies and SSE bytes out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from anyllm_cli.errors import ErrorKind, InvalidInput, UpstreamError
from anyllm_cli.pipeline import ClientRequest, JSONReply, Pipeline, Reply, StreamReply
from anyllm_cli.pipeline.seams import ClientAPI
from tests.conftest import FakeBackend, backend_settings, chat_chunk, chat_response, sse

pytestmark = pytest.mark.anyio


def _messages(**extra: Any) -> bytes:
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 64000,
        "messages": [{"role": "user", "content": "hello"}],
        **extra,
    }
    return json.dumps(body).encode()


def _chat(**extra: Any) -> bytes:
    body = {"model": "gpt-x", "messages": [{"role": "user", "content": "hello"}], **extra}
    return json.dumps(body).encode()


def _pipeline(backend: FakeBackend) -> Pipeline:
    return Pipeline({backend.settings.name: backend}, count=lambda req: 42)


async def _run(
    backend: FakeBackend, api: ClientAPI, body: bytes, headers: dict[str, str] | None = None
) -> Reply:
    return await _pipeline(backend).run(ClientRequest(api, body, headers or {}))


async def _read(reply: StreamReply) -> bytes:
    async with reply:
        return b"".join([chunk async for chunk in reply.chunks()])


def _events(data: bytes) -> list[dict[str, Any]]:
    return [
        json.loads(line[6:])
        for line in data.decode().splitlines()
        if line.startswith("data: ") and line != "data: [DONE]"
    ]


async def test_messages_are_translated_mapped_and_clamped() -> None:
    settings = backend_settings(big_model="big-up", max_output_tokens={"big-up": 8192})
    backend = FakeBackend(
        settings,
        reply=chat_response("hey", "big-up"),
        reply_headers={"x-ratelimit-limit-requests": "9"},
    )
    reply = await _run(backend, "messages", _messages(), {"x-claude-code-session-id": "sess-1"})
    call = reply.call
    assert isinstance(reply, JSONReply)
    assert reply.body["content"] == [{"type": "text", "text": "hey"}]
    assert reply.body["model"] == "claude-sonnet-4-6"
    path, sent, headers = backend.sent[0]
    assert path == "/chat/completions"
    assert sent["model"] == "big-up"
    assert sent.get("max_tokens", sent.get("max_completion_tokens")) == 8192
    assert sent["prompt_cache_key"] == "sess-1"
    assert headers == {}
    assert call.backend == "mock"
    assert (reply.call.requested_model, reply.call.upstream_model) == (
        "claude-sonnet-4-6",
        "big-up",
    )
    assert (reply.call.tokens_in, reply.call.tokens_out) == (10, 3)
    assert call.upstream_headers == {"x-ratelimit-limit-requests": "9"}
    assert "max_tokens_clamped" in {d.code for d in call.degradations}


async def test_client_credentials_are_not_passed_on() -> None:
    backend = FakeBackend(backend_settings(), reply=chat_response())
    await _run(
        backend, "messages", _messages(), {"x-api-key": "client", "authorization": "Bearer client"}
    )
    assert backend.sent[0][2] == {}


async def test_stream_estimates_input_and_meters_usage() -> None:
    usage = {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}
    backend = FakeBackend(
        backend_settings(),
        chunks=[
            sse(chat_chunk({"role": "assistant", "content": ""})),
            sse(chat_chunk({"content": "he"})) + b"data: ",
            json.dumps(chat_chunk({"content": "y"})).encode() + b"\n\n",
            sse(
                chat_chunk({}, "stop"), {**chat_chunk({}), "choices": [], "usage": usage}, "[DONE]"
            ),
        ],
    )
    reply = await _run(backend, "messages", _messages(stream=True), {})
    assert isinstance(reply, StreamReply)
    events = _events(await _read(reply))
    assert events[0]["type"] == "message_start"
    assert events[0]["message"]["usage"]["input_tokens"] == 42
    text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    assert text == "hey"
    assert events[-1] == {"type": "message_stop"}
    assert (reply.call.tokens_in, reply.call.tokens_out) == (12, 2)
    assert backend.sent[0][1]["stream_options"] == {"include_usage": True}
    assert backend.closed == 1


async def test_stream_options_omitted_when_the_backend_says_so() -> None:
    backend = FakeBackend(backend_settings(omit_stream_options=True), chunks=[sse("[DONE]")])
    reply = await _run(backend, "messages", _messages(stream=True), {})
    await _read(reply)  # type: ignore[arg-type]
    assert "stream_options" not in backend.sent[0][1]


async def test_stream_fail_is_an_anthropic_error_event() -> None:
    backend = FakeBackend(backend_settings(), chunks=[sse(chat_chunk({"content": "a"}))])
    reply = await _run(backend, "messages", _messages(stream=True), {})
    assert isinstance(reply, StreamReply)
    async with reply:
        async for _ in reply.chunks():
            break
        failed = _events(reply.fail(ErrorKind.TIMEOUT, "idle too long"))
    assert failed[-1]["type"] == "error"
    assert failed[-1]["error"]["type"] == "timeout_error"


async def test_stream_open_errors_raise_before_any_byte() -> None:
    error = UpstreamError(ErrorKind.RATE_LIMIT, "slow down", status=429, retry_after=3)
    backend = FakeBackend(backend_settings(), error=error)
    reply = await _run(backend, "messages", _messages(stream=True), {})
    with pytest.raises(UpstreamError) as info:
        await _read(reply)  # type: ignore[arg-type]
    assert info.value.retry_after == 3


async def test_error_status_replies_raise_upstream_errors() -> None:
    body = {"error": {"message": "nope", "type": "invalid_request_error"}}
    backend = FakeBackend(backend_settings(), reply=body, reply_status=400)
    with pytest.raises(UpstreamError) as info:
        await _run(backend, "messages", _messages(), {})
    assert info.value.kind is ErrorKind.INVALID_REQUEST
    assert info.value.status == 400


async def test_an_upstream_body_that_does_not_parse_is_the_upstreams_fault() -> None:
    backend = FakeBackend(backend_settings(), reply={"choices": "no"})
    with pytest.raises(UpstreamError) as info:
        await _run(backend, "messages", _messages(), {})
    assert info.value.kind is ErrorKind.API_ERROR


async def test_bad_client_bodies_are_invalid_input() -> None:
    backend = FakeBackend(backend_settings())
    with pytest.raises(InvalidInput) as info:
        await _run(backend, "messages", b'{"model": "m", "messages": []}', {})
    assert info.value.path == "max_tokens"
    with pytest.raises(InvalidInput):
        await _run(backend, "chat", b"{nope", {})
    assert backend.sent == []


async def test_chat_passes_through_with_the_model_mapped_and_clamped() -> None:
    settings = backend_settings(model_map={"gpt-x": "up-x"}, max_output_tokens={"*": 100})
    backend = FakeBackend(settings, reply=chat_response("ok", "up-x"))
    reply = await _run(backend, "chat", _chat(max_tokens=5000, seed=3), {})
    assert isinstance(reply, JSONReply)
    assert reply.body == chat_response("ok", "up-x")
    sent = backend.sent[0][1]
    assert sent == {
        "model": "up-x",
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": 100,
        "seed": 3,
    }
    assert [d.code for d in reply.call.degradations] == ["max_tokens_clamped"]
    assert (reply.call.tokens_in, reply.call.tokens_out) == (10, 3)


async def test_chat_stream_hides_the_usage_it_asked_for() -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}
    chunks = [
        sse(
            chat_chunk({"content": "a"}),
            chat_chunk({}, "stop"),
            {**chat_chunk({}), "choices": [], "usage": usage},
            "[DONE]",
        )
    ]
    backend = FakeBackend(backend_settings(), chunks=chunks)
    reply = await _run(backend, "chat", _chat(stream=True), {})
    data = await _read(reply)  # type: ignore[arg-type]
    assert backend.sent[0][1]["stream_options"] == {"include_usage": True}
    assert b'"usage"' not in data
    assert data.endswith(b"data: [DONE]\n\n")
    assert (reply.call.tokens_in, reply.call.tokens_out) == (5, 1)


async def test_chat_stream_keeps_usage_the_client_asked_for() -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}
    chunks = [sse({**chat_chunk({}), "choices": [], "usage": usage}, "[DONE]")]
    backend = FakeBackend(backend_settings(), chunks=chunks)
    body = _chat(stream=True, stream_options={"include_usage": True})
    data = await _read(await _run(backend, "chat", body, {}))  # type: ignore[arg-type]
    assert _events(data)[-1]["usage"] == usage


async def test_chat_stream_fail_is_an_openai_error_chunk() -> None:
    backend = FakeBackend(backend_settings(), chunks=[])
    reply = await _run(backend, "chat", _chat(stream=True), {})
    assert isinstance(reply, StreamReply)
    assert _events(reply.fail(ErrorKind.API_ERROR, "gone"))[0]["error"]["message"] == "gone"


async def test_messages_backends_get_the_body_relayed() -> None:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-up",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 4, "output_tokens": 2},
    }
    backend = FakeBackend(backend_settings(big_model="claude-up"), api="messages", reply=message)
    headers = {"anthropic-beta": "x", "x-api-key": "client-secret"}
    reply = await _run(backend, "messages", _messages(), headers)
    assert isinstance(reply, JSONReply)
    assert reply.body["content"] == [{"type": "text", "text": "hi"}]
    path, sent, passed = backend.sent[0]
    assert (path, sent["model"], passed) == ("/messages", "claude-up", {"anthropic-beta": "x"})
    assert (reply.call.tokens_in, reply.call.tokens_out) == (4, 2)


async def test_chat_clients_of_messages_backends_are_translated() -> None:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-up",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 4, "output_tokens": 2},
    }
    backend = FakeBackend(backend_settings(), api="messages", reply=message)
    reply = await _run(backend, "chat", _chat(), {})
    assert isinstance(reply, JSONReply)
    assert reply.body["choices"][0]["message"]["content"] == "hi"
    assert backend.sent[0][0] == "/messages"
    assert backend.sent[0][1]["max_tokens"] > 0


async def test_count_tokens_is_local_for_chat_backends() -> None:
    backend = FakeBackend(backend_settings())
    raw = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
    assert (await _run(backend, "count_tokens", raw)).body == {"input_tokens": 42}
    assert backend.sent == []


async def test_count_tokens_asks_a_messages_backend_first() -> None:
    backend = FakeBackend(backend_settings(), api="messages", reply={"input_tokens": 7})
    raw = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
    assert (await _run(backend, "count_tokens", raw)).body == {"input_tokens": 7}
    backend.error = UpstreamError(ErrorKind.NOT_FOUND, "no such endpoint")
    assert (await _run(backend, "count_tokens", raw)).body == {"input_tokens": 42}
