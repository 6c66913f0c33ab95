"""Throughput of the batch engine: `anyllm batch run` of 10,000 items at --concurrency 64.

Run on demand (never collected by pytest): `python tests/bench/bench_batch.py [--items 10000]`.

The mock OpenAI-compatible upstream is bench_proxy.py's raw asyncio server, pinned to core 1. Two
clients answer the same load, one after the other, pinned to core 0:
  (ref)   the ceiling: one Python process sending the same chat requests with anyllm's own HTTP
          client (`build_client`) from 64 tasks, nothing else (no pipeline, no store);
  (engine) the engine and the store alone, in-process, with a runner that answers at once (no
          HTTP, no pipeline): the ceiling the engine puts on any batch;
  (batch) `anyllm batch run FILE --backend openai --base-url <mock> --concurrency 64`: validation,
          the store (SQLite under a temp ANYLLM_HOME), leases, the pipeline and result writes.
Printed: items/s of the batch between its creation and its end (from the store), items/s of the
whole command (process start to exit, results written), the reference's requests/s and the ratio.
The issue's goal: >= 500 items/s with --concurrency 64.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
PROXY_BENCH = HERE.with_name("bench_proxy.py")
CLIENT_CORE = "0"
UPSTREAM_CORE = "1"
GOAL = 500.0


def _body(i: int) -> dict[str, object]:
    return {"model": "bench-model", "messages": [{"role": "user", "content": f"item {i}"}]}


async def _reference(url: str, items: int, concurrency: int) -> float:
    from anyllm_cli.backends._http import build_client

    client = build_client()
    todo = iter(range(items))

    async def worker() -> None:
        for i in todo:
            reply = await client.post(
                url + "/chat/completions",
                json=_body(i),
                headers={"authorization": "Bearer bench"},
            )
            reply.raise_for_status()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    await client.aclose()
    return items / elapsed


async def _engine_only(items: int, concurrency: int) -> float:
    import anyio

    from anyllm_cli.batch import jobs
    from anyllm_cli.batch.engine import Engine, EngineSettings
    from anyllm_cli.batch.job import load
    from anyllm_cli.pipeline.seams import Principal
    from anyllm_cli.stores import open_store
    from anyllm_cli.stores.batches import batches_of

    class Instant:
        body: dict[str, object] = {"id": "chatcmpl-bench", "choices": []}

        async def run(self, request: object) -> Instant:
            await anyio.sleep(0)
            return self

    rows = [
        {"custom_id": f"e{i}", "method": "POST", "url": "/v1/chat/completions", "body": _body(i)}
        for i in range(items)
    ]
    data = "\n".join(json.dumps(r) for r in rows).encode()
    with tempfile.TemporaryDirectory() as tmp:
        store = await open_store(f"sqlite://{tmp}/engine.db")
        batches = batches_of(store)
        record = await jobs.create(batches, load(data), Principal("bench"))
        each = EngineSettings(concurrency=concurrency, per_batch=concurrency)
        start = time.perf_counter()
        await Engine(batches, Instant(), each).run(until=record.id)
        elapsed = time.perf_counter() - start
        await store.close()
    return items / elapsed


def _anyllm() -> list[str]:
    script = Path(sys.executable).with_name("anyllm")
    return [str(script)] if script.exists() else [sys.executable, "-m", "anyllm_cli"]


def _wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    import socket

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the mock upstream exited early")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the mock upstream did not start")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(args: argparse.Namespace) -> int:
    port = _free_port()
    upstream = subprocess.Popen(
        [
            "taskset",
            "-c",
            UPSTREAM_CORE,
            sys.executable,
            str(PROXY_BENCH),
            "--role",
            "upstream",
            "--port",
            str(port),
        ],
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_port(port, upstream)
        ref = subprocess.run(
            [
                "taskset",
                "-c",
                CLIENT_CORE,
                sys.executable,
                str(HERE),
                "--role",
                "reference",
                "--url",
                url,
                "--items",
                str(args.items),
                "--concurrency",
                str(args.concurrency),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        ref_rate = float(ref.stdout.strip())
        alone = subprocess.run(
            [
                "taskset",
                "-c",
                CLIENT_CORE,
                sys.executable,
                str(HERE),
                "--role",
                "engine",
                "--items",
                str(args.items),
                "--concurrency",
                str(args.concurrency),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        engine_alone = float(alone.stdout.strip())
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            rows = [
                {
                    "custom_id": f"b{i}",
                    "method": "POST",
                    "url": "/v1/chat/completions",
                    "body": _body(i),
                }
                for i in range(args.items)
            ]
            (work / "in.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
            env = {**os.environ, "ANYLLM_HOME": str(work / "home"), "OPENAI_API_KEY": "sk-bench"}
            for name in ("ANYLLM_CONFIG", "ANYLLM_DB", "OPENAI_BASE_URL"):
                env.pop(name, None)
            command = [
                *_anyllm(),
                "batch",
                "run",
                str(work / "in.jsonl"),
                "--backend",
                "openai",
                "--base-url",
                url,
                "--concurrency",
                str(args.concurrency),
                "-o",
                str(work / "out.jsonl"),
            ]
            start = time.perf_counter()
            subprocess.run(
                ["taskset", "-c", CLIENT_CORE, *command],
                check=True,
                env=env,
                cwd=work,
                stderr=subprocess.DEVNULL,
            )
            wall = time.perf_counter() - start
            lines = (work / "out.jsonl").read_text().splitlines()
            ok = sum(1 for x in lines if json.loads(x)["response"]["status_code"] == 200)
            db = sqlite3.connect(work / "home" / "anyllm.db")
            created, ended = db.execute("SELECT created, ended FROM batches").fetchone()
            db.close()
    finally:
        upstream.terminate()
        upstream.wait(10)
    engine_rate = args.items / (ended - created)
    print(f"items: {args.items}, concurrency: {args.concurrency}, results: {len(lines)} ({ok} ok)")
    print(f"  (ref)   raw client, same HTTP stack:     {ref_rate:8.0f} req/s")
    print(f"  (engine) engine + store, instant runner: {engine_alone:8.0f} items/s")
    print(
        f"  (batch) created -> ended (the engine):   {engine_rate:8.0f} items/s"
        f"   ({engine_rate / ref_rate:.0%} of ref)"
    )
    print(
        f"  (batch) whole command, start to exit:    {args.items / wall:8.0f} items/s  ({wall:.1f} s)"
    )
    verdict = "PASS" if engine_rate >= GOAL else "FAIL"
    print(f"goal: >= {GOAL:.0f} items/s at --concurrency 64: {verdict}")
    return 0 if len(lines) == args.items else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--role", choices=["bench", "reference", "engine"], default="bench")
    parser.add_argument("--url", default="")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    if args.role == "reference":
        print(asyncio.run(_reference(args.url, args.items, args.concurrency)))
        return 0
    if args.role == "engine":
        print(asyncio.run(_engine_only(args.items, args.concurrency)))
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
