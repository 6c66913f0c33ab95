"""Batches through the real `anyllm serve` over the mock upstream, driven by the official SDKs:
Anthropic Message Batches (`client.messages.batches.*`) and OpenAI Files + Batches."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.e2e.conftest import PROXY_KEY, ProxyProcess
from tests.e2e.mock_upstream import MockUpstream

pytestmark = pytest.mark.e2e
DEADLINE_S = 30.0


@pytest.fixture
def claude(proxy: ProxyProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=proxy.url, api_key=PROXY_KEY, max_retries=0, timeout=10) as c:
        yield c


@pytest.fixture
def oai(proxy: ProxyProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{proxy.url}/v1", api_key=PROXY_KEY, max_retries=0, timeout=10
    ) as c:
        yield c


def _params(text: str, model: str = "claude-sonnet-4-6") -> Any:
    return {"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": text}]}


def _until(check: Any) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_message_batches_with_the_anthropic_sdk(
    claude: anthropic.Anthropic, upstream: MockUpstream
) -> None:
    requests: Any = [
        {"custom_id": f"q{i}", "params": _params(f"batch question {i}")} for i in range(5)
    ]
    requests.append({"custom_id": "bad", "params": _params("nope", model="mock-400")})
    batch = claude.messages.batches.create(requests=requests)
    assert batch.id.startswith("msgbatch_") and batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 6

    ended = _until(
        lambda: (b := claude.messages.batches.retrieve(batch.id)).processing_status == "ended" and b
    )
    assert ended.request_counts.succeeded == 5 and ended.request_counts.errored == 1
    assert ended.ended_at is not None and ended.results_url is not None

    results = {r.custom_id: r.result for r in claude.messages.batches.results(batch.id)}
    assert set(results) == {f"q{i}" for i in range(5)} | {"bad"}
    first = results["q0"]
    assert first.type == "succeeded"
    assert first.message.content[0].type == "text"
    assert first.message.content[0].text == "mock reply: batch question 0"
    assert results["bad"].type == "errored"
    assert results["bad"].error.error.type == "invalid_request_error"
    sent = [b for b in upstream.bodies("mock-model") if "batch question" in json.dumps(b)]
    assert len(sent) == 5 and all(not b.get("stream") for b in sent)

    assert batch.id in [b.id for b in claude.messages.batches.list(limit=100)]
    assert claude.messages.batches.delete(batch.id).id == batch.id
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.batches.retrieve(batch.id)


def test_a_bad_batch_is_refused_with_line_numbers(
    claude: anthropic.Anthropic, oai: openai.OpenAI
) -> None:
    dup: Any = [
        {"custom_id": "a", "params": _params("x")},
        {"custom_id": "a", "params": _params("y")},
    ]
    with pytest.raises(anthropic.BadRequestError, match="line 2: custom_id 'a' repeats line 1"):
        claude.messages.batches.create(requests=dup)
    bad = b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m"}}\n'
    uploaded = oai.files.create(file=("bad.jsonl", bad), purpose="batch")
    with pytest.raises(openai.BadRequestError, match=r"line 1: body\.messages"):
        oai.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )


def test_openai_batches_with_files(oai: openai.OpenAI) -> None:
    lines = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "mock-chat",
                "messages": [{"role": "user", "content": f"openai batch {i}"}],
            },
        }
        for i in range(4)
    ]
    lines.append(
        {**lines[0], "custom_id": "fail", "body": {**lines[0]["body"], "model": "mock-400"}}
    )
    data = b"\n".join(json.dumps(x).encode() for x in lines) + b"\n"
    uploaded = oai.files.create(file=("in.jsonl", data), purpose="batch")
    assert uploaded.bytes == len(data) and oai.files.retrieve(uploaded.id).filename == "in.jsonl"
    assert oai.files.content(uploaded.id).content == data

    batch = oai.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"job": "e2e"},
    )
    assert batch.status == "in_progress" and batch.metadata == {"job": "e2e"}
    done = _until(lambda: (b := oai.batches.retrieve(batch.id)).status == "completed" and b)
    assert done.request_counts is not None
    assert (
        done.request_counts.total,
        done.request_counts.completed,
        done.request_counts.failed,
    ) == (5, 4, 1)
    assert done.output_file_id and done.error_file_id

    out = [json.loads(x) for x in oai.files.content(done.output_file_id).text.splitlines()]
    assert [x["custom_id"] for x in out] == ["r0", "r1", "r2", "r3"]
    reply = out[0]["response"]
    assert reply["status_code"] == 200
    assert reply["body"]["choices"][0]["message"]["content"] == "mock reply: openai batch 0"
    errors = [json.loads(x) for x in oai.files.content(done.error_file_id).text.splitlines()]
    assert [(x["custom_id"], x["response"]["status_code"]) for x in errors] == [("fail", 400)]

    assert batch.id in [b.id for b in oai.batches.list(limit=100)]
    assert oai.files.delete(uploaded.id).deleted
    with pytest.raises(openai.NotFoundError):
        oai.files.retrieve(uploaded.id)


def test_cancel_ends_every_open_item_as_canceled(
    claude: anthropic.Anthropic, oai: openai.OpenAI
) -> None:
    # mock-429 always refuses with retry-after: 7, so every item sits in the engine's backoff
    requests: Any = [
        {"custom_id": f"s{i}", "params": _params("wait", model="mock-429")} for i in range(3)
    ]
    batch = claude.messages.batches.create(requests=requests)
    canceling = claude.messages.batches.cancel(batch.id)
    assert canceling.processing_status in ("canceling", "ended")
    ended = _until(
        lambda: (b := claude.messages.batches.retrieve(batch.id)).processing_status == "ended" and b
    )
    assert ended.request_counts.canceled == 3 and ended.cancel_initiated_at is not None
    assert {r.result.type for r in claude.messages.batches.results(batch.id)} == {"canceled"}
    # the OpenAI side cannot see an Anthropic batch
    with pytest.raises(openai.NotFoundError):
        oai.batches.retrieve(batch.id)


def test_the_cli_submits_waits_and_fetches_results(proxy: ProxyProcess, tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    rows = [{"custom_id": f"c{i}", "params": _params(f"from the shell {i}")} for i in range(3)]
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "ANYLLM_URL": proxy.url,
        "ANYLLM_API_KEY": PROXY_KEY,
    }

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "anyllm_cli", "batch", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    ended = json.loads(cli("submit", "in.jsonl", "--wait", "--json"))
    assert ended["processing_status"] == "ended" and ended["request_counts"]["succeeded"] == 3
    lines = [json.loads(x) for x in cli("results", ended["id"]).splitlines()]
    assert [x["custom_id"] for x in lines] == ["c0", "c1", "c2"]
    assert lines[1]["result"]["message"]["content"][0]["text"] == "mock reply: from the shell 1"
    header, *table = [line.split("\t") for line in cli("list").splitlines()]  # piped: plain
    assert header == ["id", "status", "done", "failed", "total", "created"]
    row = next(r for r in table if r[0] == ended["id"])
    assert row[1:5] == ["ended", "3", "0", "3"] and row[5].endswith("Z")
