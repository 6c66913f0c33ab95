"""Shared test fixtures: async tests on asyncio, settings builders, a scripted fake backend, and an
OpenAI-compatible upstream as an `httpx.MockTransport` handler for in-process server tests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import httpx
import pytest

from anyllm_cli.backends.base import NO_HEADERS, StreamContext, UpstreamReply, UpstreamStream
from anyllm_cli.config import BackendSettings, Settings
from anyllm_cli.errors import UpstreamError, parse_error_body
from anyllm_cli.pipeline.seams import Admission, Candidate, ClientRequest, Outcome

UPSTREAM_URL = "http://upstream.test/v1"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def backend_settings(name: str = "mock", **overrides: Any) -> BackendSettings:
    values: dict[str, Any] = {
        "name": name,
        "kind": "openai",
        "base_url": UPSTREAM_URL,
        "api_key": "upstream-key",
        "max_retries": 0,
        "read_timeout": 5.0,
    }
    values.update(overrides)
    return BackendSettings(**values)


def make_settings(*backends: BackendSettings, **overrides: Any) -> Settings:
    chosen = backends or (backend_settings(),)
    values: dict[str, Any] = {
        "backends": MappingProxyType({b.name: b for b in chosen}),
        "default_backend": chosen[0].name,
        "ping_interval": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


# -- a scripted backend for pipeline tests ---------------------------------------------------------


@dataclass
class FakeStream:
    chunks: list[bytes | Exception]
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)

    async def _iterate(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            if isinstance(chunk, Exception):
                raise chunk
            yield chunk

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()


@dataclass
class FakeBackend:
    settings: BackendSettings
    api: Literal["chat", "messages"] = "chat"
    reply: Any = None
    reply_status: int = 200
    reply_headers: Mapping[str, str] = field(default_factory=dict)
    chunks: list[bytes | Exception] = field(default_factory=list)
    error: Exception | None = None
    sent: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    closed: int = 0

    async def send(
        self, path: str, body: dict[str, Any], headers: Mapping[str, str] = NO_HEADERS
    ) -> UpstreamReply:
        self.sent.append((path, body, dict(headers)))
        if self.error is not None:
            raise self.error
        if self.reply_status >= 400:  # as real backends do: error statuses raise, classified
            kind, message = parse_error_body(self.reply, self.reply_status)
            raise UpstreamError(kind, message, status=self.reply_status)
        return UpstreamReply(self.reply_status, self.reply_headers, self.reply)

    def stream(
        self, path: str, body: dict[str, Any], headers: Mapping[str, str] = NO_HEADERS
    ) -> AbstractAsyncContextManager[UpstreamStream]:
        self.sent.append((path, body, dict(headers)))
        return self._open()

    @asynccontextmanager
    async def _open(self) -> AsyncIterator[UpstreamStream]:
        if self.error is not None:
            raise self.error
        try:
            yield FakeStream(self.chunks, headers=self.reply_headers)
        finally:
            self.closed += 1

    def forward(
        self, method: str, path: str, content: bytes, headers: Mapping[str, str]
    ) -> StreamContext:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


def sse(*objs: dict[str, Any] | str) -> bytes:
    """OpenAI-style SSE bytes: one `data:` frame per object (a str is sent as is, e.g. [DONE])."""
    return b"".join(
        f"data: {o if isinstance(o, str) else json.dumps(o)}\n\n".encode() for o in objs
    )


def chat_chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "up",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


def chat_response(text: str = "hi", model: str = "up") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
    }


# -- an upstream behind httpx.MockTransport ----------------------------------------------------------


@dataclass
class MockChat:
    """OpenAI Chat upstream as a MockTransport handler; `script` answers per model name."""

    requests: list[httpx.Request] = field(default_factory=list)
    script: dict[str, Callable[[dict[str, Any]], httpx.Response]] = field(default_factory=dict)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = json.loads(request.content) if request.content else {}
        handler = self.script.get(str(body.get("model")))
        if handler is not None:
            return handler(body)
        if body.get("stream"):
            content = sse(
                chat_chunk({"role": "assistant", "content": ""}),
                chat_chunk({"content": "streamed"}),
                chat_chunk({}, "stop"),
                "[DONE]",
            )
            return httpx.Response(
                200, content=content, headers={"content-type": "text/event-stream"}
            )
        return httpx.Response(200, json=chat_response(model=body.get("model", "up")))

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.content]


# -- a guard and an observer that record what the completion point tells them ------------------------


@dataclass
class Recorder:
    """A `Guard` and a `CallObserver` at once: every admit, settle and outcome, in order."""

    wants_bodies: bool = False
    refuse: Exception | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    admitted: list[Candidate] = field(default_factory=list)
    settled: list[tuple[Admission, Outcome]] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    elsewhere: list[Outcome] = field(default_factory=list)  # calls a provider ran (native batches)

    async def admit(self, request: ClientRequest, candidate: Candidate) -> Admission:
        if self.refuse is not None:
            raise self.refuse
        self.admitted.append(candidate)
        return Admission(headers=self.headers, ticket=len(self.admitted))

    async def settle(self, admission: Admission, outcome: Outcome) -> None:
        self.settled.append((admission, outcome))

    async def settle_elsewhere(self, outcome: Outcome) -> None:
        self.elsewhere.append(outcome)

    async def on_complete(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)

    def one(self) -> Outcome:
        """The single outcome, checked to have been settled exactly once too (when admitted)."""
        assert len(self.outcomes) == 1, self.outcomes
        if self.admitted:
            assert len(self.settled) == 1
            assert self.settled[0][1] is self.outcomes[0]
        else:
            assert self.settled == []
        return self.outcomes[0]
