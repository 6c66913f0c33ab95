"""How long one big request stalls every other request on the same worker (the event loop).

Run on demand (never collected by pytest): `python tests/bench/bench_stall.py [--mb 24]`.

Starts `anyllm serve` on loopback in front of the e2e mock OpenAI upstream (a thread of this
process; `--echo` uses the offline echo backend instead), then for each big body below sends it once while
a second client sends `GET /health` back to back, and prints the slowest of those small requests
(minus the slowest of the same loop with no big request in flight: the reference in the same run).
The body kinds: one long text to `count_tokens` (parse + BPE count), the same to `/v1/messages`
(parse, translate, JSON to the echo backend, reply), and many small text blocks (pydantic's
per-block work). Figures move with other work on the machine: run it on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import httpx

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))
from tests.e2e.mock_upstream import MockUpstream


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(port: int, home: str, upstream: str | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ANYLLM_HOME": home, "OPENAI_API_KEY": "k"}
    args = [sys.executable, "-m", "anyllm_cli", "serve", "--port", str(port)]
    if upstream is None:
        args += ["--backend", "echo"]
    else:
        args += ["--backend", "openai", "--base-url", upstream]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


def _slowest_small(url: str, busy: threading.Event | None, seconds: float = 1.0) -> float:
    """The slowest GET /health while `busy` is set (or for `seconds` when there is none)."""
    slowest = 0.0
    end = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=60) as client:
        client.get("/health")
        while (busy.is_set() if busy else time.monotonic() < end) and time.monotonic() < end + 120:
            start = time.monotonic()
            client.get("/health")
            slowest = max(slowest, time.monotonic() - start)
    return slowest


def _bodies(mb: float) -> dict[str, tuple[str, bytes]]:
    words = "lorem ipsum dolor sit amet "
    text = words * int(mb * 1e6 / len(words))
    long_text = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": text}]}
    block = {"type": "text", "text": "lorem ipsum dolor"}
    blocks = int(mb * 1e6 / 50 / 4)  # a quarter of the size: this one is slow per byte
    many = {
        "model": "m",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": [block] * blocks}],
    }
    return {
        "count_tokens, one long text": (
            "/v1/messages/count_tokens",
            json.dumps(long_text).encode(),
        ),
        "messages, one long text": ("/v1/messages", json.dumps(long_text).encode()),
        "messages, many small blocks": ("/v1/messages", json.dumps(many).encode()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=24.0)
    parser.add_argument("--echo", action="store_true", help="the echo backend, no upstream")
    options = parser.parse_args()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    upstream = None if options.echo else MockUpstream()
    with tempfile.TemporaryDirectory() as home:
        proc = _serve(port, home, upstream.start() if upstream else None)
        try:
            reference = _slowest_small(url, None)
            print(f"slowest small request, nothing else running: {reference * 1000:.0f} ms")
            for name, (path, body) in _bodies(options.mb).items():
                busy = threading.Event()
                busy.set()
                took: list[float] = []

                def big(
                    path: str = path,
                    body: bytes = body,
                    busy: threading.Event = busy,
                    took: list[float] = took,
                ) -> None:
                    start = time.monotonic()
                    headers = {
                        "anthropic-version": "2023-06-01",
                        "content-type": "application/json",
                    }
                    httpx.post(url + path, content=body, headers=headers, timeout=300)
                    took.append(time.monotonic() - start)
                    busy.clear()

                thread = threading.Thread(target=big)
                thread.start()
                slowest = _slowest_small(url, busy)
                thread.join()
                print(
                    f"{name} ({len(body) / 1e6:.1f} MB, {took[0]:.2f} s): slowest small request "
                    f"{slowest * 1000:.0f} ms (+{(slowest - reference) * 1000:.0f} ms)"
                )
        finally:
            proc.terminate()
            proc.wait(10)
            if upstream is not None:
                upstream.stop()


if __name__ == "__main__":
    main()
