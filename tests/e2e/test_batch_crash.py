"""Crash safety: `anyllm batch run` killed with SIGKILL at random points, then run again to the end;
and `anyllm serve` killed with SIGKILL mid-batch, then restarted on the same store.

Every custom_id ends with exactly one result; items in flight at a kill may reach the upstream
twice (at-least-once sending), so the upstream may see more requests than the batch has items.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import main_config
from tests.e2e.mock_upstream import MockUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ITEMS = 300
KILLS = 3


def _command(tmp: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "anyllm_cli",
        "batch",
        "run",
        str(tmp / "in.jsonl"),
        "--backend",
        "mock",
        "--config",
        str(tmp / "anyllm.toml"),
        "-o",
        str(out),
        "--concurrency",
        "4",
        "--lease",
        "0.5",
    ]


def test_sigkill_then_resume_leaves_exactly_one_result_per_item(
    tmp_path: Path, upstream: MockUpstream
) -> None:
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    (tmp_path / "anyllm.toml").write_text(main_config(upstream.url))
    rows = [
        {
            "custom_id": f"k{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "mock-crash",
                "messages": [{"role": "user", "content": f"crash {i}"}],
            },
        }
        for i in range(ITEMS)
    ]
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "ANYLLM_HOME": str(tmp_path / "home"),
    }
    before = len(upstream.bodies("mock-crash"))
    out = tmp_path / "out.jsonl"
    kills = 0
    for _ in range(KILLS):
        proc = subprocess.Popen(
            _command(tmp_path, out),
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        # wait until the upstream has seen a few more of this batch's requests, then kill at random
        target = len(upstream.bodies("mock-crash")) + rng.randint(5, ITEMS // KILLS)
        while (
            len(upstream.bodies("mock-crash")) < target
            and proc.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(10)
    assert kills >= 1, f"the batch ended before any kill (seed {seed})"

    done = subprocess.run(
        _command(tmp_path, out),
        check=False,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    ids = [x["custom_id"] for x in lines]
    assert sorted(ids) == sorted(r["custom_id"] for r in rows), f"seed {seed}"
    assert len(ids) == len(set(ids)) == ITEMS
    assert all(x["response"]["status_code"] == 200 for x in lines), f"seed {seed}"
    for x in lines:
        n = x["custom_id"][1:]
        assert x["response"]["body"]["choices"][0]["message"]["content"] == f"mock reply: crash {n}"
    sent = len(upstream.bodies("mock-crash")) - before
    assert sent >= ITEMS  # at least once each; a few were re-sent after a kill


def test_a_proxy_killed_mid_batch_finishes_it_after_a_restart(
    tmp_path: Path, upstream: MockUpstream
) -> None:
    import anthropic

    from tests.e2e.conftest import PROXY_KEY, ProxyProcess

    config = main_config(upstream.url) + "\n[batch]\nlease_seconds = 1\nconcurrency = 4\n"
    requests: Any = [
        {
            "custom_id": f"p{i}",
            "params": {
                "model": "mock-serve-crash",
                "max_tokens": 10,
                "messages": [{"role": "user", "content": f"serve crash {i}"}],
            },
        }
        for i in range(ITEMS)
    ]
    before = len(upstream.bodies("mock-serve-crash"))
    proxy = ProxyProcess.start(tmp_path, config)
    try:
        with anthropic.Anthropic(
            base_url=proxy.url, api_key=PROXY_KEY, max_retries=0, timeout=10
        ) as c:
            batch = c.messages.batches.create(requests=requests)
        deadline = time.monotonic() + 20
        while (
            len(upstream.bodies("mock-serve-crash")) - before < 20 and time.monotonic() < deadline
        ):
            time.sleep(0.005)
    finally:
        proxy.proc.send_signal(signal.SIGKILL)
        proxy.proc.wait(10)
        proxy.stop()
    served_at_kill = len(upstream.bodies("mock-serve-crash")) - before
    assert 0 < served_at_kill < ITEMS, "the kill did not land mid-batch"

    again = ProxyProcess.start(tmp_path, config)
    try:
        with anthropic.Anthropic(
            base_url=again.url, api_key=PROXY_KEY, max_retries=0, timeout=10
        ) as c:
            deadline = time.monotonic() + 60
            while c.messages.batches.retrieve(batch.id).processing_status != "ended":
                assert time.monotonic() < deadline, "the batch did not end after the restart"
                time.sleep(0.1)
            results = list(c.messages.batches.results(batch.id))
    finally:
        assert again.stop() == 0
    ids = [r.custom_id for r in results]
    assert sorted(ids) == sorted(r["custom_id"] for r in requests) and len(set(ids)) == ITEMS
    assert {r.result.type for r in results} == {"succeeded"}
