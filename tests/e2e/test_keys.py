"""Virtual keys end to end: the real CLI as a subprocess, the real proxy, the real store, the SDKs.

create -> use (anthropic and openai SDKs) -> refusals (403, 429 with headers) -> revoke seen within
1 s -> spend -> restart keeps everything -> no secret in the store file or the logs. Then the
concurrency figure: 50 concurrent requests against rpm=10 let exactly 10 through with 1 worker, 2
workers, and two instances sharing PostgreSQL + Redis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import anthropic
import anyio
import httpx
import openai
import pytest

from tests.e2e.conftest import Closing, ProxyProcess
from tests.e2e.mock_upstream import UPSTREAM_KEY, MockUpstream

pytestmark = pytest.mark.e2e
PG_URL = os.environ.get("ANYLLM_TEST_POSTGRES_URL", "")
REDIS_URL = os.environ.get("ANYLLM_TEST_REDIS_URL", "")
MASTER = "master-test-key"


def config(upstream_url: str) -> str:
    return f"""
default_backend = "mock"

[server]
log_format = "json"

[backends.mock]
kind = "openai"
base_url = "{upstream_url}"
api_key = "{UPSTREAM_KEY}"
read_timeout = 2.0
max_retries = 0
model_map = {{ "claude-sonnet-4-6" = "mock-model" }}

[prices."mock-model"]
input = 1.0
output = 2.0
"""


def env_for(tmp: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "ANYLLM_HOME": str(tmp / "home"),
        **extra,
    }


def cli(tmp: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "anyllm_cli", "keys", *args],
        capture_output=True,
        text=True,
        env={**env_for(tmp), **(env or {})},
        cwd=tmp,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def start(tmp: Path, upstream: MockUpstream, *args: str, **env: str) -> ProxyProcess:
    return ProxyProcess.start(
        tmp, config(upstream.url), *args, env={"ANYLLM_MASTER_KEY": MASTER, **env}
    )


def test_create_use_limit_revoke_restart(
    tmp_path: Path, upstream: MockUpstream, closing: Closing
) -> None:
    made = json.loads(
        cli(tmp_path, "create", "ci", "--rpm", "3", "--models", "claude-*,mock-*", "--json")
    )
    secret = made["key"]
    proxy = start(tmp_path, upstream)
    try:
        assert any('"active_keys": 1' in line for line in proxy.lines)
        client = closing(anthropic.Anthropic(base_url=proxy.url, api_key=secret, max_retries=0))
        oai = closing(openai.OpenAI(base_url=proxy.url + "/v1", api_key=secret, max_retries=0))

        raw = client.messages.with_raw_response.create(
            model="claude-sonnet-4-6", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        )
        assert raw.parse().content[0].text == "mock reply: hi"  # type: ignore[union-attr]
        assert raw.headers["anthropic-ratelimit-requests-limit"] == "3"
        assert raw.headers["anthropic-ratelimit-requests-remaining"] == "2"
        assert float(raw.headers["x-anyllm-cost"]) == pytest.approx((11 * 1 + 7 * 2) / 1e6)

        with pytest.raises(openai.PermissionDeniedError, match=r"may not use model 'gpt-4\.1'"):
            oai.chat.completions.create(
                model="gpt-4.1", messages=[{"role": "user", "content": "x"}]
            )

        chat = oai.chat.completions.with_raw_response.create(
            model="mock-model", messages=[{"role": "user", "content": "yo"}]
        )
        assert chat.headers["x-ratelimit-remaining-requests"] == "1"
        with client.messages.stream(
            model="claude-sonnet-4-6", max_tokens=50, messages=[{"role": "user", "content": "s"}]
        ) as stream:
            assert "mock reply" in stream.get_final_text()

        with pytest.raises(anthropic.RateLimitError) as limited:
            client.messages.create(
                model="claude-sonnet-4-6", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
        headers = limited.value.response.headers
        assert 1 <= int(headers["retry-after"]) <= 60
        assert headers["anthropic-ratelimit-requests-remaining"] == "0"
        assert "3 requests per minute" in limited.value.message

        anon = httpx.post(proxy.url + "/v1/messages", json={}, timeout=5)
        assert anon.status_code == 401 and "missing API key" in anon.text

        cli(tmp_path, "revoke", "ci")
        revoked_at = time.monotonic()
        while True:
            reply = httpx.post(
                proxy.url + "/v1/chat/completions",
                headers={"authorization": f"Bearer {secret}"},
                json={"model": "mock-model", "messages": []},
                timeout=5,
            )
            if reply.status_code == 401:
                break
            assert time.monotonic() - revoked_at < 1.0, "the revoke was not seen within 1 s"
            time.sleep(0.05)
        assert reply.json()["error"]["message"] == "this API key was revoked"
        time.sleep(0.5)  # let the spend book flush
    finally:
        assert proxy.stop() == 0
    spend = json.loads(cli(tmp_path, "spend", "ci", "--by", "model", "--json"))
    assert [(r["group"], r["requests"]) for r in spend] == [("mock-model", 3)]
    assert spend[0]["cost_usd"] > 0

    restarted = start(tmp_path, upstream)  # restart keeps everything
    try:
        reply = httpx.post(
            restarted.url + "/v1/messages", headers={"x-api-key": secret}, json={}, timeout=5
        )
        assert reply.status_code == 401  # still revoked; the store still holds the key
        listed = json.loads(cli(tmp_path, "list", "--all", "--json"))
        assert [(k["name"], k["status"], k["rpm"]) for k in listed] == [("ci", "revoked", 3)]
    finally:
        assert restarted.stop() == 0
    for path in (tmp_path / "home").glob("anyllm.db*"):
        data = path.read_bytes()
        assert secret.encode() not in data and secret[14:].encode() not in data
    logs = "\n".join(proxy.lines + restarted.lines)
    assert secret not in logs and secret[14:] not in logs


def test_admin_api_and_remote_cli(tmp_path: Path, upstream: MockUpstream) -> None:
    proxy = start(tmp_path, upstream)
    try:
        remote = {"ANYLLM_MASTER_KEY": MASTER}
        made = json.loads(
            cli(
                tmp_path, "create", "bot", "--budget", "2", "--url", proxy.url, "--json", env=remote
            )
        )
        assert made["key"].startswith("sk-anyllm-") and made["budget_usd"] == 2.0
        auth = {"authorization": f"Bearer {MASTER}"}
        with httpx.Client(base_url=proxy.url, headers=auth, timeout=5) as admin:
            keys = admin.get("/admin/keys").json()["keys"]
            assert [k["name"] for k in keys] == ["bot"]
            patched = admin.patch(f"/admin/keys/{made['id']}", json={"rpm": 5, "budget_usd": None})
            assert patched.json()["rpm"] == 5 and patched.json()["budget_usd"] is None
            generated = admin.post(
                "/key/generate",
                json={"key_alias": "lite", "rpm_limit": 2, "max_budget": 1.5, "duration": "1d"},
            ).json()
            assert generated["key"].startswith("sk-anyllm-") and generated["rpm_limit"] == 2
            info = admin.get("/key/info", params={"key": generated["key"]}).json()
            assert info["info"]["key_alias"] == "lite" and info["info"]["max_budget"] == 1.5
            assert (
                admin.post("/key/update", json={"key": generated["key"], "tpm_limit": 9}).json()[
                    "tpm_limit"
                ]
                == 9
            )
            assert len(admin.get("/key/list").json()["keys"]) == 2
            assert admin.post("/key/delete", json={"keys": [generated["key"]]}).json()[
                "deleted_keys"
            ]
            assert admin.get("/admin/spend", params={"by": "day"}).json() == {"spend": []}
            missing = admin.get("/admin/keys/nope")
            assert missing.status_code == 404 and "no key" in missing.json()["error"]["message"]
            user = httpx.get(
                proxy.url + "/admin/keys", headers={"x-api-key": made["key"]}, timeout=5
            )
            assert user.status_code == 401
        shown = json.loads(cli(tmp_path, "show", "bot", "--url", proxy.url, "--json", env=remote))
        assert shown["rpm"] == 5
        rotated = json.loads(
            cli(tmp_path, "rotate", "bot", "--url", proxy.url, "--json", env=remote)
        )
        assert rotated["key"] != made["key"] and rotated["id"] == made["id"]
    finally:
        assert proxy.stop() == 0


# -- exact under concurrency ---------------------------------------------------------------------


async def _burst(urls: list[str], secret: str, n: int = 50) -> dict[int, int]:
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one(i: int) -> None:
            reply = await client.post(
                urls[i % len(urls)] + "/v1/messages",
                headers={"x-api-key": secret, "anthropic-version": "2023-06-01"},
                json={
                    "model": "claude-sonnet-4-6",
                    "max_tokens": 5,
                    "messages": [{"role": "user", "content": "x"}],
                },
            )
            statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1

        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)
    return statuses


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_fifty_concurrent_requests_against_rpm_10_on_sqlite(
    tmp_path: Path, upstream: MockUpstream, workers: str
) -> None:
    secret = json.loads(cli(tmp_path, "create", "burst", "--rpm", "10", "--json"))["key"]
    proxy = start(tmp_path, upstream, "--workers", workers)
    try:
        assert anyio.run(_burst, [proxy.url], secret) == {200: 10, 429: 40}
    finally:
        assert proxy.stop() == 0


@pytest.fixture
def shared_pg() -> Iterator[str]:
    if not PG_URL or not REDIS_URL:
        pytest.skip("ANYLLM_TEST_POSTGRES_URL and ANYLLM_TEST_REDIS_URL are not both set")
    import psycopg

    name = f"anyllm_e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


@pytest.mark.slow
def test_two_instances_sharing_postgres_and_redis(
    tmp_path: Path, upstream: MockUpstream, shared_pg: str
) -> None:
    redis_url = REDIS_URL  # one key id per run: the limiter's Redis keys cannot collide
    shared = {"ANYLLM_DB": shared_pg, "ANYLLM_REDIS_URL": redis_url}
    secret = json.loads(cli(tmp_path, "create", "burst", "--rpm", "10", "--json", env=shared))[
        "key"
    ]
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    a = start(a_dir, upstream, **shared)
    try:
        b = start(b_dir, upstream, **shared)
        try:
            assert anyio.run(_burst, [a.url, b.url], secret) == {200: 10, 429: 40}
        finally:
            assert b.stop() == 0
    finally:
        assert a.stop() == 0
