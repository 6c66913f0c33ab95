"""Managing keys: create, update, revoke, rotate, delete, spend; shared by the CLI and the admin API.

`KeyOptions` holds what a caller may set (None = leave as is; `CLEAR` = remove the limit). Durations
and dates parse here (`30d`, `12h`, `2027-01-31`, `never`), as do budget periods, which start on UTC
day boundaries (`day`, `week` from Monday, `month`, `total` since creation). `key_view` is the one JSON
shape of a key, for `--json`, the admin API and the tables; it never holds the secret or its hash.

What it gives up: no per-key webhooks or teams; metadata is a flat JSON object kept as given.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from anyllm_cli.errors import InvalidInput, KeyNotFound
from anyllm_cli.keys.format import hash_secret, new_key_id, new_secret, visible_prefix
from anyllm_cli.stores import PERIODS, KeyRecord, KeyStore, UsageStore


class _Clear:
    def __repr__(self) -> str:
        return "CLEAR"


CLEAR: Final = _Clear()  # an option set to this removes the limit
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True, slots=True)
class KeyOptions:
    name: str | None = None
    rpm: int | _Clear | None = None
    tpm: int | _Clear | None = None
    max_parallel: int | _Clear | None = None
    budget_usd: float | _Clear | None = None
    period: str | None = None
    models: tuple[str, ...] | None = None
    backends: tuple[str, ...] | None = None
    expires: float | _Clear | None = None
    metadata: dict[str, Any] | None = field(default=None)

    def changes(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = None if isinstance(value, _Clear) else value
        return out


def parse_when(text: str, now: float, label: str = "--expires") -> float | _Clear:
    """`30d`, `12h`, `90m`, `2w`, an ISO date or time (UTC unless it says), or `never`."""
    text = text.strip()
    if text.lower() in ("never", "none", ""):
        return CLEAR
    match = _DURATION.match(text)
    if match:
        return now + int(match[1]) * _UNITS[match[2]]
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{label} {text!r}: expected 30d, 12h, a date like 2027-01-31, or never"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def parse_since(text: str | None, now: float) -> str | None:
    """`7d` or a date -> the first UTC day counted, or None for everything."""
    if not text:
        return None
    match = _DURATION.match(text.strip())
    if match:
        return _day(now - int(match[1]) * _UNITS[match[2]])
    try:
        return datetime.fromisoformat(text.strip()).date().isoformat()
    except ValueError:
        raise InvalidInput(
            f"--since {text!r}: expected 7d, 24h or a date like 2026-12-01"
        ) from None


def check_period(period: str) -> str:
    if period not in PERIODS:
        raise InvalidInput(f"period {period!r}: expected one of {', '.join(PERIODS)}")
    return period


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


def period_window(period: str, now: float) -> tuple[str | None, float | None]:
    """The first UTC day of the current period and when the next one starts (None: total)."""
    return _window(period, int(now // 86_400))  # POSIX days are 86,400 s: one entry per day


@functools.lru_cache(maxsize=16)
def _window(period: str, day: int) -> tuple[str | None, float | None]:
    today = datetime.fromtimestamp(day * 86_400, UTC)
    if period == "day":
        start, reset = today, today + timedelta(days=1)
    elif period == "week":
        start = today - timedelta(days=today.weekday())
        reset = start + timedelta(days=7)
    elif period == "month":
        start = today.replace(day=1)
        reset = (start + timedelta(days=32)).replace(day=1)
    else:
        return None, None
    return start.date().isoformat(), reset.timestamp()


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def key_view(record: KeyRecord, spent: float | None, now: float) -> dict[str, Any]:
    """The JSON shape of a key (never its secret or hash)."""
    _, reset = period_window(record.period, now)
    budget = record.budget_usd
    return {
        "id": record.id,
        "name": record.name,
        "prefix": record.prefix,
        "status": record.status(now),
        "created": iso(record.created),
        "expires": iso(record.expires),
        "revoked": iso(record.revoked),
        "rpm": record.rpm,
        "tpm": record.tpm,
        "max_parallel": record.max_parallel,
        "budget_usd": budget,
        "period": record.period,
        "spent_usd": spent,
        "remaining_usd": None if budget is None or spent is None else max(0.0, budget - spent),
        "budget_resets": iso(reset) if budget is not None else None,
        "models": list(record.models),
        "backends": list(record.backends),
        "metadata": dict(record.metadata),
    }


async def find(store: KeyStore, ref: str) -> KeyRecord:
    record = await store.get_key(ref)
    if record is None:
        raise KeyNotFound(f"no key with id or name {ref!r}")
    return record


async def spent_now(store: UsageStore, record: KeyRecord, now: float) -> float:
    start, _ = period_window(record.period, now)
    return await store.spent(record.id, start)


async def create(store: KeyStore, options: KeyOptions, now: float) -> tuple[KeyRecord, str]:
    """A new key; returns it with its secret (shown once, then only its hash remains)."""
    if not options.name:
        raise InvalidInput("a key needs a name")
    secret = new_secret()
    values = options.changes()
    values.setdefault("period", "total")
    check_period(values["period"])
    record = KeyRecord(
        id=new_key_id(),
        key_hash=hash_secret(secret),
        prefix=visible_prefix(secret),
        created=now,
        **{k: v for k, v in values.items() if k != "metadata"},
        metadata=options.metadata or {},
    )
    await store.create_key(record)
    return record, secret


async def update(store: KeyStore, ref: str, options: KeyOptions) -> KeyRecord:
    record = await find(store, ref)
    changes = options.changes()
    if "period" in changes:
        check_period(changes["period"])
    updated = await store.update_key(record.id, changes)
    if updated is None:
        raise KeyNotFound(f"no key with id or name {ref!r}")
    return updated


async def revoke(store: KeyStore, ref: str, now: float) -> KeyRecord:
    record = await find(store, ref)
    if record.revoked is not None:
        return record
    updated = await store.update_key(record.id, {"revoked": now})
    return updated or record


async def rotate(store: KeyStore, ref: str) -> tuple[KeyRecord, str]:
    """A new secret for the same key: same id, settings and spend; the old secret stops working."""
    record = await find(store, ref)
    secret = new_secret()
    changes = {"key_hash": hash_secret(secret), "prefix": visible_prefix(secret)}
    updated = await store.update_key(record.id, changes)
    if updated is None:
        raise KeyNotFound(f"no key with id or name {ref!r}")
    return updated, secret


async def delete(store: KeyStore, ref: str) -> KeyRecord:
    record = await find(store, ref)
    await store.delete_key(record.id)
    return record


def _number(label: str, text: str, cast: type[int] | type[float]) -> int | float | _Clear:
    if text.strip().lower() in ("none", "off", "unlimited"):
        return CLEAR
    try:
        value = cast(text)
    except ValueError:
        kind = "a whole number" if cast is int else "a number"
        raise InvalidInput(f"--{label} {text!r}: expected {kind}, or none") from None
    if value < 0 or (cast is int and value == 0):
        raise InvalidInput(f"--{label} {text!r}: expected a positive number, or none")
    return value


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_options(name: str | None, given: Mapping[str, str | None], now: float) -> KeyOptions:
    """Command-line text -> KeyOptions (`none` clears a limit; `never` an expiry)."""
    values: dict[str, Any] = {"name": name}
    for label, attr, cast in (
        ("rpm", "rpm", int),
        ("tpm", "tpm", int),
        ("max-parallel", "max_parallel", int),
        ("budget", "budget_usd", float),
    ):
        text = given.get(attr if attr != "budget_usd" else "budget")
        if text is not None:
            values[attr] = _number(label, text, cast)
    if given.get("period") is not None:
        values["period"] = check_period(str(given["period"]))
    for attr in ("models", "backends"):
        text = given.get(attr)
        if text is not None:
            values[attr] = _names(text)
    if given.get("expires") is not None:
        values["expires"] = parse_when(str(given["expires"]), now)
    if given.get("metadata") is not None:
        try:
            meta = json.loads(str(given["metadata"]))
        except ValueError:
            meta = None
        if not isinstance(meta, dict):
            raise InvalidInput('--metadata: expected a JSON object like {"team": "ml"}')
        values["metadata"] = meta
    return KeyOptions(**values)


def options_from_json(body: Any, now: float) -> KeyOptions:
    """An admin API body -> KeyOptions. Absent leaves a field as is; null clears it. LiteLLM's
    names are accepted where they map: key_alias, rpm_limit, tpm_limit, max_budget,
    budget_duration (1d, 7d, 30d), max_parallel_requests."""
    if not isinstance(body, dict):
        raise InvalidInput("expected a JSON object")
    aliases = {
        "key_alias": "name",
        "rpm_limit": "rpm",
        "tpm_limit": "tpm",
        "max_parallel_requests": "max_parallel",
        "max_budget": "budget_usd",
        "budget": "budget_usd",
        "budget_duration": "period",
    }
    given = {aliases.get(k, k): v for k, v in body.items()}
    values: dict[str, Any] = {}
    for attr, kind in (
        ("rpm", int),
        ("tpm", int),
        ("max_parallel", int),
        ("budget_usd", float),
    ):
        if attr in given:
            values[attr] = _json_number(attr, given[attr], kind)
    if given.get("name") is not None:
        values["name"] = str(given["name"])
    if given.get("period") is not None:
        period = str(given["period"])
        values["period"] = {"1d": "day", "7d": "week", "30d": "month", "1mo": "month"}.get(
            period, period
        )
        check_period(values["period"])
    for attr in ("models", "backends"):
        if attr in given:
            values[attr] = _json_names(attr, given[attr])
    if "expires" in given:
        expires = given["expires"]
        values["expires"] = (
            CLEAR if expires is None else expires if isinstance(expires, int | float)
            else parse_when(str(expires), now, "expires")
        )  # fmt: skip
    if given.get("metadata") is not None:
        if not isinstance(given["metadata"], dict):
            raise InvalidInput("metadata: expected a JSON object")
        values["metadata"] = given["metadata"]
    return KeyOptions(**values)


def _json_number(label: str, value: Any, kind: type[int] | type[float]) -> int | float | _Clear:
    if value is None:
        return CLEAR
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _number(label, str(value), kind)
    return _number(label, str(int(value) if kind is int else value), kind)


def _json_names(label: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return _names(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise InvalidInput(f"{label}: expected a list of names")


def options_to_json(options: KeyOptions) -> dict[str, Any]:
    """KeyOptions -> an admin API body (the inverse of `options_from_json`)."""
    out = options.changes()
    for attr in ("models", "backends"):
        if attr in out:
            out[attr] = list(out[attr])
    return out
