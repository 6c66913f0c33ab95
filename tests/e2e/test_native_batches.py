"""Native batches end to end: the real proxy hands batches to backends with `batch = "native"`
(a strict mock of OpenAI's Files + Batches and Anthropic's Message Batches), polls them, and
returns one result per custom_id, with each success's cost booked at half price; cancel reaches the
upstream; a proxy killed mid-poll, or between the upstream create and writing its id, resumes
without creating a second upstream batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.e2e.conftest import PROXY_KEY, ProxyProcess
from tests.e2e.mock_batches import USAGE_IN, USAGE_OUT, MockBatchAPIs
from tests.e2e.mock_upstream import UPSTREAM_KEY

pytestmark = pytest.mark.e2e
DEADLINE_S = 20.0
# USD per million tokens, for the upstream models (the mock is on loopback: free unless priced)
GPT = {"input": 2.0, "output": 8.0}
CLAUDE = {"input": 3.0, "output": 15.0}


def config(url: str) -> str:
    return f"""
default_backend = "oai"

[server]
proxy_api_keys = ["{PROXY_KEY}"]
log_format = "json"

[batch]
native_poll_seconds = 0.05
native_poll_max_seconds = 0.2
lease_seconds = 1  # a killed proxy's lease on a batch it was stepping expires this soon

[backends.oai]
kind = "openai"
base_url = "{url}/v1"
api_key = "{UPSTREAM_KEY}"
batch = "native"
max_retries = 0
model_map = {{ "gpt-batch" = "mock-gpt" }}

[backends.claude]
kind = "anthropic"
base_url = "{url}"
api_key = "{UPSTREAM_KEY}"
batch = "native"
max_retries = 0
model_map = {{ "claude-sonnet-4-6" = "claude-upstream" }}

[prices."mock-gpt"]
input = {GPT["input"]}
output = {GPT["output"]}

[prices."claude-upstream"]
input = {CLAUDE["input"]}
output = {CLAUDE["output"]}
"""


def _env(tmp: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp), "ANYLLM_HOME": str(tmp / "home")}


def _keys(tmp: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "anyllm_cli", "keys", *args],
        env=_env(tmp),
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def _until(check: Callable[[], Any], what: str = "") -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _half_price(rates: dict[str, float], items: int) -> float:
    per_item = (USAGE_IN * rates["input"] + USAGE_OUT * rates["output"]) / 1_000_000
    return items * per_item / 2


def _params(text: str, model: str = "claude-sonnet-4-6") -> Any:
    return {"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": text}]}


def _chat_lines(n: int, model: str = "gpt-batch") -> bytes:
    lines = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": f"item {i}"}]},
        }
        for i in range(n)
    ]
    return b"".join(json.dumps(x).encode() + b"\n" for x in lines)


class Setup:
    def __init__(self, tmp: Path, mock: MockBatchAPIs, key: str) -> None:
        self.tmp, self.mock, self.key = tmp, mock, key
        self.proxy = ProxyProcess.start(tmp, config(mock.url))

    def restart(self, *, kill: bool) -> None:
        if kill:
            self.proxy.proc.send_signal(signal.SIGKILL)
            self.proxy.proc.wait(10)
            self.proxy.stop()
        else:
            assert self.proxy.stop() == 0
        self.proxy = ProxyProcess.start(self.tmp, config(self.mock.url))

    def claude(self) -> anthropic.Anthropic:
        url = f"{self.proxy.url}/claude"
        return anthropic.Anthropic(base_url=url, api_key=self.key, max_retries=0, timeout=10)

    def oai(self) -> openai.OpenAI:
        url = f"{self.proxy.url}/v1"
        return openai.OpenAI(base_url=url, api_key=self.key, max_retries=0, timeout=10)

    def spend(self) -> dict[str, tuple[int, float]]:
        time.sleep(0.6)  # the spend book flushes every 0.25 s
        rows = json.loads(_keys(self.tmp, "spend", "batcher", "--by", "model", "--json"))
        return {r["group"]: (r["requests"], r["cost_usd"]) for r in rows}


def _setup(tmp: Path, **mock_options: Any) -> Iterator[Setup]:
    mock = MockBatchAPIs(**mock_options)
    mock.start()
    key = json.loads(_keys(tmp, "create", "batcher", "--json"))["key"]
    setup = Setup(tmp, mock, key)
    try:
        yield setup
    finally:
        setup.proxy.stop()
        mock.stop()


@pytest.fixture
def native(tmp_path: Path) -> Iterator[Setup]:
    yield from _setup(tmp_path)


def test_anthropic_sdk_batch_runs_on_message_batches(native: Setup) -> None:
    requests: Any = [{"custom_id": f"q{i}", "params": _params(f"question {i}")} for i in range(4)]
    requests.append({"custom_id": "bad", "params": _params("nope", model="mock-400")})
    with native.claude() as claude:
        batch = claude.messages.batches.create(requests=requests)
        assert batch.id.startswith("msgbatch_") and batch.processing_status == "in_progress"
        ended = _until(
            lambda: (
                (b := claude.messages.batches.retrieve(batch.id)).processing_status == "ended" and b
            ),
            "the batch to end",
        )
        assert (ended.request_counts.succeeded, ended.request_counts.errored) == (4, 1)
        results = {r.custom_id: r.result for r in claude.messages.batches.results(batch.id)}

    assert set(results) == {f"q{i}" for i in range(4)} | {"bad"}
    for i in range(4):
        reply = results[f"q{i}"]
        assert reply.type == "succeeded"
        assert reply.message.content[0].type == "text"
        assert reply.message.content[0].text == f"native reply: question {i}"
    assert results["bad"].type == "errored"
    assert results["bad"].error.error.type == "invalid_request_error"

    mock = native.mock
    assert mock.creates == {"openai": 0, "anthropic": 1}
    posted = [r for r in mock.requests if (r.method, r.path) == ("POST", "/v1/messages/batches")]
    created = json.loads(posted[0].body)
    models = {r["params"]["model"] for r in created["requests"]}
    assert models == {"claude-upstream", "mock-400"}  # mapped as a live request would be
    assert not [r for r in mock.requests if r.path.startswith("/v1/messages?")]  # nothing live
    assert native.spend() == {"claude-upstream": (4, pytest.approx(_half_price(CLAUDE, 4)))}


def test_openai_sdk_batch_runs_on_openai_batches(native: Setup) -> None:
    data = _chat_lines(3) + _chat_lines(1, model="mock-400").replace(b'"r0"', b'"bad"')
    with native.oai() as oai:
        uploaded = oai.files.create(file=("in.jsonl", data), purpose="batch")
        batch = oai.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        done = _until(
            lambda: (b := oai.batches.retrieve(batch.id)).status == "completed" and b,
            "the batch to complete",
        )
        assert done.request_counts is not None
        assert (done.request_counts.completed, done.request_counts.failed) == (3, 1)
        assert done.output_file_id and done.error_file_id
        out = [json.loads(x) for x in oai.files.content(done.output_file_id).text.splitlines()]
        errors = [json.loads(x) for x in oai.files.content(done.error_file_id).text.splitlines()]

    assert [x["custom_id"] for x in out] == ["r0", "r1", "r2"]
    body = out[1]["response"]["body"]
    assert body["choices"][0]["message"]["content"] == "native reply: item 1"
    assert [(x["custom_id"], x["response"]["status_code"]) for x in errors] == [("bad", 400)]

    mock = native.mock
    assert mock.creates == {"openai": 1, "anthropic": 0}
    upstream = next(s for s in mock.batches.values())
    assert upstream["metadata"] == {"anyllm_batch": batch.id}
    assert {r["body"]["model"] for r in upstream["requests"]} == {"mock-gpt", "mock-400"}
    assert native.spend() == {"mock-gpt": (3, pytest.approx(_half_price(GPT, 3)))}


def test_a_batch_the_upstream_refuses_ends_with_its_reason(native: Setup) -> None:
    odd = {**_params("x"), "not_a_field": 1}  # the proxy keeps unknown fields; the API does not
    with native.claude() as claude:
        batch = claude.messages.batches.create(requests=[{"custom_id": "odd", "params": odd}])
        _until(
            lambda: claude.messages.batches.retrieve(batch.id).processing_status == "ended",
            "the refused batch to end",
        )
        [result] = list(claude.messages.batches.results(batch.id))
    assert result.result.type == "errored"
    assert result.result.error.error.type == "invalid_request_error"
    assert "not_a_field" in result.result.error.error.message
    assert native.mock.creates == {"openai": 0, "anthropic": 0}


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[Setup]:
    yield from _setup(tmp_path, polls_to_end=10_000)  # ends only when canceled


def test_cancel_reaches_the_upstream(slow: Setup) -> None:
    requests: Any = [{"custom_id": f"c{i}", "params": _params(f"c {i}")} for i in range(4)]
    with slow.claude() as claude, slow.oai() as oai:
        a = claude.messages.batches.create(requests=requests)
        uploaded = oai.files.create(file=("in.jsonl", _chat_lines(4)), purpose="batch")
        o = oai.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        _until(lambda: sum(slow.mock.creates.values()) == 2, "both upstream creates")
        assert claude.messages.batches.cancel(a.id).processing_status == "canceling"
        assert oai.batches.cancel(o.id).status == "cancelling"
        _until(lambda: len(slow.mock.cancels) == 2, "both upstream cancels")
        ended = _until(
            lambda: (
                (b := claude.messages.batches.retrieve(a.id)).processing_status == "ended" and b
            ),
            "the Anthropic batch to end",
        )
        assert (ended.request_counts.succeeded, ended.request_counts.canceled) == (2, 2)
        kinds = {r.custom_id: r.result.type for r in claude.messages.batches.results(a.id)}
        assert kinds == {"c0": "succeeded", "c1": "succeeded", "c2": "canceled", "c3": "canceled"}
        done = _until(
            lambda: (b := oai.batches.retrieve(o.id)).status == "cancelled" and b,
            "the OpenAI batch to be cancelled",
        )
        assert done.request_counts is not None and done.request_counts.completed == 2
        assert done.output_file_id is not None
        assert len(oai.files.content(done.output_file_id).text.splitlines()) == 2
    spend = slow.spend()
    assert spend["mock-gpt"] == (2, pytest.approx(_half_price(GPT, 2)))
    assert spend["claude-upstream"] == (2, pytest.approx(_half_price(CLAUDE, 2)))


@pytest.fixture
def resumable(tmp_path: Path) -> Iterator[Setup]:
    yield from _setup(tmp_path, polls_to_end=12)  # ~2 s of polling, at most 0.2 s apart


def test_a_proxy_killed_mid_poll_resumes_the_same_upstream_batch(resumable: Setup) -> None:
    requests: Any = [{"custom_id": f"k{i}", "params": _params(f"k {i}")} for i in range(3)]
    with resumable.claude() as claude:
        batch = claude.messages.batches.create(requests=requests)
    mock = resumable.mock
    _until(lambda: any(s["polls"] >= 2 for s in mock.batches.values()), "polling to start")
    resumable.restart(kill=True)
    with resumable.claude() as claude:
        ended = _until(
            lambda: (
                (b := claude.messages.batches.retrieve(batch.id)).processing_status == "ended" and b
            ),
            "the batch to end after the restart",
        )
        results = {r.custom_id: r.result.type for r in claude.messages.batches.results(batch.id)}
    assert ended.request_counts.succeeded == 3
    assert results == {"k0": "succeeded", "k1": "succeeded", "k2": "succeeded"}
    assert mock.creates["anthropic"] == 1
    assert resumable.spend() == {"claude-upstream": (3, pytest.approx(_half_price(CLAUDE, 3)))}


@pytest.fixture
def held(tmp_path: Path) -> Iterator[Setup]:
    yield from _setup(tmp_path, create_delay=30.0)  # a create's answer never arrives in time


@pytest.mark.parametrize("api", ["anthropic", "openai"])
def test_a_crash_between_create_and_its_write_adopts_the_upstream_batch(
    held: Setup, api: str
) -> None:
    mock = held.mock
    if api == "anthropic":
        requests: Any = [{"custom_id": f"w{i}", "params": _params(f"w {i}")} for i in range(2)]
        with held.claude() as claude:
            batch_id = claude.messages.batches.create(requests=requests).id
    else:
        with held.oai() as oai:
            uploaded = oai.files.create(file=("in.jsonl", _chat_lines(2)), purpose="batch")
            batch_id = oai.batches.create(
                input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
            ).id
    assert mock.created.wait(DEADLINE_S), "the upstream create never came"
    held.restart(kill=True)  # the proxy dies before the upstream's answer (and its id) arrive
    mock.create_delay = 0.0
    if api == "anthropic":
        with held.claude() as claude:
            _until(
                lambda: claude.messages.batches.retrieve(batch_id).processing_status == "ended",
                "the batch to end",
            )
            kinds = [r.result.type for r in claude.messages.batches.results(batch_id)]
    else:
        with held.oai() as oai:
            done = _until(
                lambda: (b := oai.batches.retrieve(batch_id)).status == "completed" and b,
                "the batch to complete",
            )
            assert done.output_file_id is not None
            content = oai.files.content(done.output_file_id).text
            kinds = ["succeeded" for _ in content.splitlines()]
    assert kinds == ["succeeded", "succeeded"]
    assert mock.creates[api] == 1, "a second upstream batch was created"
