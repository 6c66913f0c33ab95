"""How fast `anyllm replay` sends recorded requests: 10,000 non-streaming ones against a mock upstream.

Run on demand (never collected by pytest): `python tests/bench/bench_replay.py [--requests 10000]`.

The mock upstream is bench_proxy.py's raw asyncio server (answers any POST with a chat completion),
pinned to core 1; `anyllm replay` runs pinned to core 0, as a user would run it:
  (a) `--url MOCK`: replay as a load generator, straight to the upstream (no translation);
  (b) `--backend mock`: in-process through the pipeline, OpenAI Chat requests (passed through);
  (c) `--backend mock`: in-process, Anthropic Messages requests (translated to Chat and back).
The recording is written here: half Chat, half Messages lines in the cassette format, non-streaming.
Printed: requests/s of each (from `--json`), with the goal from issue 11 (>= 500 req/s) checked,
and the CPU seconds the replay process used (start-up included): requests per CPU second is what
replay reaches on a core of its own, a figure other work on a shared machine moves much less than
the wall-clock rate. Rerun when in doubt.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

import bench_proxy  # noqa: E402  (a sibling script, not a package)

GOAL = 500.0


def _cassette(path: Path, count: int) -> None:
    with path.open("w") as f:
        for n in range(count):
            text = f"Request {n}: say hello in one short sentence."
            if n % 2:
                api, body = (
                    "chat",
                    {"model": "bench-model", "messages": [{"role": "user", "content": text}]},
                )
            else:
                api = "messages"
                body = {
                    "model": "bench-model",
                    "max_tokens": 256,
                    "messages": [{"role": "user", "content": text}],
                }
            f.write(
                json.dumps({"v": 1, "id": f"req_{n}", "api": api, "body": body, "stream": False})
                + "\n"
            )


def _replay(workdir: Path, file: Path, *args: str) -> dict[str, Any]:
    env = {**os.environ, "ANYLLM_HOME": str(workdir / "home"), "NO_COLOR": "1"}
    for name in ("OPENAI_BASE_URL", "ANYLLM_CONFIG", "ANYLLM_API_KEY", "OPENAI_API_KEY"):
        env.pop(name, None)
    command = ["taskset", "-c", bench_proxy.PROXY_CORE, *bench_proxy._anyllm_command(), "replay"]
    command += [str(file), "--json", "--max-error-rate", "0", *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = subprocess.run(
        command, check=False, capture_output=True, text=True, cwd=workdir, env=env, timeout=600
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode not in (0, 1):
        raise SystemExit(f"anyllm replay failed ({run.returncode}):\n{run.stderr[-2000:]}")
    summary: dict[str, Any] = json.loads(run.stdout)
    summary["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    if shutil.which("taskset") is None:
        print("taskset (util-linux) is missing: it pins the processes to cores.", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="anyllm-bench-replay-"))
    port = bench_proxy._free_port()
    upstream = bench_proxy._spawn_role(
        bench_proxy.LOAD_CORE, "--role", "upstream", "--port", str(port)
    )
    try:
        bench_proxy._wait_port(port, upstream)
        base = f"http://127.0.0.1:{port}"
        config = workdir / "anyllm.toml"
        config.write_text(
            f'[backends.mock]\nkind = "openai"\nbase_url = "{base}/v1"\nmax_retries = 0\n'
        )
        everything = workdir / "all.jsonl"
        _cassette(everything, args.requests)
        c = ["--concurrency", str(args.concurrency)]
        runs = [
            ("(a) --url, straight to the mock upstream", ["--url", base, *c]),
            (
                "(b) --backend, in-process, Chat requests",
                ["--backend", "mock", "--config", str(config), "--filter", "api=chat", *c],
            ),
            (
                "(c) --backend, in-process, Messages requests",
                ["--backend", "mock", "--config", str(config), "--filter", "api=messages", *c],
            ),
            (
                f"(d) --backend, in-process, all {args.requests:,}",
                ["--backend", "mock", "--config", str(config), *c],
            ),
        ]
        print(
            f"{'replay of recorded non-streaming requests':<48}{'count':>7}{'errors':>8}{'req/s':>9}"
            f"{'p50 ms':>9}{'p99 ms':>9}{'CPU s':>8}{'req/CPU s':>11}"
        )
        rates: dict[str, float] = {}
        for label, extra in runs:
            summary = _replay(workdir, everything, *extra)
            latency = summary["latency_s"] or {"p50": 0.0, "p99": 0.0}
            rates[label] = summary["requests_per_s"] or 0.0
            print(
                f"{label:<48}{summary['count']:>7}{summary['errors']:>8}{rates[label]:>9.0f}"
                f"{latency['p50'] * 1000:>9.2f}{latency['p99'] * 1000:>9.2f}"
                f"{summary['cpu_s']:>8.2f}{summary['count'] / summary['cpu_s']:>11.0f}",
                flush=True,
            )
        print()
        for label, rate in rates.items():
            print(
                f"  {'PASS' if rate >= GOAL else 'FAIL'}  {label}: {rate:.0f} req/s (goal >= {GOAL:.0f})"
            )
    finally:
        bench_proxy._stop(upstream)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
