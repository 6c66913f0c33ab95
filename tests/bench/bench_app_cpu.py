"""CPU time the app spends per request, in process: no sockets, no other process, no wrk.

Run on demand: `python tests/bench/bench_app_cpu.py [--requests 2000]`. The app (create_app) is
driven through httpx's ASGI transport; its upstream is an httpx.MockTransport answering the same
OpenAI-compatible reply and 50-chunk stream as bench_proxy.py's mock. Printed: CPU microseconds per
request (process time, median of 5 rounds) for /v1/messages and /v1/chat/completions, JSON and
streaming, and with no-op Guard + CallObserver when the app has the seams. On a machine shared with
other work this is steadier than throughput: it counts what the process itself burns, not what it
waits for. The ASGI client side is counted too (the same for every version compared).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import httpx

CHUNKS = 50


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "bench-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _sse() -> list[bytes]:
    events = [_chunk({"role": "assistant", "content": ""})]
    events += [_chunk({"content": f"word{i} "}) for i in range(CHUNKS)]
    events += [_chunk({}, "stop")]
    usage = {**_chunk({}), "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 50}}
    events.append(usage)
    parts = [b"data: " + json.dumps(e, separators=(",", ":")).encode() + b"\n\n" for e in events]
    return [*parts, b"data: [DONE]\n\n"]


_COMPLETION = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "bench-model",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello from the mock upstream."},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
}


class _Parts(httpx.AsyncByteStream):
    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts

    async def __aiter__(self) -> Any:
        for part in self.parts:
            yield part


def _upstream(request: httpx.Request) -> httpx.Response:
    if b'"stream":true' in request.content:
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=_Parts(_sse())
        )
    return httpx.Response(200, json=_COMPLETION)


class _NoGuard:
    async def admit(self, request: Any, candidate: Any) -> Any:
        from anyllm_cli.pipeline.seams import Admission

        return Admission()

    async def settle(self, admission: Any, outcome: Any) -> None:
        return None


class _NoObserver:
    wants_bodies = False

    async def on_complete(self, outcome: Any) -> None:
        return None


async def _measure(app: Any, path: str, body: dict[str, Any], requests: int) -> float:
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    headers = {"anthropic-version": "2023-06-01"} if path == "/v1/messages" else {}
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            for _ in range(20):  # warm-up
                (await client.post(path, json=body, headers=headers)).raise_for_status()
            rounds = []
            for _ in range(5):
                start = time.process_time()
                for _ in range(requests // 5):
                    reply = await client.post(path, json=body, headers=headers)
                    assert reply.status_code == 200, reply.text
                rounds.append((time.process_time() - start) / (requests // 5))
            return statistics.median(rounds) * 1e6
    finally:
        await lifespan.__aexit__(None, None, None)


def _app(hooks: bool) -> Any:
    import logging
    from types import MappingProxyType

    from anyllm_cli.config import BackendSettings, Settings
    from anyllm_cli.server.app import create_app

    logging.getLogger("anyllm").addHandler(logging.NullHandler())
    logging.getLogger("anyllm").propagate = False
    backend = BackendSettings(
        name="openai", kind="openai", base_url="http://upstream.bench/v1", api_key="sk-bench"
    )
    settings = Settings(backends=MappingProxyType({"openai": backend}), default_backend="openai")
    extra: dict[str, Any] = {"guard": _NoGuard(), "observers": [_NoObserver()]} if hooks else {}
    return create_app(settings, transport=httpx.MockTransport(_upstream), **extra)


async def main(requests: int, hooks: bool) -> None:
    message = {"role": "user", "content": "Say hello in one short sentence."}
    cases = [
        ("/v1/messages", {"model": "bench-model", "max_tokens": 256, "messages": [message]}),
        ("/v1/chat/completions", {"model": "bench-model", "messages": [message]}),
    ]
    variants = [False, True] if hooks else [False]
    print(f"{'CPU us per request':<44}{'JSON':>10}{'stream':>10}")
    for with_hooks in variants:
        for path, body in cases:
            cells = []
            for stream in (False, True):
                app = _app(with_hooks)
                cells.append(await _measure(app, path, {**body, "stream": stream}, requests))
            label = path + (" (no-op Guard+Observer)" if with_hooks else "")
            print(f"{label:<44}{cells[0]:>10.0f}{cells[1]:>10.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--no-hooks", action="store_true", help="the app has no seams (old code)")
    args = parser.parse_args()
    asyncio.run(main(args.requests, not args.no_hooks))
