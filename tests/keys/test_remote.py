"""RemoteKeys: the admin API's answers and errors, mapped back to the CLI's."""

from __future__ import annotations

import json

import httpx
import pytest

from anyllm_cli.errors import AnyllmError, ConfigError, InvalidInput, KeyNotFound
from anyllm_cli.keys.manage import CLEAR, KeyOptions
from anyllm_cli.keys.remote import RemoteKeys

pytestmark = pytest.mark.anyio


def transport(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.raw_path.decode().split("?")[0]
        if path == "/admin/keys" and request.method == "POST":
            return httpx.Response(201, json={"key": "sk-anyllm-x", "id": "key_1"})
        if path == "/admin/keys":
            return httpx.Response(200, json={"keys": [{"id": "key_1"}]})
        if path == "/admin/keys/a%2Fb":
            return httpx.Response(404, json={"error": {"message": "no key with id or name 'a/b'"}})
        if path == "/admin/keys/bad":
            return httpx.Response(400, json={"error": {"message": "rpm: nope"}})
        if path == "/admin/keys/auth":
            return httpx.Response(401, json={"error": {"message": "needs the master key"}})
        if path == "/admin/spend":
            return httpx.Response(200, json={"spend": [{"group": "m"}]})
        return httpx.Response(500, text="boom")

    return httpx.MockTransport(handle)


async def test_calls_and_bodies() -> None:
    seen: list[httpx.Request] = []
    async with RemoteKeys.connect("http://p/", "mk", transport(seen)) as remote:
        view, secret = await remote.create(KeyOptions(name="a", rpm=3, tpm=CLEAR, models=("m*",)))
        assert secret == "sk-anyllm-x" and view == {"id": "key_1"}
        assert await remote.list_keys(True) == [{"id": "key_1"}]
        assert await remote.spend("a", "7d", "model") == [{"group": "m"}]
    assert json.loads(seen[0].content) == {"name": "a", "rpm": 3, "tpm": None, "models": ["m*"]}
    assert seen[0].headers["authorization"] == "Bearer mk"
    assert seen[1].url.params["all"] == "true"
    assert dict(seen[2].url.params) == {"key": "a", "since": "7d", "by": "model"}


async def test_errors_map_back() -> None:
    async with RemoteKeys.connect("http://p", "mk", transport([])) as remote:
        with pytest.raises(KeyNotFound, match="no key with id or name 'a/b'"):
            await remote.show("a/b")
        with pytest.raises(InvalidInput, match="rpm: nope"):
            await remote.show("bad")
        with pytest.raises(ConfigError, match="check ANYLLM_MASTER_KEY"):
            await remote.show("auth")
        with pytest.raises(AnyllmError, match="HTTP 500"):
            await remote.show("other")


async def test_no_master_key_no_call() -> None:
    with pytest.raises(ConfigError, match="set ANYLLM_MASTER_KEY"):
        async with RemoteKeys.connect("http://p", None):
            pass
