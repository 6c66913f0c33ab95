"""Batches belong to the virtual key that created them: another key cannot see, cancel or read
them (nor the files behind them), through either SDK, on the real proxy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.e2e.conftest import ProxyProcess, main_config
from tests.e2e.mock_upstream import MockUpstream

pytestmark = pytest.mark.e2e


def _key(tmp: Path, name: str, *flags: str) -> str:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp), "ANYLLM_HOME": str(tmp / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "anyllm_cli", "keys", "create", name, "--json", *flags],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return str(json.loads(done.stdout)["key"])


@pytest.fixture(scope="module")
def keyed(
    upstream: MockUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ProxyProcess, str, str, str]]:
    tmp = tmp_path_factory.mktemp("keyed")
    alice, bob = _key(tmp, "alice"), _key(tmp, "bob")
    carol = _key(tmp, "carol", "--models", "claude-*")
    proxy = ProxyProcess.start(tmp, main_config(upstream.url))
    yield proxy, alice, bob, carol
    assert proxy.stop() == 0, "\n".join(proxy.lines[-30:])


def test_another_key_cannot_touch_a_batch(keyed: tuple[ProxyProcess, str, str, str]) -> None:
    proxy, alice, bob, _ = keyed
    params: Any = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 20,
        "messages": [{"role": "user", "content": "mine"}],
    }
    with (
        anthropic.Anthropic(base_url=proxy.url, api_key=alice, max_retries=0, timeout=10) as a,
        anthropic.Anthropic(base_url=proxy.url, api_key=bob, max_retries=0, timeout=10) as b,
    ):
        batch = a.messages.batches.create(requests=[{"custom_id": "x", "params": params}])
        with pytest.raises(anthropic.NotFoundError):
            b.messages.batches.retrieve(batch.id)
        with pytest.raises(anthropic.NotFoundError):
            b.messages.batches.cancel(batch.id)
        assert batch.id not in [x.id for x in b.messages.batches.list()]
        deadline = time.monotonic() + 30
        while a.messages.batches.retrieve(batch.id).processing_status != "ended":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert [r.result.type for r in a.messages.batches.results(batch.id)] == ["succeeded"]
        with pytest.raises(anthropic.NotFoundError):
            b.messages.batches.delete(batch.id)

    line = {
        "custom_id": "y",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "mock-chat", "messages": [{"role": "user", "content": "mine"}]},
    }
    with (
        openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=alice, max_retries=0, timeout=10) as oa,
        openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=bob, max_retries=0, timeout=10) as ob,
    ):
        uploaded = oa.files.create(file=("in.jsonl", json.dumps(line).encode()), purpose="batch")
        with pytest.raises(openai.NotFoundError):
            ob.files.content(uploaded.id)
        with pytest.raises(openai.NotFoundError):
            ob.batches.create(
                input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
        made = oa.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        with pytest.raises(openai.NotFoundError):
            ob.batches.retrieve(made.id)
        assert made.id not in [x.id for x in ob.batches.list()]


def test_a_model_the_key_may_not_use_refuses_the_batch_up_front(
    keyed: tuple[ProxyProcess, str, str, str], upstream: MockUpstream
) -> None:
    proxy, _, _, carol = keyed
    line = {
        "custom_id": "z",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "mock-forbidden", "messages": [{"role": "user", "content": "no"}]},
    }
    with openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=carol, max_retries=0, timeout=10) as c:
        uploaded = c.files.create(file=("in.jsonl", json.dumps(line).encode()), purpose="batch")
        with pytest.raises(
            openai.PermissionDeniedError, match="may not use model 'mock-forbidden'"
        ):
            c.batches.create(
                input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
        assert c.batches.list().data == []
    assert upstream.bodies("mock-forbidden") == []
