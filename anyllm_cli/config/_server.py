"""The `[server]` table, `PROXY_API_KEYS` and the serve flags, merged in that order.

`_merge_server` returns only the values someone set, so `Settings` keeps its defaults for the rest.
Proxy keys come from a list, `"env:VARIABLE"` (comma-separated) or `PROXY_API_KEYS`, which wins.
`check_exposure` refuses a non-loopback host without keys unless `--open` is given: the one rule,
applied when settings load and again by the runner before it binds.

What it gives up: no per-backend server options; log level and format are checked, not applied here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from anyllm_cli.config._files import _Flags, _Table
from anyllm_cli.config._urls import is_loopback_host
from anyllm_cli.errors import ConfigError

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("text", "json")


_SERVER_KEYS = frozenset(
    {
        "host",
        "port",
        "proxy_api_keys",
        "open",
        "max_concurrency",
        "max_body_bytes",
        "body_timeout",
        "ping_interval",
        "grace_period",
        "log_level",
        "log_format",
        "workers",
        "metrics_auth",
        "degradation_header",
    }
)


def _split_keys(text: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in text.split(",") if k.strip())


def _proxy_keys(server: _Table, envs: Mapping[str, str]) -> tuple[str, ...] | None:
    value = server.data.get("proxy_api_keys")
    if value is None:
        return None
    if isinstance(value, str) and value.startswith("env:"):
        var = value[4:].strip()
        if not envs.get(var):
            raise server.error("proxy_api_keys", f"environment variable {var} is not set")
        return _split_keys(envs[var])
    if isinstance(value, list) and all(isinstance(k, str) and k for k in value):
        return tuple(value)
    raise server.error(
        "proxy_api_keys", 'expected a list of strings or "env:VARIABLE", got a secret value'
    )


def _server_values(table: _Table) -> dict[str, Any]:
    level = table.text("log_level")
    if level is not None:
        table.data["log_level"] = level.lower()
    return {
        "host": table.text("host"),
        "port": table.integer("port", 0, 65535),
        "open": table.flag("open"),
        "max_concurrency": table.integer("max_concurrency", 1),
        "max_body_bytes": table.integer("max_body_bytes", 1),
        "body_timeout": table.number("body_timeout", 0.1),
        "ping_interval": table.number("ping_interval", 0.1),
        "grace_period": table.number("grace_period", 0.0),
        "log_level": table.choice("log_level", LOG_LEVELS),
        "log_format": table.choice("log_format", LOG_FORMATS),
        "workers": table.integer("workers", 1),
        "metrics_auth": table.flag("metrics_auth"),
        "degradation_header": table.flag("degradation_header"),
    }


def _merge_server(doc: _Table, flags: Mapping[str, Any], envs: Mapping[str, str]) -> dict[str, Any]:
    server = _Table(doc.data.get("server", {}), "server", doc.file)
    server.only(_SERVER_KEYS)
    out = {k: v for k, v in _server_values(server).items() if v is not None}
    keys = _proxy_keys(server, envs)
    if keys is not None:
        out["proxy_api_keys"] = keys
    if envs.get("PROXY_API_KEYS"):
        out["proxy_api_keys"] = _split_keys(envs["PROXY_API_KEYS"])
    names = ("host", "port", "open", "workers", "log_level", "log_format")
    given = _Flags({k: flags[k] for k in names if k in flags}, "", "command line")
    out.update({k: v for k, v in _server_values(given).items() if v is not None})
    return out


def check_exposure(host: str, *, keys: bool, open_: bool) -> None:
    """Off loopback, the proxy needs keys, or an explicit --open."""
    if is_loopback_host(host) or keys or open_:
        return
    raise ConfigError(
        f"host {host}: refusing to serve beyond this machine without keys: anyone who can reach it "
        "could spend your upstream credits. Set PROXY_API_KEYS=key1,key2 (or [server] "
        "proxy_api_keys; clients send one as their API key) or create one with `anyllm keys create`, "
        "bind to 127.0.0.1, or pass --open "
        "to serve anyone who can connect"
    )


def _check_exposure(server: Mapping[str, Any]) -> None:
    check_exposure(
        server.get("host", "127.0.0.1"),
        keys=bool(server.get("proxy_api_keys") or server.get("store_keys")),
        open_=bool(server.get("open")),
    )
