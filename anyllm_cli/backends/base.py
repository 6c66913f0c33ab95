"""What the pipeline sees of an upstream: one Protocol, whatever the provider.

A backend sends a JSON body to a path under its base URL and gives back either the parsed reply
(`send`) or the raw response bytes as they arrive (`stream`, `forward`). It classifies failures as
`UpstreamError` (kind, status, retry_after) and never builds a client response: the server renders
errors in the caller's format. Retries happen inside, before the first byte reaches the caller.

`StreamContext` is what `stream` and `forward` return: an async context manager that may also be
awaited first (`async with await backend.forward(...)`), so both spellings work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from anyllm_cli.config import BackendSettings

NO_HEADERS: Mapping[str, str] = {}


@dataclass(frozen=True, slots=True)
class UpstreamReply:
    status: int
    headers: Mapping[str, str]
    body: Any  # parsed JSON


class UpstreamStream(Protocol):
    status: int
    headers: Mapping[str, str]

    def __aiter__(self) -> AsyncIterator[bytes]:
        """Raw bytes as they arrive; raises UpstreamError (TIMEOUT when idle, API_ERROR on a drop)."""
        ...


class StreamContext(AbstractAsyncContextManager[UpstreamStream]):
    """Wraps an async context manager of a stream; awaiting it returns itself."""

    def __init__(self, inner: AbstractAsyncContextManager[UpstreamStream]) -> None:
        self._inner = inner

    async def __aenter__(self) -> UpstreamStream:
        return await self._inner.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._inner.__aexit__(exc_type, exc, tb)

    def __await__(self) -> Generator[Any, None, StreamContext]:
        return _ready(self).__await__()


async def _ready(context: StreamContext) -> StreamContext:
    return context


# The wire format an upstream speaks: OpenAI Chat Completions or Responses, Anthropic Messages,
# Gemini generateContent, Bedrock (InvokeModel for Claude, Converse for the rest).
Api = Literal["chat", "responses", "messages", "gemini", "bedrock"]


class Backend(Protocol):
    settings: BackendSettings
    api: Api

    async def send(
        self, path: str, body: dict[str, Any], headers: Mapping[str, str] = NO_HEADERS
    ) -> UpstreamReply:
        """POST a JSON body, retrying before any byte reached us; error statuses raise."""
        ...

    def stream(
        self, path: str, body: dict[str, Any], headers: Mapping[str, str] = NO_HEADERS
    ) -> AbstractAsyncContextManager[UpstreamStream]:
        """Entered once the upstream answered 2xx; leaving it closes the connection at once."""
        ...

    def forward(
        self, method: str, path: str, content: bytes, headers: Mapping[str, str]
    ) -> StreamContext:
        """Raw passthrough (/v1/embeddings, ...): any status comes back as it is, body unread."""
        ...

    async def aclose(self) -> None: ...
