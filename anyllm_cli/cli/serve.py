"""`anyllm serve`: the proxy. Parse flags, load settings, run the server, print where it listens.

Once every worker is ready, stderr gets a banner (URL, backends, model mapping and the exact
environment lines for Claude Code and the SDKs) and then one plain line, `listening on
http://HOST:PORT`, that scripts and tests wait for (`--port 0` picks a free port). Startup problems
(bad config, port taken, a missing key, an open bind) raise `ConfigError`: `main()` prints one line
and exits 2. The server modules are imported only when the command runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from anyllm_cli.config import BackendSettings, Settings


def serve(
    *,
    backend: Annotated[
        str | None,
        typer.Option(help="Backend preset: openai, ollama, deepseek, ..., or echo (offline)."),
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="Upstream base URL (with or without /v1).")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on [127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on; 0 picks one [3000].")] = None,
    config: Annotated[str | None, typer.Option(help="TOML file with [backends.NAME].")] = None,
    env_file: Annotated[str | None, typer.Option(help="Env file [.anyllm.env].")] = None,
    big_model: Annotated[
        str | None, typer.Option(help="Upstream model for sonnet/opus requests.")
    ] = None,
    small_model: Annotated[
        str | None, typer.Option(help="Upstream model for haiku requests.")
    ] = None,
    model_map: Annotated[
        list[str] | None, typer.Option(help="FROM=TO model mapping; repeatable.")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes [1].")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning, error.")] = None,
    log_format: Annotated[str | None, typer.Option(help="text or json.")] = None,
    open_: Annotated[
        bool, typer.Option("--open", help="Allow listening beyond loopback without keys.")
    ] = False,
    record: Annotated[
        str | None,
        typer.Option(
            metavar="DIR_OR_FILE",
            help="Record every exchange as JSONL (a directory, or NAME.jsonl), secrets redacted.",
        ),
    ] = None,
    record_bodies: Annotated[
        str | None, typer.Option(help="What to keep: none, requests or all [all].")
    ] = None,
    record_sample: Annotated[
        float | None, typer.Option(help="Share of calls recorded, in (0, 1] [1].")
    ] = None,
) -> None:
    """Run the proxy: Anthropic and OpenAI clients in front of any OpenAI-compatible backend."""
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
        "record": record,
        "record_bodies": record_bodies,
        "record_sample": record_sample,
    }
    flags = {k: v for k, v in given.items() if v is not None}
    settings = load_settings(flags, os.environ, cwd=Path.cwd())
    run(settings, lambda url: announce(settings, url))


def client_env(settings: Settings, url: str) -> list[str]:
    """The environment lines that point Claude Code, the OpenAI SDKs and Gemini clients at the proxy."""
    local = url.replace("://0.0.0.0:", "://127.0.0.1:").replace("://[::]:", "://[::1]:")
    key = (
        "ANTHROPIC_AUTH_TOKEN=<one of your PROXY_API_KEYS>"
        if settings.proxy_api_keys
        else "ANTHROPIC_API_KEY=anyllm"
    )
    openai_key = (
        "OPENAI_API_KEY=<one of your PROXY_API_KEYS>"
        if settings.proxy_api_keys
        else "OPENAI_API_KEY=anyllm"
    )
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


def announce(settings: Settings, url: str) -> None:
    """The start banner on stderr, then the machine-readable `listening on URL` line."""
    from anyllm_cli import __version__
    from anyllm_cli.cli import _console

    lines = [f"Serving on {url}", "", "Backends:"]
    for name, b in settings.backends.items():
        lines += _backend_lines(b, name == settings.default_backend)
    lines += ["", "Point your clients at it:"]
    lines += [f"  {line}" for line in client_env(settings, url)]
    if not settings.proxy_api_keys:
        lines.append("  (no PROXY_API_KEYS set: any key is accepted)")
    _console.panel(_console.stderr(), f"anyllm serve {__version__}", lines)
    sys.stderr.write(f"listening on {url}\n")
    sys.stderr.flush()
