"""What `serve --record` costs the proxy: throughput at c=64 with and without recording.

Run on demand (never collected by pytest): `python tests/bench/bench_record.py [--duration 3]`.

bench_proxy.py's pieces, reused: its raw asyncio mock upstream and `wrk` share core 1; `anyllm
serve --backend openai` runs pinned to core 0, once plain and once with `--record DIR` (all bodies,
every call), started one after the other so they never compete. Each configuration is measured
`--rounds` times, alternating, on POST /v1/messages (Anthropic in, translated) non-streaming and
streaming (50 chunks), and the median requests/s is kept. Printed: both medians, their ratio, the
goal from issue 11 (recording costs at most 10% of throughput at c=64), and a check that every
request the recording proxy answered is a line on disk (none dropped, none lost at shutdown;
requests still in flight when wrk stops are answered and recorded too, so up to 82 more lines).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

import bench_proxy  # noqa: E402  (a sibling script, not a package)

GOAL = 0.90


def _start(upstream: str, workdir: Path, *extra: str) -> bench_proxy.Proxy:
    log = workdir / f"serve-{len(list(workdir.glob('serve-*.log')))}.log"
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench-dummy", "ANYLLM_HOME": str(workdir / "home")}
    for name in ("OPENAI_BASE_URL", "ANYLLM_CONFIG", "PROXY_API_KEYS", "BIG_MODEL", "SMALL_MODEL"):
        env.pop(name, None)
    command = [
        *bench_proxy._anyllm_command(),
        "serve",
        "--backend",
        "openai",
        "--base-url",
        upstream,
    ]
    command += ["--host", "127.0.0.1", "--port", "0", "--log-level", "warning", *extra]
    started = time.perf_counter()
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            ["taskset", "-c", bench_proxy.PROXY_CORE, *command],
            stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, cwd=workdir, env=env,
        )  # fmt: skip
    while time.perf_counter() < started + 30:
        match = re.search(r"listening on (http://[\w.\[\]:-]+)", log.read_text(errors="replace"))
        if match:
            return bench_proxy.Proxy(proc, match.group(1), time.perf_counter() - started, log)
        if proc.poll() is not None:
            break
        time.sleep(0.01)
    proc.kill()
    raise SystemExit(f"anyllm serve did not start:\n{log.read_text(errors='replace')[-2000:]}")


def _measure(
    upstream: str, workdir: Path, stream: bool, duration: int, extra: list[str]
) -> tuple[float, int]:
    proxy = _start(upstream, workdir, *extra)
    try:
        target = bench_proxy.Target("messages", proxy.url + "/v1/messages", True)
        bench_proxy._check(target)
        warm = bench_proxy._wrk(target, stream, 16, 1, workdir)
        result = bench_proxy._wrk(target, stream, 64, duration, workdir)
        if result.errors:
            print(f"  WARNING {extra or 'plain'}: {result.errors}", file=sys.stderr)
        return result.rps, warm.requests + result.requests + 1  # +1: _check's request
    finally:
        bench_proxy._stop(proxy.proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing (apt-get install -y wrk util-linux)", file=sys.stderr)
            return 2
    workdir = Path(tempfile.mkdtemp(prefix="anyllm-bench-record-"))
    port = bench_proxy._free_port()
    upstream_proc = bench_proxy._spawn_role(
        bench_proxy.LOAD_CORE, "--role", "upstream", "--port", str(port)
    )
    try:
        bench_proxy._wait_port(port, upstream_proc)
        upstream = f"http://127.0.0.1:{port}/v1"
        print(f"{'POST /v1/messages, c=64':<34}{'plain req/s':>13}{'recording':>11}{'ratio':>8}")
        ok = True
        for stream in (False, True):
            plain: list[float] = []
            recorded: list[float] = []
            for n in range(args.rounds):
                plain.append(_measure(upstream, workdir, stream, args.duration, [])[0])
                target = workdir / f"rec-{stream}-{n}"
                rps, served = _measure(
                    upstream, workdir, stream, args.duration, ["--record", str(target)]
                )
                recorded.append(rps)
                lines = sum(f.read_text().count("\n") for f in target.glob("*.jsonl"))
                # wrk counts only the requests it saw end; those in flight when it stopped (at
                # most 16 + 64 connections, give or take wrk's count) were answered and recorded too
                if not served <= lines <= served + 16 + 64 + 2:
                    ok = False
                    print(
                        f"  WARNING: {served} requests answered, {lines} recorded", file=sys.stderr
                    )
            a, b = statistics.median(plain), statistics.median(recorded)
            label = "streaming (50 chunks)" if stream else "non-streaming"
            print(f"{label:<34}{a:>13.0f}{b:>11.0f}{b / a:>8.2f}", flush=True)
            ok = ok and b / a >= GOAL
            print(
                f"  {'PASS' if b / a >= GOAL else 'FAIL'}  recording keeps >= {GOAL:.0%} of throughput ({b / a:.0%})"
            )
        print(f"  {'PASS' if ok else 'FAIL'}  every answered request recorded, none dropped")
    finally:
        bench_proxy._stop(upstream_proc)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
