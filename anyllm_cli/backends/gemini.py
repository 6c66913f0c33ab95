"""Google's generateContent upstreams: the Gemini API (an API key) and Vertex AI (a bearer token).

Paths come from the route and name the model (`/models/gemini-2.5-pro:generateContent`,
`:streamGenerateContent?alt=sse`); the base URL is the API root (`.../v1beta`) or, for Vertex, the
publisher root (`.../v1/projects/P/locations/L/publishers/google`), so both take the same paths.
Auth: `x-goog-api-key` for the Gemini API; for Vertex the token in `api_key` (a variable such as
`VERTEX_ACCESS_TOKEN`) or else one from `token_command`, refreshed before it expires. The caller's
credentials never pass (the header rules are the OpenAI kind's).

What it gives up: no `?key=` query auth (a key in a URL ends up in logs); no passthrough of other
paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import httpx

from anyllm_cli.backends._http import HTTPUpstream, RetryPolicy
from anyllm_cli.backends.base import NO_HEADERS, Api, StreamContext, UpstreamReply, UpstreamStream
from anyllm_cli.backends.openai import upstream_headers
from anyllm_cli.backends.tokens import TokenSource, bearer_auth

if TYPE_CHECKING:
    from anyllm_cli.config import BackendSettings


class GeminiBackend:
    api: Api = "gemini"

    def __init__(
        self,
        settings: BackendSettings,
        client: httpx.AsyncClient,
        *,
        retry: RetryPolicy | None = None,
        tokens: TokenSource | None = None,
    ) -> None:
        self.settings = settings
        vertex = settings.kind == "vertex"
        if vertex and tokens is None and not settings.api_key and settings.token_command:
            tokens = TokenSource(settings.token_command)
        self._key_header = "authorization" if vertex else "x-goog-api-key"
        self._key_prefix = "Bearer " if vertex else ""
        auth = bearer_auth(tokens) if tokens else None
        self._http = HTTPUpstream(client, settings, retry, auth=auth)

    def _headers(self, caller: Mapping[str, str], defaults: Mapping[str, str]) -> dict[str, str]:
        return upstream_headers(
            self.settings,
            caller,
            defaults,
            key_header=self._key_header,
            key_prefix=self._key_prefix,
        )

    async def send(
        self, path: str, body: dict[str, Any], headers: Mapping[str, str] = NO_HEADERS
    ) -> UpstreamReply:
        sent = self._headers(
            headers, {"content-type": "application/json", "accept": "application/json"}
        )
        return await self._http.send_json(path, body, sent)

    def stream(
        self, path: str, body: dict[str, Any], headers: Mapping[str, str] = NO_HEADERS
    ) -> AbstractAsyncContextManager[UpstreamStream]:
        defaults = {
            "content-type": "application/json",
            "accept": "text/event-stream",
            "accept-encoding": "identity",  # compressed SSE would be held back in buffers
        }
        return self._http.stream_json(path, body, self._headers(headers, defaults))

    def forward(
        self, method: str, path: str, content: bytes, headers: Mapping[str, str]
    ) -> StreamContext:
        sent = self._headers(headers, {"accept-encoding": "identity"})
        return self._http.stream_raw(method, path, content, sent)

    async def aclose(self) -> None:
        """Nothing of its own to close: the shared client belongs to the server's lifespan."""
