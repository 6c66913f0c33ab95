"""The batch and file routes over a real store and engine, with principals set per request: a batch
or file belongs to whoever created it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from anyllm_cli.pipeline.seams import ClientRequest, Principal
from anyllm_cli.server.batches import BatchAPI, routes
from anyllm_cli.server.context import PRINCIPAL_KEY
from anyllm_cli.stores import open_store
from tests.conftest import backend_settings

pytestmark = pytest.mark.anyio
PARAMS = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


@dataclass
class Reply:
    body: dict[str, Any]


class Runner:
    def __init__(self) -> None:
        self.gate = anyio.Event()
        self.seen: list[ClientRequest] = []

    async def run(self, request: ClientRequest) -> Reply:
        self.seen.append(request)
        await self.gate.wait()
        return Reply(
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "m",
                "content": [{"type": "text", "text": "ok"}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 1, "output_tokens": 1},
            }
        )


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Runner]]:
    runner = Runner()
    api = BatchAPI({"mock": backend_settings()})
    app = Starlette(routes=routes(api))

    async def who(scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", []))
        scope[PRINCIPAL_KEY] = Principal(headers.get(b"x-who", b"a").decode(), kind="virtual")
        await app(scope, receive, send)

    async with AsyncExitStack() as stack:
        store = await open_store(f"sqlite://{tmp_path / 'b.db'}")
        stack.push_async_callback(store.close)
        await api.start(stack, store, runner)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=who), base_url="http://t")
        stack.push_async_callback(client.aclose)
        yield client, runner


async def _wait_ended(client: httpx.AsyncClient, path: str, key: str, value: str) -> dict[str, Any]:
    with anyio.fail_after(10):
        while True:
            body: dict[str, Any] = (await client.get(path)).json()
            if body[key] == value:
                return body
            await anyio.sleep(0.02)


async def test_only_the_owner_sees_and_cancels_a_batch(
    served: tuple[httpx.AsyncClient, Runner],
) -> None:
    client, runner = served
    created = await client.post(
        "/mock/v1/messages/batches", json={"requests": [{"custom_id": "x", "params": PARAMS}]}
    )
    assert created.status_code == 200
    bid = created.json()["id"]
    path = f"/v1/messages/batches/{bid}"
    other = {"x-who": "b"}
    for method, url in (
        ("GET", path),
        ("POST", path + "/cancel"),
        ("GET", path + "/results"),
        ("DELETE", path),
    ):
        refused = await client.request(method, url, headers=other)
        assert refused.status_code == 404, (method, url)
        assert refused.json()["error"]["type"] == "not_found_error"
    assert (await client.get("/v1/messages/batches", headers=other)).json()["data"] == []
    assert [b["id"] for b in (await client.get("/v1/messages/batches")).json()["data"]] == [bid]

    not_yet = await client.get(path + "/results")
    assert not_yet.status_code == 400 and "has not ended" in not_yet.json()["error"]["message"]
    assert (await client.delete(path)).status_code == 400
    with anyio.fail_after(10):
        while not runner.seen:
            await anyio.sleep(0.01)
    assert runner.seen[0].principal.id == "a" and runner.seen[0].backend == "mock"
    runner.gate.set()
    ended = await _wait_ended(client, path, "processing_status", "ended")
    assert ended["request_counts"]["succeeded"] == 1
    lines = (await client.get(path + "/results")).text.splitlines()
    assert json.loads(lines[0])["result"]["type"] == "succeeded"
    assert (await client.delete(path)).json() == {"id": bid, "type": "message_batch_deleted"}


async def test_files_and_openai_batches_belong_to_their_owner(
    served: tuple[httpx.AsyncClient, Runner],
) -> None:
    client, runner = served
    runner.gate.set()
    line = {
        "custom_id": "r",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "m", "messages": [{"role": "user", "content": "x"}]},
    }
    files = {"file": ("in.jsonl", json.dumps(line).encode(), "application/jsonl")}
    up = await client.post("/v1/files", data={"purpose": "batch"}, files=files)
    assert up.status_code == 200, up.text
    fid = up.json()["id"]
    other = {"x-who": "b"}
    assert (await client.get(f"/v1/files/{fid}", headers=other)).status_code == 404
    assert (await client.get("/v1/files", headers=other)).json()["data"] == []
    create = {"input_file_id": fid, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    stolen = await client.post("/v1/batches", json=create, headers=other)
    assert stolen.status_code == 404 and stolen.json()["error"]["type"] == "not_found_error"

    made = await client.post("/v1/batches", json=create)
    bid = made.json()["id"]
    assert (await client.get(f"/v1/batches/{bid}", headers=other)).status_code == 404
    done = await _wait_ended(client, f"/v1/batches/{bid}", "status", "completed")
    assert (
        await client.get(f"/v1/files/{done['output_file_id']}", headers=other)
    ).status_code == 404
    meta = (await client.get(f"/v1/files/{done['output_file_id']}")).json()
    content = (await client.get(f"/v1/files/{done['output_file_id']}/content")).content
    assert meta["bytes"] == len(content) and meta["purpose"] == "batch_output"
    assert json.loads(content)["custom_id"] == "r"


async def test_bad_requests_are_4xx_in_the_callers_format(
    served: tuple[httpx.AsyncClient, Runner],
) -> None:
    client, _ = served
    unknown = await client.post(
        "/nope/v1/messages/batches", json={"requests": [{"custom_id": "x", "params": PARAMS}]}
    )
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]["message"]
    wrong = await client.post(
        "/v1/files", data={"purpose": "fine-tune"}, files={"file": ("a", b"{}")}
    )
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "purpose"
    window = await client.post(
        "/v1/batches",
        json={
            "input_file_id": "file-x",
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        },
    )
    assert window.status_code == 404
    assert (await client.get("/v1/batches?limit=0")).status_code == 400


async def test_a_model_no_backend_serves_is_refused_up_front(tmp_path: Path) -> None:
    from anyllm_cli.errors import NotFound
    from anyllm_cli.pipeline.seams import Candidate

    class Router:
        def candidates(self, request: ClientRequest, model: str) -> list[Candidate]:
            if model == "nope":
                raise NotFound(f"no backend serves {model!r}")
            return [Candidate("mock", model, model)]

    runner = Runner()
    runner.router = Router()  # type: ignore[attr-defined]
    api = BatchAPI({"mock": backend_settings()})
    async with AsyncExitStack() as stack:
        store = await open_store(f"sqlite://{tmp_path / 'b.db'}")
        stack.push_async_callback(store.close)
        await api.start(stack, store, runner)
        app = Starlette(routes=routes(api))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            body = {
                "requests": [
                    {"custom_id": "a", "params": PARAMS},
                    {"custom_id": "b", "params": {**PARAMS, "model": "nope"}},
                ]
            }
            refused = await client.post("/v1/messages/batches", json=body)
            assert refused.status_code == 404 and "nope" in refused.json()["error"]["message"]
            assert (await client.get("/v1/messages/batches")).json()["data"] == []


async def test_lists_page_with_after_id(served: tuple[httpx.AsyncClient, Runner]) -> None:
    client, _ = served
    made = []
    for n in range(3):
        body = {"requests": [{"custom_id": f"x{n}", "params": PARAMS}]}
        made.append((await client.post("/v1/messages/batches", json=body)).json()["id"])
    first = (await client.get("/v1/messages/batches?limit=2")).json()
    assert [b["id"] for b in first["data"]] == made[::-1][:2] and first["has_more"] is True
    rest = (await client.get(f"/v1/messages/batches?limit=2&after_id={first['last_id']}")).json()
    assert [b["id"] for b in rest["data"]] == [made[0]] and rest["has_more"] is False
    assert (await client.get("/v1/batches")).json()[
        "data"
    ] == []  # an Anthropic batch is not OpenAI's


async def test_a_key_whose_budget_is_used_up_starts_no_batch(tmp_path: Path) -> None:
    from anyllm_cli.keys import manage

    api = BatchAPI({"mock": backend_settings()})
    async with AsyncExitStack() as stack:
        store = await open_store(f"sqlite://{tmp_path / 'b.db'}")
        stack.push_async_callback(store.close)
        record, _ = await manage.create(
            store, manage.KeyOptions(name="k", budget_usd=1.0, period="total"), 1e9
        )
        await api.start(stack, store, Runner())
        app = Starlette(routes=routes(api))

        async def as_key(scope: Scope, receive: Receive, send: Send) -> None:
            scope[PRINCIPAL_KEY] = Principal(record.id, "k", "virtual")
            await app(scope, receive, send)

        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=as_key), base_url="http://t"
        ) as client:
            body = {"requests": [{"custom_id": "a", "params": PARAMS}]}
            assert (await client.post("/v1/messages/batches", json=body)).status_code == 200
            await store.record_spend(
                record.id, day="2026-12-07", model="m", backend="mock", input_tokens=1,
                output_tokens=1, cost_usd=1.0, requests=1,
            )  # fmt: skip
            refused = await client.post("/v1/messages/batches", json=body)
            assert refused.status_code == 429
            error = refused.json()["error"]
            assert error["type"] == "rate_limit_error"
            assert "budget of $1.00 in total is used up" in error["message"]


async def test_files_list_pages_as_openai_does(served: tuple[httpx.AsyncClient, Runner]) -> None:
    client, _ = served
    ids = []
    for n in range(3):
        files = {"file": (f"f{n}.jsonl", b"{}", "application/jsonl")}
        up = await client.post("/v1/files", data={"purpose": "batch"}, files=files)
        ids.append(up.json()["id"])
        await anyio.sleep(0.01)  # distinct creation times
    newest_first = list(reversed(ids))
    everything = (await client.get("/v1/files")).json()
    assert [f["id"] for f in everything["data"]] == newest_first and not everything["has_more"]
    first = (await client.get("/v1/files", params={"limit": 2})).json()
    assert [f["id"] for f in first["data"]] == newest_first[:2] and first["has_more"]
    assert (first["first_id"], first["last_id"]) == (newest_first[0], newest_first[1])
    rest = (await client.get("/v1/files", params={"limit": 2, "after": first["last_id"]})).json()
    assert [f["id"] for f in rest["data"]] == newest_first[2:] and not rest["has_more"]
    oldest = (await client.get("/v1/files", params={"order": "asc", "limit": 1})).json()
    assert [f["id"] for f in oldest["data"]] == ids[:1] and oldest["has_more"]
    for bad in ({"order": "up"}, {"limit": "0"}, {"after": "file-nope"}):
        refused = await client.get("/v1/files", params=bad)
        assert refused.status_code == 400 and refused.json()["error"]["param"] in bad
