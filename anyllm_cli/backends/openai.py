"""An OpenAI-compatible Chat Completions upstream: OpenAI itself, the presets, any local server.

It adds the upstream's own credentials (`Authorization: Bearer <key>` from the backend settings) and
the configured extra headers, and drops whatever credentials and hop-by-hop headers the caller
passed: a client's key for the proxy never reaches an upstream. Everything else (retries, timeouts,
error mapping) is the shared path in `_http.py`.

What it gives up: no Azure `api-key` auth of its own (set it through `extra_headers`), no per-model
routing inside one backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Literal

import httpx

from anyllm_cli import __version__
from anyllm_cli.backends._http import HTTPUpstream, RetryPolicy
from anyllm_cli.backends.base import NO_HEADERS, StreamContext, UpstreamReply, UpstreamStream

if TYPE_CHECKING:
    from anyllm_cli.config import BackendSettings

# Never forwarded from the caller: its credentials, and headers that belong to its own connection.
DROPPED_HEADERS = frozenset(
    {
        "authorization",
        "x-api-key",
        "api-key",
        "proxy-authorization",
        "cookie",
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "accept-encoding",
        "expect",
    }
)
USER_AGENT = f"anyllm/{__version__}"


def upstream_headers(
    settings: BackendSettings,
    caller: Mapping[str, str],
    defaults: Mapping[str, str],
    *,
    key_header: str = "authorization",
    key_prefix: str = "Bearer ",
) -> dict[str, str]:
    """caller's (cleaned) < defaults < our credentials < configured extra headers."""
    out = {k.lower(): v for k, v in caller.items() if k.lower() not in DROPPED_HEADERS}
    out.update(defaults)
    out["user-agent"] = USER_AGENT
    if settings.api_key:
        out[key_header] = f"{key_prefix}{settings.api_key}"
    out.update({k.lower(): v for k, v in settings.extra_headers.items()})
    return out


class OpenAIBackend:
    api: Literal["chat", "messages"] = "chat"

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
        sent = upstream_headers(
            self.settings,
            headers,
            {"content-type": "application/json", "accept": "application/json"},
        )
        return await self._http.send_json(path, body, sent)

    def stream(
        self, path: str, body: dict[str, Any], headers: Mapping[str, str] = NO_HEADERS
    ) -> AbstractAsyncContextManager[UpstreamStream]:
        sent = upstream_headers(
            self.settings,
            headers,
            {
                "content-type": "application/json",
                "accept": "text/event-stream",
                "accept-encoding": "identity",  # compressed SSE would be held back in buffers
            },
        )
        return self._http.stream_json(path, body, sent)

    def forward(
        self, method: str, path: str, content: bytes, headers: Mapping[str, str]
    ) -> StreamContext:
        sent = upstream_headers(self.settings, headers, {"accept-encoding": "identity"})
        return self._http.stream_raw(method, path, content, sent)

    async def aclose(self) -> None:
        """Nothing of its own to close: the shared client belongs to the server's lifespan."""
