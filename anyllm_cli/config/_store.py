"""The `[store]`, `[prices]` and `[webhooks]` tables, `ANYLLM_DB` / `ANYLLM_REDIS_URL` / `ANYLLM_MASTER_KEY`.

    store url:  --db  >  ANYLLM_DB  >  [store] url  >  sqlite:///<ANYLLM_HOME or data dir>/anyllm.db
    redis url:  --redis  >  ANYLLM_REDIS_URL  >  [store] redis  >  none (limits in the store)

`[prices."MODEL"]` overrides the price table for one model, in USD per million tokens:
`input`, `output`, `cache_read`, `cache_write`. `[webhooks] budget = URL` is POSTed when a key
crosses `budget_thresholds` (default 80, 95 and 100 percent) of its budget, once per key and period. `load_store_settings` reads only what `anyllm keys`
needs, so managing keys never requires a backend's API key.

What it gives up: a URL's password is kept as given (store URLs are never logged, only `safe_url`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from anyllm_cli.config._files import (
    CONFIG_FILE,
    _find_config,
    _read_env_file,
    _read_toml,
    _Table,
    data_home,
)
from anyllm_cli.errors import ConfigError

DB_FILE = "anyllm.db"
PRICE_FIELDS = ("input", "output", "cache_read", "cache_write")
_STORE_KEYS = frozenset({"url", "redis"})
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


@dataclass(frozen=True, slots=True)
class StoreSettings:
    url: str
    redis_url: str | None = None
    master_key: str | None = field(default=None, repr=False)
    prices: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: MappingProxyType({}))
    budget_webhook: str | None = None
    budget_thresholds: tuple[int, ...] = (80, 95, 100)


def safe_url(url: str) -> str:
    """The URL with any password replaced by ***."""
    return _PASSWORD.sub(r"\1***@", url)


def _check_url(url: str, where: str) -> str:
    if not url.startswith(("sqlite:", "postgresql:", "postgres:")):
        raise ConfigError(
            f"{where}: expected sqlite:///PATH or postgresql://..., got {safe_url(url)!r}"
        )
    return url


def _prices(doc: _Table) -> dict[str, Mapping[str, float]]:
    out: dict[str, Mapping[str, float]] = {}
    table = _Table(doc.data.get("prices", {}), "prices", doc.file)
    for model in table.data:
        entry = _Table(table.data[model], f"prices.{model}", doc.file)
        entry.only(frozenset(PRICE_FIELDS))
        out[model] = MappingProxyType(
            {k: v for k in PRICE_FIELDS if (v := entry.number(k)) is not None}
        )
    return out


def _webhooks(doc: _Table) -> dict[str, Any]:
    table = _Table(doc.data.get("webhooks", {}), "webhooks", doc.file)
    table.only(frozenset({"budget", "budget_thresholds"}))
    out: dict[str, Any] = {}
    url = table.text("budget")
    if url is not None:
        if not url.startswith(("http://", "https://")):
            raise table.error("budget", "expected an http:// or https:// URL")
        out["budget_webhook"] = url
    thresholds = table.get("budget_thresholds", list, "a list of percentages like [80, 95, 100]")
    if thresholds is not None:
        if not thresholds or not all(
            isinstance(t, int) and not isinstance(t, bool) and 0 < t <= 100 for t in thresholds
        ):
            raise table.error("budget_thresholds", "expected percentages between 1 and 100")
        out["budget_thresholds"] = tuple(sorted(set(thresholds)))
    return out


def store_settings(
    doc: _Table, flags: Mapping[str, Any], envs: Mapping[str, str], home: Path
) -> StoreSettings:
    store = _Table(doc.data.get("store", {}), "store", doc.file)
    store.only(_STORE_KEYS)
    if flags.get("db"):
        url = _check_url(str(flags["db"]), "--db")
    elif envs.get("ANYLLM_DB"):
        url = _check_url(envs["ANYLLM_DB"], "ANYLLM_DB")
    elif (given := store.text("url")) is not None:
        url = _check_url(given, f"{doc.file}: store.url")
    else:
        url = f"sqlite://{(home / DB_FILE).resolve()}"
    redis = flags.get("redis") or envs.get("ANYLLM_REDIS_URL") or store.text("redis")
    if redis and not str(redis).startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"redis URL: expected redis://HOST:PORT/DB, got {safe_url(str(redis))!r}")
    return StoreSettings(
        url=url,
        redis_url=str(redis) if redis else None,
        master_key=envs.get("ANYLLM_MASTER_KEY") or None,
        prices=MappingProxyType(_prices(doc)),
        **_webhooks(doc),
    )


def load_store_settings(
    flags: Mapping[str, Any], env: Mapping[str, str], *, cwd: Path
) -> StoreSettings:
    """Only the store's settings (for `anyllm keys`): the same file and precedence as serve."""
    given = {k: v for k, v in flags.items() if v is not None and v is not False}
    from_env_file, _ = _read_env_file(given, cwd)
    envs = {**from_env_file, **{k: v for k, v in env.items() if v != ""}}
    path = _find_config(given, envs, cwd)
    doc = _Table(_read_toml(path) if path else {}, "", str(path) if path else CONFIG_FILE)
    return store_settings(doc, given, envs, data_home(envs, cwd))
