"""Throughput, added latency, memory and startup of `anyllm serve`, side by side with its ceilings.

Run on demand (never collected by pytest): `python tests/bench/bench_proxy.py [--duration 3]`.

Three kinds of target answer the same load, measured in one run on this machine:
  (a) the mock OpenAI-compatible upstream itself (a raw asyncio HTTP/1.1 server written here);
  (b) a minimal forwarder written here: Starlette on Hypercorn forwarding the body untranslated
      through httpx, once per HTTP transport (httpx's own pool, and aiohttp under httpx's API), and
      the bare forwarder (`bare`): Starlette on Hypercorn, aiohttp's own client, bytes relayed
      straight to ASGI send, the fastest we can write on this stack (issue 8's reference);
  (c) `anyllm serve --backend openai --base-url <mock>`: POST /v1/messages (Anthropic in, translated)
      and POST /v1/chat/completions (OpenAI in, passed through the backend);
  (d) the same app on the same server with a Guard and a CallObserver that do nothing, beside the
      app without them (both started by this script, `--role app`), so the seams' cost is one
      ratio (`--skip-hooks` leaves it out, e.g. to measure code from before the seams).
  (e) with `--keys`: a second `anyllm serve` whose store holds one virtual key (rpm, tpm and budget
      set high enough never to bind), called with that key: the cost of enforcement, side by side.
  (f) with `--record`: another `anyllm serve` recording every call (all bodies) into a directory.
The forwarders and the proxy are pinned to core 0 (`taskset -c 0`); the mock upstream and the load
generator (`wrk`, Debian package `wrk`, with a Lua script for the POST body) share core 1, since a
Python load generator saturates before the server does. Each wrk run is short (3 s by default), so
figures move by some percent between runs; other work on the machine moves them more.

Printed: requests/s at concurrency 1, 16 and 64, non-streaming and streaming (50 content chunks);
added latency p50/p99 at concurrency 1 (wrk's percentiles minus the direct ones); time to first
body byte of a stream (the upstream sends its first chunk, then the rest 20 ms later) minus the
direct one; the proxy's resident memory idle and after at least 10,000 requests; startup time
(spawn to the `listening on` line). The goals from issue 3 are checked at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROXY_CORE = "0"
LOAD_CORE = "1"
CHUNKS = 50
TTFB_DELAY_S = 0.02
TTFB_MARKER = b"bench-ttfb"
CONCURRENCY = (1, 16, 64)
HERE = Path(__file__).resolve()

# -- the mock upstream ----------------------------------------------------------------------------


def _chunk(delta: dict[str, Any], finish: str | None = None, usage: bool = False) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "bench-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage:
        body["choices"] = []
        body["usage"] = {"prompt_tokens": 12, "completion_tokens": CHUNKS, "total_tokens": 62}
    event = b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(event), event)


def _stream_parts() -> list[bytes]:
    parts = [_chunk({"role": "assistant", "content": ""})]
    parts += [_chunk({"content": f"word{i} "}) for i in range(CHUNKS)]
    parts += [_chunk({}, finish="stop"), _chunk({}, usage=True)]
    done = b"data: [DONE]\n\n"
    parts.append(b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done))
    return parts


_COMPLETION = json.dumps(
    {
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
    },
    separators=(",", ":"),
).encode()
_JSON_REPLY = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
    % (len(_COMPLETION), _COMPLETION)
)
_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)
_STREAM_PARTS = _stream_parts()


class _Upstream(asyncio.Protocol):
    """HTTP/1.1 keep-alive, Content-Length or chunked request bodies; answers any POST path."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (request := self._take_request()) is not None:
            self._answer(request)

    def _take_request(self) -> bytes | None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = self.buffer[:end].lower()
        start = end + 4
        match = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
        if match:
            stop = start + int(match.group(1))
            if len(self.buffer) < stop:
                return None
            body, self.buffer = self.buffer[start:stop], self.buffer[stop:]
            return body
        if b"transfer-encoding: chunked" in head:
            body = b""
            at = start
            while True:
                line_end = self.buffer.find(b"\r\n", at)
                if line_end < 0:
                    return None
                size = int(self.buffer[at:line_end].split(b";")[0], 16)
                if len(self.buffer) < line_end + 2 + size + 2:
                    return None
                body += self.buffer[line_end + 2 : line_end + 2 + size]
                at = line_end + 2 + size + 2
                if size == 0:
                    self.buffer = self.buffer[at:]
                    return body
        self.buffer = self.buffer[start:]
        return b""

    def _answer(self, body: bytes) -> None:
        if b'"stream":true' not in body and b'"stream": true' not in body:
            self._write(_JSON_REPLY)
            return
        if TTFB_MARKER in body:
            self._write(_STREAM_HEAD + _STREAM_PARTS[0])
            rest = b"".join(_STREAM_PARTS[1:])
            asyncio.get_running_loop().call_later(TTFB_DELAY_S, self._write, rest)
            return
        self._write(_STREAM_HEAD)
        for part in _STREAM_PARTS:  # one write per event, as a real upstream sends them
            self._write(part)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def _serve_upstream(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Upstream, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


# -- the minimal forwarder (the ceiling of our stack) ---------------------------------------------


def _forwarder_app(upstream: str, transport_name: str) -> Any:
    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    state: dict[str, httpx.AsyncClient] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        transport: httpx.AsyncBaseTransport | None = None
        if transport_name == "aiohttp":
            from httpx_aiohttp import AiohttpTransport

            transport = AiohttpTransport(limits=limits)
        elif transport_name == "httpx":
            transport = httpx.AsyncHTTPTransport(limits=limits)
        # "httpx-default": httpx's default pool limits (100 connections, 20 kept alive)
        async with httpx.AsyncClient(transport=transport, timeout=60) as client:
            state["client"] = client
            yield

    async def forward(request: Request) -> Response:
        client = state["client"]
        body = await request.body()
        headers = {"content-type": "application/json", "authorization": "Bearer bench"}
        url = upstream + "/chat/completions"
        if b'"stream":true' not in body and b'"stream": true' not in body:
            reply = await client.post(url, content=body, headers=headers)
            return Response(reply.content, reply.status_code, media_type="application/json")
        upstream_reply = await client.send(
            client.build_request("POST", url, content=body, headers=headers), stream=True
        )

        async def relay() -> Any:
            try:
                async for chunk in upstream_reply.aiter_raw():
                    yield chunk
            finally:
                await upstream_reply.aclose()

        return StreamingResponse(
            relay(), upstream_reply.status_code, media_type="text/event-stream"
        )

    return Starlette(
        routes=[Route("/v1/chat/completions", forward, methods=["POST"])], lifespan=lifespan
    )


def _bare_app(upstream: str) -> Any:
    """Starlette routing, aiohttp's client, the upstream's bytes straight to ASGI send."""
    import aiohttp
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route
    from starlette.types import Receive, Scope, Send

    state: dict[str, aiohttp.ClientSession] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        connector = aiohttp.TCPConnector(limit=512)
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
            state["session"] = session
            yield

    class Relay:
        def __init__(self, body: bytes) -> None:
            self.body = body

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            headers = {"content-type": "application/json", "authorization": "Bearer bench"}
            url = upstream + "/chat/completions"
            async with state["session"].post(url, data=self.body, headers=headers) as reply:
                kind = reply.headers.get("content-type", "application/json").encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": reply.status,
                        "headers": [(b"content-type", kind)],
                    }
                )
                async for chunk in reply.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})

    async def forward(request: Request) -> Any:
        return Relay(await request.body())

    return Starlette(
        routes=[Route("/v1/chat/completions", forward, methods=["POST"])], lifespan=lifespan
    )


async def _serve_asgi(port: int, app: Any) -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.backlog = 1024
    await serve(app, config)


async def _serve_forwarder(port: int, upstream: str, transport_name: str) -> None:
    if transport_name == "bare":
        await _serve_asgi(port, _bare_app(upstream))
        return
    await _serve_asgi(port, _forwarder_app(upstream, transport_name))


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


async def _serve_app(port: int, upstream: str, hooks: bool) -> None:
    """anyllm's app for an OpenAI-compatible upstream, with or without no-op hooks."""
    import logging

    from anyllm_cli.config import BackendSettings, Settings
    from anyllm_cli.server.app import create_app

    logging.getLogger("anyllm").setLevel(logging.WARNING)  # as serve: the access log on stderr
    logging.getLogger("anyllm").addHandler(logging.NullHandler())
    logging.getLogger("anyllm").propagate = False
    backend = BackendSettings(name="openai", kind="openai", base_url=upstream, api_key="sk-bench")
    settings = Settings(backends={"openai": backend}, default_backend="openai")
    extra: dict[str, Any] = {"guard": _NoGuard(), "observers": [_NoObserver()]} if hooks else {}
    await _serve_asgi(port, create_app(settings, **extra))


# -- processes ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"a bench process exited early with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise SystemExit(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def missing_tool() -> str | None:
    """What to install when wrk or taskset is missing, else None."""
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (apt-get install -y wrk util-linux)"
    return None


@contextlib.contextmanager
def mock_upstream() -> Iterator[str]:
    """The raw asyncio mock upstream, pinned to LOAD_CORE, while the block runs: its /v1 URL."""
    port = _free_port()
    proc = _spawn_role(LOAD_CORE, "--role", "upstream", "--port", str(port))
    try:
        _wait_port(port, proc)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        _stop(proc)


def _spawn_role(core: str, *args: str) -> subprocess.Popen[bytes]:
    command = ["taskset", "-c", core, sys.executable, str(HERE), *args]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL)


def _anyllm_command() -> list[str]:
    script = Path(sys.executable).with_name("anyllm")
    return [str(script)] if script.exists() else [sys.executable, "-m", "anyllm_cli"]


@dataclass
class Proxy:
    proc: subprocess.Popen[bytes]
    url: str
    startup_s: float
    log: Path


def _proxy_env(home: Path) -> dict[str, str]:
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench-dummy", "ANYLLM_HOME": str(home)}
    env["NO_COLOR"] = "1"
    for name in ("OPENAI_BASE_URL", "ANYLLM_CONFIG", "PROXY_API_KEYS", "BIG_MODEL", "SMALL_MODEL"):
        env.pop(name, None)
    for name in ("ANYLLM_DB", "ANYLLM_REDIS_URL", "ANYLLM_MASTER_KEY"):
        env.pop(name, None)
    return env


def _create_key(home: Path) -> str:
    """A virtual key with limits and a budget that never bind, so every request pays the full
    enforcement path (lookup, budget, rpm and tpm, spend) without being refused."""
    args = ["keys", "create", "bench", "--rpm", "1000000000", "--tpm", "1000000000000"]
    args += ["--budget", "1000000", "--json"]
    out = subprocess.run(
        [*_anyllm_command(), *args], env=_proxy_env(home), capture_output=True, check=True
    )
    return str(json.loads(out.stdout)["key"])


def _start_proxy(upstream: str, workdir: Path, name: str = "home", *extra: str) -> Proxy:
    log = workdir / f"anyllm-serve-{name}.log"
    env = _proxy_env(workdir / name)
    command = [*_anyllm_command(), "serve", "--backend", "openai", "--base-url", upstream]
    command += ["--host", "127.0.0.1", "--port", "0", *extra]
    started = time.perf_counter()
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            ["taskset", "-c", PROXY_CORE, *command],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            cwd=workdir,
            env=env,
        )
    deadline = started + 30
    while time.perf_counter() < deadline:
        match = re.search(r"listening on (http://[\w.\[\]:-]+)", log.read_text(errors="replace"))
        if match:
            return Proxy(proc, match.group(1), time.perf_counter() - started, log)
        if proc.poll() is not None:
            break
        time.sleep(0.005)
    proc.kill()
    raise SystemExit(
        f"`anyllm serve` did not print 'listening on http://HOST:PORT' "
        f"(exit code {proc.poll()}):\n{log.read_text(errors='replace')[-2000:]}"
    )


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MiB."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    total_kb, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1024


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# -- load -----------------------------------------------------------------------------------------


@dataclass
class Target:
    label: str
    url: str  # full URL of the POST endpoint
    anthropic: bool  # body in the Anthropic Messages shape (else OpenAI Chat)
    key: str = "bench"
    requests_done: int = 0
    notes: list[str] = field(default_factory=list)


def _body(target: Target, stream: bool, text: str = "Say hello in one short sentence.") -> bytes:
    message = {"role": "user", "content": text}
    if target.anthropic:
        body: dict[str, Any] = {"model": "bench-model", "max_tokens": 256, "messages": [message]}
    else:
        body = {"model": "bench-model", "max_tokens": 256, "messages": [message]}
        if stream:
            body["stream_options"] = {"include_usage": True}
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":")).encode()


def _headers(target: Target) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if target.anthropic:
        headers |= {"x-api-key": target.key, "anthropic-version": "2023-06-01"}
    else:
        headers["authorization"] = f"Bearer {target.key}"
    return headers


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: str


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk(target: Target, stream: bool, connections: int, duration: int, workdir: Path) -> WrkResult:
    script = workdir / "post.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = [==[{_body(target, stream).decode()}]==]"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in _headers(target).items()]
    script.write_text("\n".join(lines) + "\n")
    command = ["taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{duration}s"]
    command += ["--latency", "--timeout", "10s", "-s", str(script), target.url]
    run = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=duration + 60
    )
    out = run.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    percentiles = {
        p: float(v) * _UNITS[u]
        for p, v, u in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    }
    errors = []
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors.append(f"{match.group(1)} non-2xx")
    if match := re.search(r"Socket errors: (.*)", out):
        errors.append(f"socket errors {match.group(1)}")
    if not rps or not total:
        raise SystemExit(f"could not read wrk's output:\n{out}")
    target.requests_done += int(total.group(1))
    return WrkResult(
        float(rps.group(1)),
        percentiles.get("50", float("nan")),
        percentiles.get("99", float("nan")),
        int(total.group(1)),
        "; ".join(errors),
    )


@contextlib.contextmanager
def _connection(url: str) -> Iterator[tuple[http.client.HTTPConnection, str]]:
    match = re.match(r"http://([^/:]+):(\d+)(/.*)", url)
    assert match, url
    conn = http.client.HTTPConnection(match.group(1), int(match.group(2)), timeout=30)
    try:
        yield conn, match.group(3)
    finally:
        conn.close()


def _check(target: Target) -> None:
    """One request of each kind: a 200 and a body of the expected shape, or a clear failure."""
    with _connection(target.url) as (conn, path):
        for stream in (False, True):
            conn.request("POST", path, _body(target, stream), _headers(target))
            reply = conn.getresponse()
            data = reply.read()
            ok = reply.status == 200 and (
                (b"message_stop" if target.anthropic else b"[DONE]") in data
                if stream
                else (b'"content"' in data)
            )
            if not ok:
                raise SystemExit(
                    f"{target.label}: status {reply.status}, body {data[:600]!r} (stream={stream})"
                )


def _ttfb_ms(target: Target, samples: int) -> tuple[float, float | None]:
    """Median time to the first body byte of a stream, and the median x-anyllm-overhead-ms."""
    times: list[float] = []
    overheads: list[float] = []
    body = _body(target, True, "bench-ttfb: a stream whose first chunk comes early")
    with _connection(target.url) as (conn, path):
        for _ in range(samples):
            started = time.perf_counter()
            conn.request("POST", path, body, _headers(target))
            reply = conn.getresponse()
            reply.read(1)
            times.append((time.perf_counter() - started) * 1000)
            reply.read()
            if value := reply.getheader("x-anyllm-overhead-ms"):
                with contextlib.suppress(ValueError):
                    overheads.append(float(value))
    return statistics.median(times), statistics.median(overheads) if overheads else None


# -- the run --------------------------------------------------------------------------------------


def _table(results: dict[tuple[str, bool, int], WrkResult], targets: list[Target]) -> str:
    head = f"{'requests/s':<42}" + "".join(f"{f'c={c}':>9}" for c in CONCURRENCY) * 2
    rows = [
        f"{'':<42}{'non-streaming':^27}{'streaming, 50 chunks':^27}",
        head,
    ]
    for target in targets:
        cells = ""
        for stream in (False, True):
            for c in CONCURRENCY:
                result = results.get((target.label, stream, c))
                cells += f"{result.rps:>9.0f}" if result else f"{'-':>9}"
        rows.append(f"{target.label:<42}{cells}")
    return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
    if shutil.which("wrk") is None:
        print(
            "wrk is not installed: it is the load generator of this benchmark.\n"
            "Install it with: apt-get update && apt-get install -y wrk",
            file=sys.stderr,
        )
        return 2
    if shutil.which("taskset") is None:
        print("taskset (util-linux) is missing: it pins the processes to cores.", file=sys.stderr)
        return 2
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {int(LOAD_CORE)})
    procs: list[subprocess.Popen[bytes]] = []
    workdir = Path(tempfile.mkdtemp(prefix="anyllm-bench-"))
    try:
        return _run(args, procs, workdir)
    finally:
        for proc in procs:
            _stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def _run(args: argparse.Namespace, procs: list[subprocess.Popen[bytes]], workdir: Path) -> int:
    up_port = _free_port()
    procs.append(_spawn_role(LOAD_CORE, "--role", "upstream", "--port", str(up_port)))
    _wait_port(up_port, procs[-1])
    upstream = f"http://127.0.0.1:{up_port}/v1"
    targets = [Target("(a) direct to the mock upstream", upstream + "/chat/completions", False)]
    for transport in args.transports:
        port = _free_port()
        procs.append(
            _spawn_role(
                PROXY_CORE,
                "--role",
                "forwarder",
                "--port",
                str(port),
                "--upstream",
                upstream,
                "--transport",
                transport,
            )
        )
        _wait_port(port, procs[-1])
        name = {
            "httpx": "httpx pool",
            "httpx-default": "httpx, default limits",
            "bare": "bare (Starlette + aiohttp)",
        }.get(transport, "httpx + aiohttp transport")
        targets.append(
            Target(f"(b) forwarder, {name}", f"http://127.0.0.1:{port}/v1/chat/completions", False)
        )
    proxy: Proxy | None = None
    rss: dict[str, float] = {}
    if not args.skip_proxy:
        proxy = _start_proxy(upstream, workdir)
        procs.append(proxy.proc)
        time.sleep(0.5)
        rss["idle"] = _rss_mb(proxy.proc.pid)
        targets.append(Target("(c) anyllm serve, /v1/messages", proxy.url + "/v1/messages", True))
        targets.append(
            Target(
                "(c) anyllm serve, /v1/chat/completions", proxy.url + "/v1/chat/completions", False
            )
        )
    if not args.skip_hooks:
        for label, hooks in (("(d) app, no hooks", False), ("(d) app, no-op Guard+Observer", True)):
            port = _free_port()
            role = ["--role", "app", "--port", str(port), "--upstream", upstream]
            procs.append(_spawn_role(PROXY_CORE, *role, *(["--hooks"] if hooks else [])))
            _wait_port(port, procs[-1])
            targets.append(Target(label, f"http://127.0.0.1:{port}/v1/messages", True))
    if proxy is not None and args.keys:
        secret = _create_key(workdir / "home-keys")
        keyed = _start_proxy(upstream, workdir, "home-keys")
        procs.append(keyed.proc)
        time.sleep(0.5)
        targets.append(
            Target("(e) anyllm serve + key, /v1/messages", keyed.url + "/v1/messages", True, secret)
        )
    if proxy is not None and args.record:
        recordings = str(workdir / "recordings")
        recording = _start_proxy(upstream, workdir, "home-record", "--record", recordings)
        procs.append(recording.proc)
        time.sleep(0.5)
        label = "(f) anyllm serve --record, /v1/messages"
        targets.append(Target(label, recording.url + "/v1/messages", True))
    for target in targets:
        _check(target)

    results: dict[tuple[str, bool, int], WrkResult] = {}
    for target in targets:
        if target.label.startswith("(c) anyllm serve, /v1/messages") and proxy:
            _wrk(target, False, 16, 1, workdir)  # warm-up: first-request imports, caches
            rss["warm"] = _rss_mb(proxy.proc.pid)
            rss["warm_requests"] = target.requests_done
        for stream in (False, True):
            for c in CONCURRENCY:
                result = _wrk(target, stream, c, args.duration, workdir)
                results[(target.label, stream, c)] = result
                if result.errors:
                    target.notes.append(f"stream={stream} c={c}: {result.errors}")
                print(
                    f"  {target.label:<40} stream={stream!s:<5} c={c:<3} {result.rps:>8.0f} req/s  "
                    f"p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms {result.errors}",
                    file=sys.stderr,
                    flush=True,
                )
    ttfb = {t.label: _ttfb_ms(t, args.ttfb_samples) for t in targets}

    print()
    print(_table(results, targets))
    direct = targets[0]
    base = results[(direct.label, False, 1)]
    base_ttfb = ttfb[direct.label][0]
    print()
    print(
        f"{'concurrency 1, non-streaming':<42}{'p50 ms':>9}{'p99 ms':>9}{'+p50 ms':>9}{'+p99 ms':>9}"
        f"{'TTFB ms':>9}{'+TTFB':>9}"
    )
    for target in targets:
        r = results[(target.label, False, 1)]
        first, _ = ttfb[target.label]
        print(
            f"{target.label:<42}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.p50_ms - base.p50_ms:>9.2f}"
            f"{r.p99_ms - base.p99_ms:>9.2f}{first:>9.2f}{first - base_ttfb:>9.2f}"
        )
    print(
        "(+ = added over direct; TTFB = first body byte of a stream whose first chunk comes early)"
    )
    for target in targets:
        for note in target.notes:
            print(f"WARNING {target.label}: {note}")
    if proxy is not None:
        _side_by_side(targets, results, "(e)", "keys on vs off", 9)
        _side_by_side(targets, results, "(f)", "recording vs not", 11)
        _proxy_report(args, proxy, targets, results, rss, ttfb, workdir)
    return 0


def _side_by_side(
    targets: list[Target],
    results: dict[tuple[str, bool, int], WrkResult],
    prefix: str,
    title: str,
    issue: int,
) -> None:
    """A feature's target (keys, issue 9; recording, issue 11) against the plain proxy, c=64.
    One short wrk run each: bench_keys.py and bench_record.py alternate rounds for a steadier
    ratio."""
    off = next((t for t in targets if t.label.startswith("(c) anyllm serve, /v1/messages")), None)
    on = next((t for t in targets if t.label.startswith(prefix)), None)
    if off is None or on is None:
        return
    print()
    print(f"{title} (/v1/messages, c=64; issue {issue}):")
    for stream in (False, True):
        a, b = results[(off.label, stream, 64)].rps, results[(on.label, stream, 64)].rps
        ok = b >= 0.9 * a
        print(
            f"  {'PASS' if ok else 'FAIL'}  stream={stream!s:<5} off {a:.0f} req/s, on {b:.0f} "
            f"req/s ({100 * b / a:.0f}%; goal >= 90%)"
        )


def _proxy_report(
    args: argparse.Namespace,
    proxy: Proxy,
    targets: list[Target],
    results: dict[tuple[str, bool, int], WrkResult],
    rss: dict[str, float],
    ttfb: dict[str, tuple[float, float | None]],
    workdir: Path,
) -> None:
    messages = next(t for t in targets if t.label.startswith("(c) anyllm serve, /v1/messages"))
    served = sum(t.requests_done for t in targets if t.label.startswith("(c)"))
    while served < args.soak:
        result = _wrk(messages, False, 64, args.duration, workdir)
        served += result.requests
    rss["after"] = _rss_mb(proxy.proc.pid)
    overhead = ttfb[messages.label][1]
    print()
    print(f"proxy startup (spawn to 'listening on'): {proxy.startup_s:.2f} s")
    print(
        f"proxy RSS: idle {rss['idle']:.1f} MiB, after a {rss['warm_requests']:.0f}-request warm-up "
        f"{rss['warm']:.1f} MiB, after {served} requests {rss['after']:.1f} MiB "
        f"(growth since warm-up {rss['after'] - rss['warm']:+.1f} MiB)"
    )
    if overhead is not None:
        print(f"x-anyllm-overhead-ms reported by the proxy on streams (median): {overhead:.2f}")
    direct = targets[0].label
    bare = next((t.label for t in targets if "bare" in t.label), None)
    rps = results[(messages.label, False, 64)].rps
    stream_rps = results[(messages.label, True, 64)].rps
    added = results[(messages.label, False, 1)].p50_ms - results[(direct, False, 1)].p50_ms
    ttfb_added = ttfb[messages.label][0] - ttfb[direct][0]
    goals: list[tuple[str, bool, str]] = []
    if bare is not None:
        bare_rps = results[(bare, False, 64)].rps
        bare_stream = results[(bare, True, 64)].rps
        bare_added = results[(bare, False, 1)].p50_ms - results[(direct, False, 1)].p50_ms
        bare_ttfb = ttfb[bare][0] - ttfb[direct][0]
        goals += [
            ("non-streaming c=64 >= 75% of bare", rps >= 0.75 * bare_rps, f"{rps / bare_rps:.0%}"),
            (
                "50-chunk streams c=64 >= 60% of bare",
                stream_rps >= 0.6 * bare_stream,
                f"{stream_rps / bare_stream:.0%}",
            ),
            (
                "added p50 c=1 within 0.5 ms of bare's",
                added - bare_added <= 0.5,
                f"{added:.2f} vs {bare_added:.2f} ms",
            ),
            (
                "added TTFB within 1 ms of bare's",
                ttfb_added - bare_ttfb <= 1.0,
                f"{ttfb_added:.2f} vs {bare_ttfb:.2f} ms",
            ),
        ]
    plain = next((t.label for t in targets if t.label == "(d) app, no hooks"), None)
    hooked = next((t.label for t in targets if t.label == "(d) app, no-op Guard+Observer"), None)
    if plain is not None and hooked is not None:
        for stream in (False, True):
            base_rps = results[(plain, stream, 64)].rps
            with_rps = results[(hooked, stream, 64)].rps
            goals.append(
                (
                    f"no-op hooks c=64 stream={stream} within 3%",
                    with_rps >= 0.97 * base_rps,
                    f"{with_rps / base_rps:.1%}",
                )
            )
    goals += [
        ("idle RSS <= 80 MB", rss["idle"] <= 80, f"{rss['idle']:.1f} MiB"),
        (
            "RSS growth <= 10 MB",
            rss["after"] - rss["warm"] <= 10,
            f"{rss['after'] - rss['warm']:+.1f} MiB",
        ),
        ("startup <= 1.5 s", proxy.startup_s <= 1.5, f"{proxy.startup_s:.2f} s"),
    ]
    print()
    print("goals (issue 8, /v1/messages, one worker):")
    for name, ok, value in goals:
        print(f"  {'PASS' if ok else 'FAIL'}  {name:<42} {value}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--role", choices=["bench", "upstream", "forwarder", "app"], default="bench"
    )
    parser.add_argument("--hooks", action="store_true", help="--role app: no-op Guard+Observer")
    parser.add_argument("--skip-hooks", action="store_true", help="leave out the (d) targets")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", default="")
    parser.add_argument("--transport", default="httpx")
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--ttfb-samples", type=int, default=60)
    parser.add_argument(
        "--soak", type=int, default=10_000, help="requests the proxy serves at least"
    )
    parser.add_argument(
        "--transports",
        nargs="+",
        default=["httpx-default", "httpx", "aiohttp", "bare"],
        choices=["httpx-default", "httpx", "aiohttp", "bare"],
        help="forwarder variants (b)",
    )
    parser.add_argument("--skip-proxy", action="store_true", help="measure (a) and (b) only")
    parser.add_argument(
        "--keys", action="store_true", help="also (e): the proxy with a virtual key (issue 9)"
    )
    parser.add_argument(
        "--record", action="store_true", help="also (f): the proxy with --record (issue 11)"
    )
    args = parser.parse_args()
    if args.role == "upstream":
        asyncio.run(_serve_upstream(args.port))
        return 0
    if args.role == "forwarder":
        asyncio.run(_serve_forwarder(args.port, args.upstream, args.transport))
        return 0
    if args.role == "app":
        asyncio.run(_serve_app(args.port, args.upstream, args.hooks))
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
