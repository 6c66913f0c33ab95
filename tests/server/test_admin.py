"""The admin API and keys in the app, in-process: a real SQLite store, a mock upstream, the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette

from anyllm_cli.config import StoreSettings
from anyllm_cli.server.app import create_app
from tests.conftest import MockChat, make_settings

pytestmark = pytest.mark.anyio
MASTER = {"authorization": "Bearer mk"}
ANTHROPIC = {"anthropic-version": "2023-06-01"}
MESSAGE = {"model": "gpt-x", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
PRICES = MappingProxyType({"gpt-x": MappingProxyType({"input": 1000.0, "output": 1000.0})})


class _serving:
    """The app with its lifespan running, and a client on it."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.lifespan = app.router.lifespan_context(app)

    async def __aenter__(self) -> httpx.AsyncClient:
        await self.lifespan.__aenter__()
        transport = httpx.ASGITransport(app=self.app)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://proxy")
        return self.client

    async def __aexit__(self, *exc: Any) -> None:
        await self.client.aclose()
        await self.lifespan.__aexit__(*exc)


@pytest.fixture
async def proxy(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    store = StoreSettings(url=f"sqlite://{tmp_path / 'a.db'}", master_key="mk", prices=PRICES)
    app = create_app(make_settings(store=store), transport=MockChat().transport())
    async with _serving(app) as client:
        yield client


async def create(proxy: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    reply = await proxy.post("/admin/keys", json={"name": "k", **body}, headers=MASTER)
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


async def test_keys_crud_over_http(proxy: httpx.AsyncClient) -> None:
    made = await create(proxy, rpm=5, models=["gpt-*"], metadata={"team": "ml"})
    assert made["key"].startswith("sk-anyllm-") and made["metadata"] == {"team": "ml"}
    listed = (await proxy.get("/admin/keys", headers=MASTER)).json()["keys"]
    assert [k["id"] for k in listed] == [made["id"]] and "key" not in listed[0]
    patched = await proxy.patch(f"/admin/keys/{made['id']}", json={"rpm": None}, headers=MASTER)
    assert patched.json()["rpm"] is None
    revoked = await proxy.post("/admin/keys/k/revoke", headers=MASTER)
    assert revoked.json()["status"] == "revoked"
    assert (await proxy.get("/admin/keys", headers=MASTER)).json()["keys"] == []
    assert len((await proxy.get("/admin/keys?all=true", headers=MASTER)).json()["keys"]) == 1
    deleted = await proxy.delete(f"/admin/keys/{made['id']}", headers=MASTER)
    assert deleted.json()["id"] == made["id"]
    gone = await proxy.get(f"/admin/keys/{made['id']}", headers=MASTER)
    assert gone.status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"rpm": "x"}, 400, "expected a whole number"),
        ({"name": ""}, 400, "a key needs a name"),
        ({"period": "year"}, 400, "expected one of day, week, month, total"),
    ],
)
async def test_bad_bodies_are_400(
    proxy: httpx.AsyncClient, body: dict[str, Any], status: int, message: str
) -> None:
    reply = await proxy.post("/admin/keys", json=body, headers=MASTER)
    assert reply.status_code == status and message in reply.json()["error"]["message"]
    raw = await proxy.post("/admin/keys", content=b"[1", headers=MASTER)
    assert raw.status_code == 400 and "not JSON" in raw.text


async def test_spend_cost_header_and_budget(proxy: httpx.AsyncClient) -> None:
    made = await create(proxy, budget_usd=0.02, period="month")
    key = {"x-api-key": made["key"], **ANTHROPIC}
    first = await proxy.post("/v1/messages", json=MESSAGE, headers=key)
    assert first.status_code == 200
    assert float(first.headers["x-anyllm-cost"]) == pytest.approx(0.013)  # 13 tokens at $1000/M
    second = await proxy.post("/v1/messages", json=MESSAGE, headers=key)
    assert second.status_code == 200
    refused = await proxy.post("/v1/messages", json=MESSAGE, headers=key)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_error"
    assert "budget of $0.02 per month is used up ($0.03 spent); it resets at" in error["message"]
    assert int(refused.headers["retry-after"]) > 0
    gemini = await proxy.post(
        "/v1beta/models/gpt-x:generateContent",
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        headers={"x-goog-api-key": made["key"]},
    )
    assert gemini.status_code == 429 and gemini.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    await anyio.sleep(0.4)  # the spend book flushes
    spend = (await proxy.get("/admin/spend?by=model", headers=MASTER)).json()["spend"]
    assert [(r["group"], r["requests"]) for r in spend] == [("gpt-x", 2)]
    assert spend[0]["cost_usd"] == pytest.approx(0.026)
    shown = (await proxy.get(f"/admin/keys/{made['id']}", headers=MASTER)).json()
    assert shown["spent_usd"] == pytest.approx(0.026) and shown["remaining_usd"] == 0.0


async def test_a_forbidden_model_is_403_in_the_callers_format(proxy: httpx.AsyncClient) -> None:
    made = await create(proxy, models=["claude-*"])
    chat = await proxy.post(
        "/v1/chat/completions",
        json={"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {made['key']}"},
    )
    assert chat.status_code == 403
    assert chat.json()["error"]["message"] == "this API key may not use model 'gpt-x'"
