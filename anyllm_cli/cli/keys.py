"""`anyllm keys`: virtual keys with limits and budgets, and who spent what.

    anyllm keys create NAME [--rpm N] [--tpm N] [--max-parallel N] [--budget USD] [--period P]
                            [--models GLOB,...] [--backends NAME,...] [--expires 30d|DATE] [--json]
    anyllm keys list [--all] | show REF | update REF [...] | revoke REF | rotate REF | delete REF
    anyllm keys spend [REF] [--since 7d|DATE] [--by key|model|backend|day]

Works on the local store (`--db`, `ANYLLM_DB`, `[store] url`, else the file under ANYLLM_HOME) with
no server running, or on a running proxy with `--url URL` and `ANYLLM_MASTER_KEY`. Each command
parses, calls one `KeyService` method, renders: a table (plain tab-separated text when piped), or JSON
with `--json`. `create` and `rotate` print the secret once; with `--json`, stdout holds only JSON.
On `update`, `none` clears a limit (`--rpm none`, `--expires never`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from anyllm_cli.keys.manage import KeyOptions
    from anyllm_cli.keys.service import KeyService

T = TypeVar("T")
keys_app = typer.Typer(
    name="keys",
    help="Virtual keys: limits, budgets and spend.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

Db = Annotated[
    str | None,
    typer.Option("--db", metavar="URL", help="Store URL (sqlite:///PATH, postgresql://)."),
]
Url = Annotated[
    str | None,
    typer.Option("--url", metavar="URL", help="Manage a running proxy (with ANYLLM_MASTER_KEY)."),
]
Json = Annotated[bool, typer.Option("--json", help="JSON on stdout.")]
Ref = Annotated[str, typer.Argument(metavar="ID|NAME", help="The key's id or name.")]
Rpm = Annotated[str | None, typer.Option(metavar="N", help="Requests per minute (none: no limit).")]
Tpm = Annotated[str | None, typer.Option(metavar="N", help="Input+output tokens per minute.")]
Parallel = Annotated[
    str | None, typer.Option("--max-parallel", metavar="N", help="Requests in flight.")
]
Budget = Annotated[str | None, typer.Option(metavar="USD", help="Budget in USD per period.")]
PeriodOpt = Annotated[str | None, typer.Option(metavar="PERIOD", help="day, week, month or total.")]
Models = Annotated[
    str | None, typer.Option(metavar="GLOBS", help="Allowed models, globs: claude-*,gpt-4.1.")
]
Backends = Annotated[
    str | None, typer.Option(metavar="NAMES", help="Allowed backends: openai,ollama.")
]
Expires = Annotated[str | None, typer.Option(metavar="WHEN", help="30d, 12h, 2027-01-31 or never.")]
Meta = Annotated[
    str | None, typer.Option(metavar="JSON", help='Metadata as a JSON object: {"team": "ml"}.')
]


@asynccontextmanager
async def _service(db: str | None, url: str | None) -> AsyncIterator[KeyService]:
    from anyllm_cli.config import load_store_settings

    settings = load_store_settings({"db": db}, os.environ, cwd=Path.cwd())
    if url:
        from anyllm_cli.keys.remote import RemoteKeys

        async with RemoteKeys.connect(url, settings.master_key) as remote:
            yield remote
        return
    from anyllm_cli.keys.service import LocalKeys
    from anyllm_cli.stores import open_store

    store = await open_store(settings.url)  # managing keys needs no limiter, so no Redis
    try:
        yield LocalKeys(store)
    finally:
        await store.close()


def _run(db: str | None, url: str | None, op: Callable[[KeyService], Awaitable[T]]) -> T:
    import anyio

    async def main() -> T:
        async with _service(db, url) as service:
            return await op(service)

    return anyio.run(main)


def _options(name: str | None, **given: str | None) -> KeyOptions:
    import time

    from anyllm_cli.keys.manage import parse_options

    return parse_options(name, given, time.time())


def _json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2))


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.4f}".rstrip("0").rstrip(".")


def _row(k: dict[str, Any]) -> list[str]:
    limits = [f"{k[n]} {n}" for n in ("rpm", "tpm") if k[n] is not None]
    limits += [f"{k['max_parallel']} parallel"] if k["max_parallel"] is not None else []
    budget = (
        f"{_money(k['spent_usd'])} / {_money(k['budget_usd'])} {k['period']}"
        if k["budget_usd"] is not None
        else f"{_money(k['spent_usd'])} spent"
    )
    return [
        k["id"],
        k["name"],
        k["prefix"] + "...",
        ", ".join(limits) or "-",
        budget,
        k["expires"] or "never",
        k["status"],
    ]


def _table(keys: list[dict[str, Any]]) -> None:
    from anyllm_cli.cli import _console

    columns = ["id", "name", "prefix", "limits", "budget", "expires", "status"]
    _console.table(_console.stdout(), columns, [_row(k) for k in keys])


def _details(view: dict[str, Any]) -> None:
    from anyllm_cli.cli import _console

    shown = {k: v for k, v in view.items() if v not in (None, [], {})}
    rows = [[k, json.dumps(v) if isinstance(v, list | dict) else str(v)] for k, v in shown.items()]
    _console.table(_console.stdout(), ["field", "value"], rows)


def _secret(view: dict[str, Any], secret: str, as_json: bool) -> None:
    if as_json:
        _json({"key": secret, **view})
        return
    typer.echo(secret)
    sys.stderr.write(
        f"Key {view['name']} ({view['id']}): the line above is its secret, shown only this once.\n"
    )


@keys_app.command()
def create(
    *,
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="A name for the key (a person, CI job, tool).")
    ],
    rpm: Rpm = None,
    tpm: Tpm = None,
    max_parallel: Parallel = None,
    budget: Budget = None,
    period: PeriodOpt = None,
    models: Models = None,
    backends: Backends = None,
    expires: Expires = None,
    metadata: Meta = None,
    db: Db = None,
    url: Url = None,
    as_json: Json = False,
) -> None:
    """Create a key and print it once."""
    options = _options(
        name, rpm=rpm, tpm=tpm, max_parallel=max_parallel, budget=budget, period=period,
        models=models, backends=backends, expires=expires, metadata=metadata,
    )  # fmt: skip
    view, secret = _run(db, url, lambda s: s.create(options))
    _secret(view, secret, as_json)


@keys_app.command("list")
def list_(
    all_: Annotated[bool, typer.Option("--all", help="Revoked and expired keys too.")] = False,
    db: Db = None,
    url: Url = None,
    as_json: Json = False,
) -> None:
    """List keys: limits, budget used and left, expiry, status."""
    keys = _run(db, url, lambda s: s.list_keys(all_))
    _json(keys) if as_json else _table(keys)


@keys_app.command()
def show(ref: Ref, db: Db = None, url: Url = None, as_json: Json = False) -> None:
    """Show one key."""
    view = _run(db, url, lambda s: s.show(ref))
    _json(view) if as_json else _details(view)


@keys_app.command()
def update(
    *,
    ref: Ref,
    name: Annotated[str | None, typer.Option(metavar="NAME", help="A new name.")] = None,
    rpm: Rpm = None,
    tpm: Tpm = None,
    max_parallel: Parallel = None,
    budget: Budget = None,
    period: PeriodOpt = None,
    models: Models = None,
    backends: Backends = None,
    expires: Expires = None,
    metadata: Meta = None,
    db: Db = None,
    url: Url = None,
    as_json: Json = False,
) -> None:
    """Change a key's limits, budget, allow-lists or expiry (a running proxy sees it within 1 s)."""
    options = _options(
        name, rpm=rpm, tpm=tpm, max_parallel=max_parallel, budget=budget, period=period,
        models=models, backends=backends, expires=expires, metadata=metadata,
    )  # fmt: skip
    view = _run(db, url, lambda s: s.update(ref, options))
    _json(view) if as_json else _details(view)


@keys_app.command()
def revoke(ref: Ref, db: Db = None, url: Url = None, as_json: Json = False) -> None:
    """Revoke a key: it stops working within a second; its spend history stays."""
    view = _run(db, url, lambda s: s.revoke(ref))
    _json(view) if as_json else typer.echo(f"revoked {view['name']} ({view['id']})")


@keys_app.command()
def rotate(ref: Ref, db: Db = None, url: Url = None, as_json: Json = False) -> None:
    """A new secret for a key: same id, settings and spend; the old secret stops working."""
    view, secret = _run(db, url, lambda s: s.rotate(ref))
    _secret(view, secret, as_json)


@keys_app.command()
def delete(
    ref: Ref,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    db: Db = None,
    url: Url = None,
    as_json: Json = False,
) -> None:
    """Delete a key for good (its spend rows stay, under its id)."""
    if not yes and not typer.confirm(f"Delete key {ref}?", err=True):
        raise typer.Exit(1)
    view = _run(db, url, lambda s: s.delete(ref))
    _json(view) if as_json else typer.echo(f"deleted {view['name']} ({view['id']})")


@keys_app.command()
def spend(
    *,
    ref: Annotated[
        str | None,
        typer.Argument(metavar="ID|NAME", help="One key's id or name; all keys if omitted."),
    ] = None,
    since: Annotated[str | None, typer.Option(metavar="WHEN", help="7d, 24h or a date.")] = None,
    by: Annotated[
        str, typer.Option(metavar="GROUP", help="Group by key, model, backend or day.")
    ] = "key",
    db: Db = None,
    url: Url = None,
    as_json: Json = False,
) -> None:
    """Spend in USD and tokens, grouped by key, model, backend or day."""
    from anyllm_cli.errors import InvalidInput

    if by not in ("key", "model", "backend", "day"):
        raise InvalidInput(f"--by {by}: expected key, model, backend or day")
    rows = _run(db, url, lambda s: s.spend(ref, since, by))  # type: ignore[arg-type]
    if as_json:
        _json(rows)
        return
    from anyllm_cli.cli import _console

    named = by == "key"  # a key's name beside its id
    table = [
        [r["group"], *([r.get("name") or "-"] if named else []), str(r["requests"]),
         str(r["input_tokens"]), str(r["output_tokens"]), _money(r["cost_usd"])]
        for r in rows
    ]  # fmt: skip
    headers = [by, *(["name"] if named else []), "requests", "input", "output", "cost"]
    _console.table(_console.stdout(), headers, table)
