"""The batch APIs' finer points through the real `anyllm serve` and the official SDKs: list paging
in both directions (Anthropic's `SyncPage`, OpenAI's `CursorPage`), deleting a batch's output and
error files, Responses and Embeddings batches passed through, and live traffic going first when a
batch saturates its key. Each test uses a key of its own, so its listings hold only its batches."""

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
DEADLINE_S = 30.0
KEYS = ("pager", "oapager", "deleter", "native")
BUSY_RPM = 10
PRICES = """
[prices."mock-resp"]
input = 1.0
output = 2.0

[prices."mock-embed"]
input = 0.5
output = 0.0
"""


def _keys_cli(tmp: Path, *args: str) -> Any:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp), "ANYLLM_HOME": str(tmp / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "anyllm_cli", "keys", *args, "--json"],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def _key(tmp: Path, name: str, *flags: str) -> str:
    return str(_keys_cli(tmp, "create", name, *flags)["key"])


@pytest.fixture(scope="module")
def served(
    upstream: MockUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ProxyProcess, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("batchapi")
    keys = {name: _key(tmp, name) for name in KEYS}
    keys["busy"] = _key(tmp, "busy", "--rpm", str(BUSY_RPM))
    proxy = ProxyProcess.start(tmp, main_config(upstream.url) + PRICES)
    proxy.home = tmp  # type: ignore[attr-defined]
    yield proxy, keys
    assert proxy.stop() == 0, "\n".join(proxy.lines[-30:])


def _until(check: Any) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out")


def _params(text: str, model: str = "claude-sonnet-4-6") -> Any:
    return {"model": model, "max_tokens": 20, "messages": [{"role": "user", "content": text}]}


def _chat_line(custom_id: str, model: str = "mock-chat") -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": custom_id}]},
    }


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(x).encode() + b"\n" for x in lines)


def test_anthropic_list_pages_both_ways(served: tuple[ProxyProcess, dict[str, str]]) -> None:
    proxy, keys = served
    with anthropic.Anthropic(
        base_url=proxy.url, api_key=keys["pager"], max_retries=0, timeout=10
    ) as c:
        made = [
            c.messages.batches.create(requests=[{"custom_id": "x", "params": _params(f"p{n}")}]).id
            for n in range(7)
        ]
        newest_first = made[::-1]
        # auto-pagination forwards: after_id=<last_id> until has_more is false
        assert [b.id for b in c.messages.batches.list(limit=3)] == newest_first
        first = c.messages.batches.list(limit=3)
        assert (first.first_id, first.last_id, first.has_more) == (
            newest_first[0],
            newest_first[2],
            True,
        )
        last = c.messages.batches.list(limit=3, after_id=newest_first[5])
        assert [b.id for b in last.data] == [newest_first[6]] and last.has_more is False
        # backwards: the pages just newer than the cursor, each newest first
        page = c.messages.batches.list(limit=2, before_id=newest_first[5])
        assert [b.id for b in page.data] == newest_first[3:5]
        assert (page.first_id, page.last_id, page.has_more) == (
            newest_first[3],
            newest_first[4],
            True,
        )
        # the SDK follows before_id=<first_id>: every newer batch, page by page
        seen = [b.id for b in c.messages.batches.list(limit=2, before_id=newest_first[5])]
        assert seen == newest_first[3:5] + newest_first[1:3] + newest_first[0:1]
        top = c.messages.batches.list(limit=2, before_id=newest_first[1])
        assert [b.id for b in top.data] == newest_first[:1] and top.has_more is False
        empty = c.messages.batches.list(before_id=newest_first[0])
        assert (empty.data, empty.has_more, empty.first_id, empty.last_id) == (
            [],
            False,
            None,
            None,
        )
        with pytest.raises(anthropic.BadRequestError, match="not both"):
            c.messages.batches.list(after_id=made[0], before_id=made[1])


def test_openai_batch_list_pages_with_after(served: tuple[ProxyProcess, dict[str, str]]) -> None:
    proxy, keys = served
    with openai.OpenAI(
        base_url=f"{proxy.url}/v1", api_key=keys["oapager"], max_retries=0, timeout=10
    ) as c:
        uploaded = c.files.create(file=("in.jsonl", _jsonl([_chat_line("a")])), purpose="batch")
        made = [
            c.batches.create(
                input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
            ).id
            for _ in range(5)
        ]
        with anthropic.Anthropic(
            base_url=proxy.url, api_key=keys["oapager"], max_retries=0, timeout=10
        ) as a:  # another format's batch of the same key never shows in the OpenAI list
            a.messages.batches.create(requests=[{"custom_id": "x", "params": _params("z")}])
        assert [b.id for b in c.batches.list(limit=2)] == made[::-1]
        page = c.batches.list(limit=2, after=made[3])
        assert [b.id for b in page.data] == [made[2], made[1]] and page.has_more is True
        tail = c.batches.list(limit=2, after=made[1])
        assert [b.id for b in tail.data] == [made[0]] and tail.has_more is False
        more = [
            c.files.create(file=(f"f{n}.jsonl", _jsonl([_chat_line("a")])), purpose="batch").id
            for n in range(2)
        ]
        files = [uploaded.id, *more]
        assert [f.id for f in c.files.list(limit=1)] == files[::-1]  # the SDK follows `after`
        assert [f.id for f in c.files.list(order="asc", limit=2)] == files


def test_deleting_output_and_error_files(
    served: tuple[ProxyProcess, dict[str, str]], upstream: MockUpstream
) -> None:
    proxy, keys = served
    with openai.OpenAI(
        base_url=f"{proxy.url}/v1", api_key=keys["deleter"], max_retries=0, timeout=10
    ) as c:
        lines = [_chat_line("ok-1"), _chat_line("ok-2"), _chat_line("bad", "mock-400")]
        uploaded = c.files.create(file=("in.jsonl", _jsonl(lines)), purpose="batch")
        batch = c.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        # not ended: its output file does not exist yet
        with pytest.raises(openai.NotFoundError):
            c.files.retrieve(f"{batch.id}-output")
        done = _until(lambda: (b := c.batches.retrieve(batch.id)).status == "completed" and b)
        out, err = done.output_file_id, done.error_file_id
        assert out and err
        assert c.files.retrieve(out).purpose == "batch_output"
        assert len(c.files.content(out).text.splitlines()) == 2

        deleted = c.files.delete(out)
        assert (deleted.id, deleted.deleted) == (out, True)
        with pytest.raises(openai.NotFoundError):
            c.files.retrieve(out)
        with pytest.raises(openai.NotFoundError):
            c.files.content(out)
        with pytest.raises(openai.NotFoundError):
            c.files.delete(out)
        # the batch stays, naming the deleted file as OpenAI's does; the error file is untouched
        again = c.batches.retrieve(batch.id)
        assert again.status == "completed" and again.output_file_id == out
        assert again.request_counts is not None and again.request_counts.completed == 2
        errors = [json.loads(x) for x in c.files.content(err).text.splitlines()]
        assert [x["custom_id"] for x in errors] == ["bad"]

        c.files.delete(err)
        with pytest.raises(openai.NotFoundError):
            c.files.content(err)
        assert c.batches.retrieve(batch.id).error_file_id == err
        # the input file is separate and still there
        assert c.files.retrieve(uploaded.id).id == uploaded.id


def _native_line(custom_id: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def test_responses_and_embeddings_batches_pass_through(
    served: tuple[ProxyProcess, dict[str, str]], upstream: MockUpstream
) -> None:
    proxy, keys = served
    responses = [
        _native_line(
            f"r{n}",
            "/v1/responses",
            {
                "model": "mock-resp",
                "input": [{"role": "user", "content": f"responses batch {n}"}],
                "instructions": "be brief",
                "max_output_tokens": 50,
                "store": False,
            },
        )
        for n in range(3)
    ]
    responses.append(_native_line("r-bad", "/v1/responses", {"model": "mock-400", "input": "x"}))
    embeddings = [
        _native_line("e0", "/v1/embeddings", {"model": "mock-embed", "input": "one"}),
        _native_line("e1", "/v1/embeddings", {"model": "mock-embed", "input": ["two", "three"]}),
    ]
    with openai.OpenAI(
        base_url=f"{proxy.url}/v1", api_key=keys["native"], max_retries=0, timeout=10
    ) as c:
        made = {}
        for url, lines in (("/v1/responses", responses), ("/v1/embeddings", embeddings)):
            uploaded = c.files.create(file=("in.jsonl", _jsonl(lines)), purpose="batch")
            made[url] = c.batches.create(
                input_file_id=uploaded.id,
                endpoint=url,  # type: ignore[arg-type]
                completion_window="24h",
            ).id
        done = {
            url: _until(lambda bid=bid: (b := c.batches.retrieve(bid)).status == "completed" and b)
            for url, bid in made.items()
        }

        r = done["/v1/responses"]
        assert r.request_counts is not None
        assert (r.request_counts.completed, r.request_counts.failed) == (3, 1)
        out = [json.loads(x) for x in c.files.content(r.output_file_id or "").text.splitlines()]
        assert [x["custom_id"] for x in out] == ["r0", "r1", "r2"]
        reply = out[1]["response"]
        assert reply["status_code"] == 200 and reply["body"]["object"] == "response"
        assert (
            reply["body"]["output"][-1]["content"][0]["text"] == "responses says: responses batch 1"
        )
        errors = [json.loads(x) for x in c.files.content(r.error_file_id or "").text.splitlines()]
        assert [(x["custom_id"], x["response"]["status_code"]) for x in errors] == [("r-bad", 400)]
        assert errors[0]["response"]["body"]["error"]["message"] == "upstream says 400"

        e = done["/v1/embeddings"]
        out = [json.loads(x) for x in c.files.content(e.output_file_id or "").text.splitlines()]
        assert {x["custom_id"]: len(x["response"]["body"]["data"]) for x in out} == {
            "e0": 1,
            "e1": 2,
        }
        assert e.error_file_id is None

    # the bodies went upstream as they were, each once, to the endpoint of the batch
    for url, lines in (("/v1/responses", responses[:3]), ("/v1/embeddings", embeddings)):
        sent = [q.body for q in upstream.requests if q.path == url]
        for line in lines:
            assert sent.count(line["body"]) == 1
    # and were metered and priced like live passthrough traffic, on the batch's key
    home = proxy.home  # type: ignore[attr-defined]
    spend = _until(
        lambda: (
            (
                rows := {r["group"]: r for r in _keys_cli(home, "spend", "native", "--by", "model")}
            ).keys()
            >= {"mock-resp", "mock-embed"}
            and rows
        )
    )
    assert spend["mock-resp"]["requests"] == 3 and spend["mock-resp"]["cost_usd"] > 0
    assert spend["mock-embed"]["requests"] == 2 and spend["mock-embed"]["cost_usd"] > 0


def test_a_passthrough_batch_for_a_backend_that_cannot_serve_it_is_refused(
    served: tuple[ProxyProcess, dict[str, str]], upstream: MockUpstream
) -> None:
    proxy, keys = served
    line = _native_line("e", "/v1/embeddings", {"model": "mock-embed-echo", "input": "x"})
    with (
        openai.OpenAI(
            base_url=f"{proxy.url}/v1", api_key=keys["native"], max_retries=0, timeout=10
        ) as c,
        openai.OpenAI(
            base_url=f"{proxy.url}/echo/v1", api_key=keys["native"], max_retries=0, timeout=10
        ) as on_echo,
    ):
        uploaded = c.files.create(file=("in.jsonl", _jsonl([line])), purpose="batch")
        with pytest.raises(
            openai.BadRequestError,
            match=r"backend 'echo' \(kind echo\) cannot serve /v1/embeddings",
        ):
            on_echo.batches.create(
                input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h"
            )
        bad = _native_line("r", "/v1/responses", {"model": "m", "input": 3})
        refused = c.files.create(file=("bad.jsonl", _jsonl([bad])), purpose="batch")
        with pytest.raises(openai.BadRequestError, match=r"line 1: body\.input"):
            c.batches.create(
                input_file_id=refused.id, endpoint="/v1/responses", completion_window="24h"
            )
    assert not [q for q in upstream.requests if q.body.get("model") == "mock-embed-echo"]


def test_a_live_request_gets_through_while_a_batch_saturates_its_key(
    served: tuple[ProxyProcess, dict[str, str]], upstream: MockUpstream
) -> None:
    proxy, keys = served
    lines = [_chat_line(f"busy-{n}", "mock-busy") for n in range(3 * BUSY_RPM)]

    def sent() -> int:
        return len(upstream.bodies("mock-busy"))

    with openai.OpenAI(
        base_url=f"{proxy.url}/v1", api_key=keys["busy"], max_retries=0, timeout=10
    ) as c:
        uploaded = c.files.create(file=("busy.jsonl", _jsonl(lines)), purpose="batch")
        batch = c.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        share = BUSY_RPM - 1  # the key's rpm less the headroom kept for live calls
        _until(lambda: sent() >= share)
        time.sleep(0.5)  # the batch's items now wait on the guard's 429 for the next minute
        assert sent() == share
        assert c.batches.retrieve(batch.id).status == "in_progress"

        live = c.chat.completions.create(
            model="mock-busy-live", messages=[{"role": "user", "content": "me first"}]
        )
        assert live.choices[0].message.content == "mock reply: me first"
        with pytest.raises(openai.RateLimitError):  # the key's own limit still holds
            c.chat.completions.create(
                model="mock-busy-live", messages=[{"role": "user", "content": "again"}]
            )
        assert sent() == share

        c.batches.cancel(batch.id)
        ended = _until(lambda: (b := c.batches.retrieve(batch.id)).status == "cancelled" and b)
        assert ended.request_counts is not None and ended.request_counts.completed == share
