"""`anyllm serve`: the proxy. Parse flags, load settings, run the server, print where it listens.

Once every worker is ready, stderr gets a banner (URL, the config file and env file read,
backends, model mapping and the exact environment lines for Claude Code and the SDKs) and then one
plain line, `listening on http://HOST:PORT`, that scripts and tests wait for (`--port 0` picks a
free port). Under `--log-format json` stderr is JSON Lines only: the banner and that line become one
`{"event": "listening", "url": ..., "message": "listening on URL", ...}` record in the access log's
format. Startup problems (bad config, port taken, a missing key, an open bind) raise `ConfigError`:
`main()` prints one line and exits 2. The server modules are imported only when the command runs.

The `--backend` help names every preset without importing them (a test keeps the list in step), and
shell completion offers them from the live preset table.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from anyllm_cli.errors import AnyllmError

if TYPE_CHECKING:
    from anyllm_cli.config import BackendSettings, RecordSettings, Settings

# Every --backend name besides those of a config file (tests/cli/test_serve.py checks the list).
BACKEND_NAMES = (
    "openai, openrouter, deepseek, groq, together, mistral, fireworks, xai, zhipu, "
    "gemini-openai (key needed); ollama, vllm, lmstudio, llamacpp (local); azure, gemini, vertex, "
    "bedrock, anthropic (their own APIs); echo (offline)"
)


def _complete_backend(incomplete: str) -> list[str]:
    from anyllm_cli.config import backend_names

    return [name for name in backend_names() if name.startswith(incomplete)]


def serve(
    *,
    backend: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help=f"A [backends.NAME] of the config file, or a preset: {BACKEND_NAMES}.",
            autocompletion=_complete_backend,
        ),
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(metavar="URL", help="Upstream base URL (with or without /v1).")
    ] = None,
    host: Annotated[
        str | None, typer.Option(metavar="HOST", help="Address to listen on [127.0.0.1].")
    ] = None,
    port: Annotated[
        int | None, typer.Option(metavar="PORT", help="Port to listen on; 0 picks one [3000].")
    ] = None,
    config: Annotated[
        str | None,
        typer.Option(
            metavar="PATH",
            help="TOML file with [backends.NAME], or a directory holding anyllm.toml.",
        ),
    ] = None,
    env_file: Annotated[
        str | None, typer.Option(metavar="FILE", help="Env file [.anyllm.env].")
    ] = None,
    big_model: Annotated[
        str | None, typer.Option(metavar="MODEL", help="Upstream model for sonnet/opus requests.")
    ] = None,
    small_model: Annotated[
        str | None, typer.Option(metavar="MODEL", help="Upstream model for haiku requests.")
    ] = None,
    model_map: Annotated[
        list[str] | None,
        typer.Option(metavar="FROM=TO", help="Map one model name to another; repeatable."),
    ] = None,
    workers: Annotated[int | None, typer.Option(metavar="N", help="Worker processes [1].")] = None,
    log_level: Annotated[
        str | None, typer.Option(metavar="LEVEL", help="debug, info, warning or error [info].")
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(metavar="FORMAT", help="text, or json (stderr is then JSON Lines only)."),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            metavar="URL", help="Key store: sqlite:///PATH or postgresql://... [ANYLLM_DB]."
        ),
    ] = None,
    redis: Annotated[
        str | None,
        typer.Option(metavar="URL", help="Redis for limits across instances [ANYLLM_REDIS_URL]."),
    ] = None,
    open_: Annotated[
        bool, typer.Option("--open", help="Allow listening beyond loopback without keys.")
    ] = False,
    record: Annotated[
        str | None,
        typer.Option(
            metavar="DIR_OR_FILE",
            help="Record every call as JSON lines (into a directory, or NAME.jsonl); keys redacted.",
        ),
    ] = None,
    record_bodies: Annotated[
        str | None,
        typer.Option(metavar="none|requests|all", help="What to keep of each call [all]."),
    ] = None,
    record_sample: Annotated[
        float | None, typer.Option(metavar="SHARE", help="Share of calls recorded, in (0, 1] [1].")
    ] = None,
) -> None:
    """Run the proxy: Anthropic, OpenAI and Gemini clients in front of any backend."""
    from anyllm_cli.config import load_settings
    from anyllm_cli.server.runner import run

    given: dict[str, Any] = {
        "backend": backend,
        "base_url": base_url,
        "host": host,
        "port": port,
        "config": config,
        "env_file": env_file,
        "big_model": big_model,
        "small_model": small_model,
        "model_map": model_map or None,
        "workers": workers,
        "log_level": log_level,
        "log_format": log_format,
        "open": open_ or None,
        "db": db,
        "redis": redis,
        "record": record,
        "record_bodies": record_bodies,
        "record_sample": record_sample,
    }
    flags = {k: v for k, v in given.items() if v is not None}
    json_logs = log_format == "json"
    try:
        keys = count_keys(flags)
        settings = load_settings(flags, os.environ, cwd=Path.cwd(), store_keys=keys)
        json_logs = settings.log_format == "json"
        run(settings, lambda url: announce(settings, url, keys))
    except AnyllmError as exc:
        if not json_logs:
            raise  # main() prints `anyllm: error: ...`
        from anyllm_cli.cli import exit_code

        sys.stderr.write(_record("error", {"event": "startup_failed", "message": str(exc)}) + "\n")
        raise typer.Exit(exit_code(exc)) from None


def count_keys(flags: dict[str, Any]) -> int:
    """Open (and migrate) the key store before serving: its problems are one line here, and its
    active keys count for the bind rule and the banner."""
    import time

    import anyio

    from anyllm_cli.config import load_store_settings
    from anyllm_cli.stores import open_store

    config = load_store_settings(flags, os.environ, cwd=Path.cwd())

    async def count() -> int:
        store = await open_store(config.url, config.redis_url)
        try:
            return await store.count_active_keys(time.time())
        finally:
            await store.close()

    return anyio.run(count)


def client_env(settings: Settings, url: str) -> list[str]:
    """The environment lines that point Claude Code, the OpenAI SDKs and Gemini clients at the proxy."""
    local = url.replace("://0.0.0.0:", "://127.0.0.1:").replace("://[::]:", "://[::1]:")
    if settings.proxy_api_keys or settings.store_keys:
        hint = "<a key from `anyllm keys create` or PROXY_API_KEYS>"
        if not settings.store_keys:
            hint = "<one of your PROXY_API_KEYS>"
        elif not settings.proxy_api_keys:
            hint = "<a key from `anyllm keys create`>"
        key, openai_key = f"ANTHROPIC_AUTH_TOKEN={hint}", f"OPENAI_API_KEY={hint}"
    else:  # no keys: any value does, but the SDKs insist on one
        key, openai_key = "ANTHROPIC_API_KEY=anyllm", "OPENAI_API_KEY=anyllm"
    gemini_key = openai_key.replace("OPENAI_API_KEY", "GEMINI_API_KEY")
    return [
        f"ANTHROPIC_BASE_URL={local}",
        key,
        f"OPENAI_BASE_URL={local}/v1",
        openai_key,
        f"GOOGLE_GEMINI_BASE_URL={local}",
        gemini_key,
    ]


def _backend_lines(b: BackendSettings, default: bool) -> list[str]:
    where = "offline" if b.kind == "echo" else b.base_url
    mapping = [
        f"big={b.big_model}" if b.big_model else "",
        f"small={b.small_model}" if b.small_model else "",
    ]
    mapping += [f"{k}->{v}" for k, v in b.model_map.items()]
    text = " ".join(m for m in mapping if m) or "models pass through by name"
    paths = f"/v1 and /{b.name}/v1" if default else f"/{b.name}/v1"
    return [f"  {b.name}: {where}", f"    at {paths}; {text}"]


def _sources(settings: Settings) -> list[str]:
    config = str(settings.config_file) if settings.config_file else "none"
    env = str(settings.env_file) if settings.env_file else "none"
    return [f"Config file: {config}", f"Env file: {env}"]


def announce(settings: Settings, url: str, keys: int = 0) -> None:
    """The start banner on stderr, then the machine-readable `listening on URL` line (under
    `--log-format json`, one JSON record instead of both)."""
    from anyllm_cli import __version__
    from anyllm_cli.cli import _console

    if settings.log_format == "json":
        sys.stderr.write(listening_record(settings, url, keys) + "\n")
        sys.stderr.flush()
        return
    lines = [f"Serving on {url}", *_sources(settings), "", "Backends:"]
    for name, b in settings.backends.items():
        lines += _backend_lines(b, name == settings.default_backend)
    lines += ["", "Point your clients at it:"]
    lines += [f"  {line}" for line in client_env(settings, url)]
    if settings.store is not None:
        from anyllm_cli.config import safe_url

        active = f"{keys} active key{'' if keys == 1 else 's'}"
        lines += ["", f"Key store: {safe_url(settings.store.url)} ({active})"]
        if settings.store.redis_url:
            lines.append(f"  limits in {safe_url(settings.store.redis_url)}")
    if settings.record is not None:
        lines += ["", f"Recording: {_recording(settings.record)}"]
    if not settings.proxy_api_keys and not keys:
        lines.append("  (no PROXY_API_KEYS and no keys in the store: any key is accepted)")
    _console.panel(_console.stderr(), f"anyllm serve {__version__}", lines)
    sys.stderr.write(f"listening on {url}\n")
    sys.stderr.flush()


def listening_record(settings: Settings, url: str, keys: int = 0) -> str:
    """The JSON form of the banner: one record shaped like the access log's."""
    from anyllm_cli import __version__
    from anyllm_cli.config import safe_url

    return _record(
        "info",
        {
            "event": "listening",
            "message": f"listening on {url}",
            "url": url,
            "version": __version__,
            "config_file": str(settings.config_file) if settings.config_file else None,
            "env_file": str(settings.env_file) if settings.env_file else None,
            "default_backend": settings.default_backend,
            "backends": {
                name: {"kind": b.kind, "base_url": None if b.kind == "echo" else b.base_url}
                for name, b in settings.backends.items()
            },
            "auth": bool(settings.proxy_api_keys or keys),
            "key_store": safe_url(settings.store.url) if settings.store else None,
            "active_keys": keys,
            "record": None
            if settings.record is None
            else {
                "path": str(settings.record.path),
                "bodies": settings.record.bodies,
                "sample": settings.record.sample,
            },
        },
    )


def _recording(record: RecordSettings) -> str:
    """Where `--record` writes, and what: `recordings/ (all bodies, 10% of calls)`."""
    every = "every call" if record.sample >= 1.0 else f"{record.sample:.0%} of calls"
    bodies = {"all": "all bodies", "requests": "request bodies", "none": "no bodies"}
    return f"{record.path} ({bodies.get(record.bodies, record.bodies)}, {every})"


def _record(level: str, fields: dict[str, Any]) -> str:
    """One JSON log line in the access log's shape (ts, level, logger, then `fields`)."""
    from anyllm_cli.server.access import JSONFormatter

    record = logging.LogRecord(
        "anyllm.server", logging.getLevelName(level.upper()), "", 0, "", None, None
    )
    record.fields = fields
    return JSONFormatter().format(record)
