"""`anyllm replay FILE`: send recorded requests again, to a backend in-process or a proxy by URL.

Thin: parse the flags, load the same settings as `serve` when a backend is built in-process (flags,
environment, `.anyllm.env`, TOML; `--backend echo` works offline), read `ANYLLM_API_KEY` for `--url`,
run `replay.session.run`, render. A progress bar on a terminal (stderr); the summary as a table, or
as JSON with `--json`. Exit codes: 0 ok; 1 when the error rate is above `--max-error-rate`, or
under `--fail-on-change` when a compared stop reason or tool call changed (so a replay gates CI);
2 for bad input or settings (a one-line message).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer


def replay(
    *,
    file: Annotated[
        str,
        typer.Argument(
            metavar="FILE",
            help="A recording (file or directory), a JSONL of request bodies, or a HAR file.",
        ),
    ],
    backend: Annotated[
        str | None,
        typer.Option(
            metavar="NAME", help="Send through this configured backend in-process (echo: offline)."
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(metavar="URL", help="Send to a running proxy (key: ANYLLM_API_KEY)."),
    ] = None,
    model: Annotated[
        str | None, typer.Option(metavar="MODEL", help="Ask every request for this model.")
    ] = None,
    concurrency: Annotated[int, typer.Option(metavar="N", help="Requests in flight at once.")] = 8,
    rate: Annotated[
        float | None, typer.Option(metavar="R", help="Start at most R requests per second.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(metavar="N", help="Replay the first N requests only.")
    ] = None,
    filter_: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            metavar="FIELD=GLOB",
            help="Keep matching requests (api, model, backend, stream, status, error, id; "
            "also FIELD!=GLOB); repeatable, all must hold.",
        ),
    ] = None,
    compare: Annotated[
        str | None,
        typer.Option(
            metavar="recorded|BACKEND|URL",
            help="Compare each reply with the recorded one, or with a second target's.",
        ),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="RESULTS.jsonl", help="Write one result per line (JSONL)."
        ),
    ] = None,
    max_error_rate: Annotated[
        float,
        typer.Option(metavar="SHARE", help="Exit 1 when more than this share of requests fail."),
    ] = 0.05,
    fail_on_change: Annotated[
        bool,
        typer.Option(
            "--fail-on-change",
            help="With --compare: exit 1 when a stop reason or tool call changed.",
        ),
    ] = False,
    api: Annotated[
        str | None,
        typer.Option(
            metavar="messages|chat|gemini", help="The API of a plain JSONL of request bodies."
        ),
    ] = None,
    config: Annotated[
        str | None, typer.Option(metavar="PATH", help="TOML file with [backends.NAME].")
    ] = None,
    env_file: Annotated[
        str | None, typer.Option(metavar="FILE", help="Env file [.anyllm.env].")
    ] = None,
    timeout: Annotated[
        float, typer.Option(metavar="SECONDS", help="Seconds allowed per request.")
    ] = 600.0,
) -> None:
    """Send recorded requests again (to a backend or a proxy), summarise, compare."""
    from anyllm_cli.cli import _console
    from anyllm_cli.config import load_settings
    from anyllm_cli.replay import session

    path = Path(file)
    plan = session.Plan(
        file=path,
        backend=backend,
        url=url,
        api_key=os.environ.get("ANYLLM_API_KEY") or None,
        model=model,
        concurrency=concurrency,
        rate=rate,
        limit=limit,
        filters=tuple(filter_ or ()),
        compare=compare,
        max_error_rate=max_error_rate,
        fail_on_change=fail_on_change,
        api=api,
        output=output,
        timeout_s=timeout,
    )
    if session.needs_settings(plan):
        # as serve reads them: --backend picks a TOML backend or adds a preset (openai, ollama, ...)
        flags: dict[str, Any] = {"config": config, "env_file": env_file, "backend": backend}
        settings = load_settings(flags, os.environ, cwd=Path.cwd())
        plan = replace(plan, settings=settings)
    total = session.count_lines(path) if path.exists() else 0
    total = min(total, limit) if limit is not None and total else total
    with _console.progress(total, enabled=sys.stderr.isatty() and not json_) as advance:
        import asyncio  # here, not at import: `anyllm --help` stays quick

        summary = asyncio.run(session.run(plan, lambda _result: advance()))
    if json_:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        from anyllm_cli.replay.report import table

        _console.rows(_console.stdout(), "anyllm replay", table(summary))
    if not summary["passed"]:
        raise typer.Exit(1)
