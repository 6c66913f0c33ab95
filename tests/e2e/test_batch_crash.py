"""Crash safety: `anyllm batch run` killed with SIGKILL at random points, then run again to the end.

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
