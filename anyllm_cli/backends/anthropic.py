"""An Anthropic Messages upstream: the real Anthropic API, or any server that speaks its format.

The proxy adds its auth, limits, logging and model mapping in front; requests go out with the
upstream's own key as `x-api-key` and the client's `anthropic-version` and `anthropic-beta` (the
pipeline passes only those two). When the client sent no version, `2023-06-01` goes, as the API
requires one. The caller's credentials never pass (the header rules are shared with the OpenAI kind).

What it gives up: no other `/v1/*` passthrough (batches and files are separate capabilities).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import httpx

from anyllm_cli.backends._http import HTTPUpstream, RetryPolicy
from anyllm_cli.backends.base import NO_HEADERS, Api, StreamContext, UpstreamReply, UpstreamStream
from anyllm_cli.backends.openai import upstream_headers

if TYPE_CHECKING:
    from anyllm_cli.config import BackendSettings

ANTHROPIC_VERSION = "2023-06-01"


def anthropic_headers(
    settings: BackendSettings, caller: Mapping[str, str], defaults: Mapping[str, str]
) -> dict[str, str]:
    """The shared header rules, with the key as `x-api-key` and a version always present."""
    given = {k.lower(): v for k, v in caller.items()}
    given.setdefault("anthropic-version", ANTHROPIC_VERSION)
    return upstream_headers(settings, given, defaults, key_header="x-api-key", key_prefix="")


class AnthropicBackend:
    api: Api = "messages"

    def __init__(
        self,
        settings: BackendSettings,
        client: httpx.AsyncClient,
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings
        self._http = HTTPUpstream(client, settings, retry)

    async def send(
        self, path: str, body: dict[str, Any], headers: Mapping[str, str] = NO_HEADERS
    ) -> UpstreamReply:
        defaults = {"content-type": "application/json", "accept": "application/json"}
        return await self._http.send_json(
            path, body, anthropic_headers(self.settings, headers, defaults)
        )

    def stream(
        self, path: str, body: dict[str, Any], headers: Mapping[str, str] = NO_HEADERS
    ) -> AbstractAsyncContextManager[UpstreamStream]:
        defaults = {
            "content-type": "application/json",
            "accept": "text/event-stream",
            "accept-encoding": "identity",  # compressed SSE would be held back in buffers
        }
        return self._http.stream_json(
            path, body, anthropic_headers(self.settings, headers, defaults)
        )

    def forward(
        self, method: str, path: str, content: bytes, headers: Mapping[str, str]
    ) -> StreamContext:
        sent = anthropic_headers(self.settings, headers, {"accept-encoding": "identity"})
        return self._http.stream_raw(method, path, content, sent)

    async def aclose(self) -> None:
        """Nothing of its own to close: the shared client belongs to the server's lifespan."""
