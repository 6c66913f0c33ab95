"""The one entry: routing, the guard before the backend, passthrough rules, failures completed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import pytest

from anyllm_cli.backends.base import StreamContext, UpstreamStream
from anyllm_cli.errors import ErrorKind, InvalidInput, NotFound, UpstreamError
from anyllm_cli.pipeline import ClientRequest, ForwardReply, Pipeline
from tests.conftest import FakeBackend, Recorder, backend_settings, chat_response

pytestmark = pytest.mark.anyio
CHAT = json.dumps({"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]}).encode()


class _Forwarding(FakeBackend):
    """A fake backend that records passthrough calls."""

    forwarded: list[tuple[str, str, bytes, dict[str, str]]] | None = None

    def forward(
        self, method: str, path: str, content: bytes, headers: Mapping[str, str]
    ) -> StreamContext:
        self.forwarded = [(method, path, content, dict(headers))]
        return StreamContext(self._answer())

    @asynccontextmanager
    async def _answer(self) -> AsyncIterator[UpstreamStream]:
        async with self._open() as stream:
            yield stream


def _two() -> tuple[Pipeline, FakeBackend, FakeBackend, Recorder]:
    recorder = Recorder()
    a = FakeBackend(backend_settings("a"), reply=chat_response("from a"))
    b = FakeBackend(backend_settings("b", model_map={"gpt-x": "b-x"}), reply=chat_response("b"))
    pipeline = Pipeline({"a": a, "b": b}, guard=recorder, observers=[recorder])
    return pipeline, a, b, recorder


async def test_the_prefix_picks_the_backend_and_its_model_map() -> None:
    pipeline, a, b, recorder = _two()
    await pipeline.run(ClientRequest("chat", CHAT, backend="b"))
    assert a.sent == []
    assert b.sent[0][1]["model"] == "b-x"
    assert recorder.one().candidate is not None


async def test_an_unknown_backend_is_not_found_and_never_admitted() -> None:
    pipeline, _, _, recorder = _two()
    with pytest.raises(NotFound):
        await pipeline.run(ClientRequest("chat", CHAT, backend="nope"))
    assert recorder.admitted == []
    assert recorder.one().status == 404


async def test_a_refusal_stops_the_call_before_the_backend() -> None:
    pipeline, a, _, recorder = _two()
    recorder.refuse = UpstreamError(ErrorKind.PERMISSION, "model not allowed for this key")
    with pytest.raises(UpstreamError):
        await pipeline.run(ClientRequest("chat", CHAT))
    assert a.sent == []
    assert recorder.one().status == 403


async def test_a_gemini_call_needs_its_model() -> None:
    pipeline, _, _, recorder = _two()
    with pytest.raises(InvalidInput):
        await pipeline.run(ClientRequest("gemini", b"{}"))
    assert recorder.one().status == 400


async def test_a_passthrough_keeps_only_safe_headers_and_its_bytes() -> None:
    recorder = Recorder()
    backend = _Forwarding(backend_settings(), chunks=[b'{"ok": true}'])
    pipeline = Pipeline({"mock": backend}, guard=recorder, observers=[recorder])
    body = b'{"model": "embed", "input": "x"}'
    headers = {"content-type": "application/json", "cookie": "c", "x-custom": "1"}
    request = ClientRequest(
        "forward", body, headers, path="/embeddings", method="POST", query="a=1"
    )
    reply = await pipeline.run(request)
    assert isinstance(reply, ForwardReply)
    async with reply:
        assert [c async for c in reply.chunks()] == [b'{"ok": true}']
    assert backend.forwarded == [
        ("POST", "/embeddings?a=1", body, {"content-type": "application/json"})
    ]
    outcome = recorder.one()
    assert outcome.candidate is not None and outcome.candidate.requested_model == "embed"


async def test_a_passthrough_to_a_backend_of_another_api_is_not_found() -> None:
    backend = FakeBackend(backend_settings(kind="anthropic"), api="messages")
    with pytest.raises(NotFound, match="not served by backend 'mock'"):
        await Pipeline({"mock": backend}).run(ClientRequest("forward", b"", path="/files"))


async def test_a_passthrough_reaches_an_openai_backend_set_to_the_responses_api() -> None:
    backend = _Forwarding(backend_settings(api_format="responses"), api="responses", chunks=[b"{}"])
    reply = await Pipeline({"mock": backend}).run(ClientRequest("forward", b"{}", path="/x"))
    assert isinstance(reply, ForwardReply) and backend.forwarded is not None


async def test_a_passthrough_path_the_backend_refuses_fails_in_run() -> None:
    class _Refusing(FakeBackend):
        def forward(
            self, method: str, path: str, content: bytes, headers: Mapping[str, str]
        ) -> StreamContext:
            raise InvalidInput(f"the path {path!r} leaves backend mock's base URL")

    recorder = Recorder()
    pipeline = Pipeline({"mock": _Refusing(backend_settings())}, observers=[recorder])
    with pytest.raises(InvalidInput, match="leaves backend"):
        await pipeline.run(ClientRequest("forward", b"", path="/../admin"))
    assert recorder.one().status == 400
