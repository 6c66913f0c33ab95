"""The runner's pieces that need no process: bind checks, the socket, the startup hook."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from anyllm_cli.errors import ConfigError
from anyllm_cli.server.runner import (
    _Startup,
    bind_socket,
    check_bind,
    hypercorn_config,
    is_loopback,
    url_of,
)
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.168.1.5", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_open_binds_need_keys_or_open() -> None:
    check_bind(make_settings(host="127.0.0.1"))
    check_bind(make_settings(host="0.0.0.0", proxy_api_keys=("k",)))
    check_bind(make_settings(host="0.0.0.0", open=True))
    with pytest.raises(ConfigError, match="--open"):
        check_bind(make_settings(host="0.0.0.0"))


def test_port_zero_and_a_taken_port() -> None:
    sock = bind_socket("127.0.0.1", 0)
    try:
        url = url_of(sock)
        port = sock.getsockname()[1]
        assert url == f"http://127.0.0.1:{port}"
        with pytest.raises(ConfigError, match="already in use"):
            bind_socket("127.0.0.1", port)
    finally:
        sock.close()


def test_bad_host() -> None:
    with pytest.raises(ConfigError, match="--host"):
        bind_socket("no such host.invalid", 0)


def test_hypercorn_config() -> None:
    with socket.socket() as sock:
        config = hypercorn_config(make_settings(grace_period=4.5), sock)
        assert config.graceful_timeout == 4.5
        assert config.accesslog is None
        assert config.bind[0].startswith("fd://")


async def test_startup_hook_reports_ready_and_errors() -> None:
    ready: list[bool] = []
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "lifespan.startup.complete"})

    async def send(message: Any) -> None:
        sent.append(message)

    hook = _Startup(app, lambda: ready.append(True))
    await hook({"type": "lifespan"}, None, send)  # type: ignore[arg-type]
    assert ready == [True]

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise ConfigError("no backend")

    failing = _Startup(broken, lambda: ready.append(True))
    with pytest.raises(ConfigError):
        await failing({"type": "lifespan"}, None, send)  # type: ignore[arg-type]
    assert isinstance(failing.error, ConfigError)
    assert ready == [True]
