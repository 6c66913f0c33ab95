"""Serving the app with Hypercorn: our own socket, N worker processes, a graceful stop.

The runner binds and listens itself, before any worker starts, so `--port 0` gets a real port, a
taken port is a clear startup error, and worker processes share one listening socket (forked
children inherit it; the kernel spreads connections between them). `announce(url)` runs once every
worker has finished its lifespan startup (backends built); the CLI prints its banner and the
machine-readable `listening on http://HOST:PORT` line from it.

Shutdown on SIGINT/SIGTERM: Hypercorn stops accepting, lets requests in flight (streams included)
finish within `grace_period`, then cancels what is left and runs the lifespan shutdown, which closes
the backends and the HTTP client. With several workers the parent forwards the signal to each child
and waits for them.

Binding beyond loopback without `PROXY_API_KEYS` is refused unless `--open` was given. What it
gives up: no hot reload, no worker restarts (a worker that dies stays dead; the others carry on),
and on platforms without fork only one worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from anyllm_cli.config import Settings, check_exposure, is_loopback_host
from anyllm_cli.errors import AnyllmError, ConfigError
from anyllm_cli.pipeline.seams import CallObserver
from anyllm_cli.replay.recorder import recorder_for
from anyllm_cli.server.access import configure_logging
from anyllm_cli.server.app import create_app

log = logging.getLogger("anyllm.server")
BACKLOG = 1024


def is_loopback(host: str) -> bool:
    return is_loopback_host(host)


def check_bind(settings: Settings) -> None:
    """Refuse an open proxy on a reachable address (config's one rule, checked again at bind)."""
    keys = bool(settings.proxy_api_keys or settings.store_keys)
    check_exposure(settings.host, keys=keys, open_=settings.open)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket; a taken port or a bad host is a ConfigError naming the fix."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: cannot resolve it ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is already in use: stop the other server, or choose "
                "another port with --port (0 picks a free one)"
            ) from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise ConfigError(
                f"no permission to listen on {host}:{port}: use a port above 1023 with --port"
            ) from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Startup:
    """Wraps the app to learn when (and whether) its lifespan startup finished."""

    def __init__(self, app: ASGIApp, ready: Callable[[], None]) -> None:
        self.app = app
        self.ready = ready
        self.error: BaseException | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def watch(message: Message) -> None:
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                self.ready()

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            self.error = exc
            raise


def settle_heap() -> None:
    """Once started, move every object alive (modules, models, schemas, the app) out of the
    collector's sight: a full collection then walks only what requests made since, instead of the
    hundreds of thousands of startup objects, each time calls keep objects alive a while (streams
    in flight, the recorder's queue). Called in each worker after its lifespan startup."""
    gc.collect()
    gc.freeze()


def hypercorn_config(settings: Settings, sock: socket.socket) -> Config:
    config = Config()
    config.bind = [f"fd://{os.dup(sock.fileno())}"]  # Hypercorn closes its own copy
    config.graceful_timeout = settings.grace_period
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.include_server_header = False
    config.keep_alive_timeout = 75.0  # clients reuse connections between turns
    config.backlog = BACKLOG
    return config


async def serve_app(settings: Settings, sock: socket.socket, ready: Callable[[], None]) -> None:
    """One worker: the app on `sock` until SIGINT/SIGTERM (recording, when on, per worker)."""
    with contextlib.ExitStack() as resources:
        observers: list[CallObserver] = []
        if settings.record is not None:
            observers.append(resources.enter_context(recorder_for(settings)))
        await _serve_app(settings, sock, ready, observers)


async def _serve_app(
    settings: Settings,
    sock: socket.socket,
    ready: Callable[[], None],
    observers: Sequence[CallObserver],
) -> None:
    proxy_app = create_app(settings, observers=observers)

    def started() -> None:
        settle_heap()
        ready()

    app = _Startup(proxy_app, started)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await serve(app, hypercorn_config(settings, sock), shutdown_trigger=stop.wait)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - startup failures become one ConfigError line
        cause = proxy_app.state.proxy.startup_error or app.error or exc
        if isinstance(cause, AnyllmError):
            raise cause from None
        raise ConfigError(f"the server failed to start: {cause}") from None
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        # The server has stopped and the process is on its way out: a second SIGTERM (a supervisor
        # repeating itself) must not turn a clean exit into death by signal. SIGINT stays default.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def run(settings: Settings, announce: Callable[[str], None]) -> None:
    """Bind, start `settings.workers` workers, call `announce(url)` once all serve; block till stop."""
    check_bind(settings)
    configure_logging(settings.log_level, settings.log_format)
    sock = bind_socket(settings.host, settings.port)
    url = url_of(sock)
    try:
        if settings.workers <= 1 or not hasattr(os, "fork"):
            asyncio.run(serve_app(settings, sock, lambda: announce(url)))
        else:
            _run_workers(settings, sock, lambda: announce(url))
    finally:
        sock.close()


def _run_workers(settings: Settings, sock: socket.socket, announce: Callable[[], None]) -> None:
    read_end, write_end = os.pipe()
    children: list[int] = []
    for _ in range(settings.workers):
        pid = os.fork()
        if pid == 0:  # the child: serve, tell the parent when ready, never return
            os.close(read_end)
            _child(settings, sock, write_end)
        children.append(pid)
    os.close(write_end)

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if _wait_ready(read_end, len(children)):
            announce()
        for child in children:
            os.waitpid(child, 0)
    finally:
        os.close(read_end)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _wait_ready(read_end: int, count: int) -> bool:
    got = 0
    while got < count:
        data = os.read(read_end, count - got)
        if not data:  # every child closed its end: one died before it was ready
            return False
        got += len(data)
    return True


def _child(settings: Settings, sock: socket.socket, write_end: int) -> None:
    def ready() -> None:
        os.write(write_end, b".")

    code = 0
    try:
        asyncio.run(serve_app(settings, sock, ready))
    except AnyllmError as exc:
        sys.stderr.write(f"anyllm: error: {exc}\n")
        code = 2
    except BaseException:
        log.exception("worker %d failed", os.getpid())
        code = 1
    finally:
        os._exit(code)
