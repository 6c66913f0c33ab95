"""An OpenAI-compatible Chat Completions upstream: OpenAI itself, the presets, any local server.

It adds the upstream's own credentials (`Authorization: Bearer <key>` from the backend settings) and
the configured extra headers, and drops whatever credentials and hop-by-hop headers the caller
passed: a client's key for the proxy never reaches an upstream. Everything else (retries, timeouts,
error mapping) is the shared path in `_http.py`.

`azure.py` builds on it (its URLs and auth). What it gives up: no per-model routing inside one
backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import httpx

from anyllm_cli import __version__
from anyllm_cli.backends._http import Auth, HTTPUpstream, RetryPolicy
from anyllm_cli.backends.base import (
    NO_HEADERS,
    Api,
    StreamContext,
    UpstreamReply,
    UpstreamStream,
)

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
    """Chat Completions, or the Responses API with `api_format = "responses"`."""

    api: Api

    def __init__(
        self,
        settings: BackendSettings,
        client: httpx.AsyncClient,
        *,
        retry: RetryPolicy | None = None,
        auth: Auth | None = None,
    ) -> None:
        self.settings = settings
        self.api = "responses" if settings.api_format == "responses" else "chat"
        self._http = HTTPUpstream(client, settings, retry, auth=auth)

    def _headers(self, caller: Mapping[str, str], defaults: Mapping[str, str]) -> dict[str, str]:
        return upstream_headers(self.settings, caller, defaults)

    def _path(self, path: str) -> str:
        return path

    async def send(
        self, path: str, body: dict[str, Any], headers: Mapping[str, str] = NO_HEADERS
    ) -> UpstreamReply:
        sent = self._headers(
            headers, {"content-type": "application/json", "accept": "application/json"}
        )
        return await self._http.send_json(self._path(path), body, sent)

    def stream(
        self, path: str, body: dict[str, Any], headers: Mapping[str, str] = NO_HEADERS
    ) -> AbstractAsyncContextManager[UpstreamStream]:
        sent = self._headers(
            headers,
            {
                "content-type": "application/json",
                "accept": "text/event-stream",
                "accept-encoding": "identity",  # compressed SSE would be held back in buffers
            },
        )
        return self._http.stream_json(self._path(path), body, sent)

    def forward(
        self, method: str, path: str, content: bytes, headers: Mapping[str, str]
    ) -> StreamContext:
        sent = self._headers(headers, {"accept-encoding": "identity"})
        return self._http.stream_raw(method, self._path(path), content, sent)

    async def aclose(self) -> None:
        """Nothing of its own to close: the shared client belongs to the server's lifespan."""
