"""`anyllm keys --url URL`: the same `KeyService`, on a running proxy through its admin API.

Authenticates with the master key (`ANYLLM_MASTER_KEY`) as a bearer token. An error reply becomes
the matching error here (404 -> KeyNotFound, 4xx -> InvalidInput), with the proxy's own message.

What it gives up: no retries; a management call that fails is reported, not repeated.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx

from anyllm_cli.errors import AnyllmError, ConfigError, InvalidInput, KeyNotFound
from anyllm_cli.keys.manage import KeyOptions, options_to_json
from anyllm_cli.stores import SpendGroup

View = dict[str, Any]


class RemoteKeys:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    @classmethod
    @asynccontextmanager
    async def connect(
        cls, url: str, master_key: str | None, transport: httpx.AsyncBaseTransport | None = None
    ) -> AsyncIterator[RemoteKeys]:
        if not master_key:
            raise ConfigError("--url: set ANYLLM_MASTER_KEY to the proxy's master key")
        headers = {"authorization": f"Bearer {master_key}"}
        async with httpx.AsyncClient(
            base_url=url.rstrip("/"), headers=headers, timeout=30, transport=transport
        ) as client:
            yield cls(client)

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            reply = await self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise AnyllmError(f"{self._client.base_url}: {exc}") from None
        try:
            body = reply.json()
        except ValueError:
            body = {}
        if reply.is_success:
            return body
        error = body.get("error") if isinstance(body, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        message = str(message or f"HTTP {reply.status_code}")
        if reply.status_code == 404:
            raise KeyNotFound(message)
        if reply.status_code in (401, 403):
            raise ConfigError(f"{self._client.base_url}: {message} (check ANYLLM_MASTER_KEY)")
        if 400 <= reply.status_code < 500:
            raise InvalidInput(message)
        raise AnyllmError(message)

    @staticmethod
    def _ref(ref: str) -> str:
        return "/admin/keys/" + quote(ref, safe="")

    async def create(self, options: KeyOptions) -> tuple[View, str]:
        body = await self._call("POST", "/admin/keys", json=options_to_json(options))
        return _split(body)

    async def list_keys(self, include_inactive: bool) -> list[View]:
        body = await self._call("GET", "/admin/keys", params={"all": str(include_inactive).lower()})
        return list(body["keys"])

    async def show(self, ref: str) -> View:
        return dict(await self._call("GET", self._ref(ref)))

    async def update(self, ref: str, options: KeyOptions) -> View:
        return dict(await self._call("PATCH", self._ref(ref), json=options_to_json(options)))

    async def revoke(self, ref: str) -> View:
        return dict(await self._call("POST", self._ref(ref) + "/revoke"))

    async def rotate(self, ref: str) -> tuple[View, str]:
        return _split(await self._call("POST", self._ref(ref) + "/rotate"))

    async def delete(self, ref: str) -> View:
        return dict(await self._call("DELETE", self._ref(ref)))

    async def spend(self, ref: str | None, since: str | None, by: SpendGroup) -> list[View]:
        params = {k: v for k, v in {"key": ref, "since": since, "by": by}.items() if v}
        body = await self._call("GET", "/admin/spend", params=params)
        return list(body["spend"])


def _split(body: dict[str, Any]) -> tuple[View, str]:
    view = dict(body)
    return view, str(view.pop("key"))
