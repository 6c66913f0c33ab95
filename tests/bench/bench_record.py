"""What `serve --record` costs the proxy: throughput at c=64 with and without recording.

Run on demand (never collected by pytest): `python tests/bench/bench_record.py [--duration 3]`.

bench_proxy.py's pieces, reused: its raw asyncio mock upstream and `wrk` share core 1; `anyllm
serve --backend openai` runs pinned to core 0, once plain and once with `--record DIR` (all bodies,
every call), started one after the other so they never compete. Each configuration is measured
`--rounds` times, alternating (and which goes first alternates too), on POST /v1/messages (Anthropic in, translated) non-streaming and
streaming (50 chunks), and the medians are kept: requests/s, and the proxy's CPU milliseconds per
request (its process and threads, the recorder's writer included), which other work on a shared
machine moves much less than requests/s. Printed: both, their ratios, the goal from issue 11
(recording costs at most 10% of throughput at c=64, checked on both ratios), and a check that every
request the recording proxy answered is a line on disk (none dropped, none lost at shutdown;
requests still in flight when wrk stops are answered and recorded too, so up to 82 more lines).
"""

from __future__ import annotations

import argparse
import contextlib
import json
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


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (threads included)."""
    total, todo = 0.0, [pid]
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        todo += children.get(current, [])
    return total


def _measure(
    upstream: str, workdir: Path, stream: bool, duration: int, extra: list[str]
) -> tuple[float, int, float]:
    """(requests/s at c=64, requests answered in all, CPU ms per request at c=64)."""
    proxy = _start(upstream, workdir, *extra)
    try:
        target = bench_proxy.Target("messages", proxy.url + "/v1/messages", True)
        bench_proxy._check(target)
        warm = bench_proxy._wrk(target, stream, 16, 1, workdir)
        before = _cpu_s(proxy.proc.pid)
        result = bench_proxy._wrk(target, stream, 64, duration, workdir)
        time.sleep(0.3)  # the recorder's last batch (it flushes every 0.2 s)
        cpu_ms = (_cpu_s(proxy.proc.pid) - before) * 1000 / max(result.requests, 1)
        if result.errors:
            print(f"  WARNING {extra or 'plain'}: {result.errors}", file=sys.stderr)
        return result.rps, warm.requests + result.requests + 1, cpu_ms  # +1: _check's request
    finally:
        bench_proxy._stop(proxy.proc)


def _recorder_ms_per_line(workdir: Path, stream: bool, count: int = 10_000) -> float:
    """CPU milliseconds the Recorder spends per line (queue, serialise, redact, write), alone; for a
    stream, its 50-chunk reply kept as the Anthropic events the client got (parsed and folded)."""
    from anyllm_cli.models import codec
    from anyllm_cli.pipeline.seams import Candidate, ClientRequest, Outcome, Usage
    from anyllm_cli.replay.recorder import Recorder, RecordOptions

    text = "Say hello in one short sentence. " * 8
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": text}],
    }
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "bench-model"}
    events: list[dict[str, object]] = [
        {"type": "message_start", "message": {**message, "content": [], "usage": {}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ]
    events += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "w "}}
    ] * 50
    events += [
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}},
        {"type": "message_stop"},
    ]
    outcome = Outcome(
        request=ClientRequest(
            api="messages",
            body=json.dumps({**body, "stream": stream}).encode(),
            headers={"anthropic-version": "2023-06-01"},
        ),
        candidate=Candidate("openai", "claude-sonnet-4-6", "bench-model"),
        status=200,
        usage=Usage(12, 7),
        cost_usd=None,
        stream=stream,
        duration_s=0.01,
        upstream_body=json.dumps({**body, "model": "bench-model"}).encode(),
        response=None
        if stream
        else {"type": "message", "content": [{"type": "text", "text": "Hello from upstream."}]},
        events=tuple(codec.dumps(e) for e in events) if stream else (),
    )
    recorder = Recorder(RecordOptions(workdir / "alone", queue_size=count + 1))
    start = time.process_time()
    for _ in range(count):
        recorder.observe(outcome)
    recorder.start()
    recorder.close()
    return (time.process_time() - start) * 1000 / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    missing = bench_proxy.missing_tool()
    if missing:
        print(missing, file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="anyllm-bench-record-"))
    resources = contextlib.ExitStack()
    try:
        upstream = resources.enter_context(bench_proxy.mock_upstream())
        print(
            f"{'POST /v1/messages, c=64':<24}{'plain req/s':>12}{'recording':>11}{'ratio':>7}"
            f"{'plain CPU ms/req':>18}{'recording':>11}{'ratio':>7}"
        )
        ok = all_recorded = True
        for stream in (False, True):
            plain: list[tuple[float, float]] = []
            recorded: list[tuple[float, float]] = []
            for n in range(args.rounds):
                target = workdir / f"rec-{stream}-{n}"
                order = [False, True] if n % 2 == 0 else [True, False]  # no order bias
                served = 0
                for recording in order:
                    extra = ["--record", str(target)] if recording else []
                    rps, answered, cpu = _measure(upstream, workdir, stream, args.duration, extra)
                    (recorded if recording else plain).append((rps, cpu))
                    served = answered if recording else served
                lines = sum(f.read_text().count("\n") for f in target.glob("*.jsonl"))
                # wrk counts only the requests it saw end; those in flight when it stopped (at
                # most 16 + 64 connections, give or take wrk's count) were answered and recorded too
                if not served <= lines <= served + 16 + 64 + 2:
                    all_recorded = False
                    print(
                        f"  WARNING: {served} requests answered, {lines} recorded", file=sys.stderr
                    )
            a = statistics.median(r for r, _ in plain)
            b = statistics.median(r for r, _ in recorded)
            ca = statistics.median(c for _, c in plain)
            cb = statistics.median(c for _, c in recorded)
            label = "streaming (50 chunks)" if stream else "non-streaming"
            line_ms = _recorder_ms_per_line(workdir, stream)
            print(
                f"{label:<24}{a:>12.0f}{b:>11.0f}{b / a:>7.2f}{ca:>18.3f}{cb:>11.3f}{ca / cb:>7.2f}",
                flush=True,
            )
            kept = ca / cb  # the throughput a CPU-bound proxy keeps: CPU per request, inverted
            ok_rate = min(b / a, kept) >= GOAL
            ok = ok and ok_rate
            print(
                f"  {'PASS' if ok_rate else 'FAIL'}  recording keeps >= {GOAL:.0%} of throughput "
                f"(wall {b / a:.0%}, CPU per request {kept:.0%})"
            )
            print(
                f"  recorder CPU per line (serialise, redact, write; measured alone): "
                f"{line_ms * 1000:.0f} us = {line_ms / ca:.1%} of the plain proxy's CPU per request"
            )
        print(
            f"  {'PASS' if all_recorded else 'FAIL'}  every answered request recorded, none dropped"
        )
    finally:
        resources.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
