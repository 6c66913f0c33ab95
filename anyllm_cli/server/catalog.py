"""`GET /v1/models`: the ids clients' model pickers accept, in each API's list shape.

Current Claude ids come first (clients such as Claude Code validate the names they offer against
them; the proxy maps them to upstream models), then every model the configuration names: big and
small models and the left-hand side of each model map, per backend. Anthropic clients get a page
(`data`, `has_more`, `first_id`, `last_id`, with `limit`/`after_id`/`before_id`); OpenAI clients get
`{"object": "list", "data": [...]}`. What it gives up: upstream model lists are not fetched (no
network on a listing); `created_at` is the snapshot date in the id where there is one, else a fixed
date, since the real release dates are not the proxy's business.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from anyllm_cli.config import BackendSettings

# Newest first, as Anthropic lists them; only ids Anthropic has published (never guessed ones).
CLAUDE_MODELS: tuple[tuple[str, str], ...] = (
    ("claude-opus-4-8", "Claude Opus 4.8"),
    ("claude-opus-4-7", "Claude Opus 4.7"),
    ("claude-opus-4-6", "Claude Opus 4.6"),
    ("claude-sonnet-4-6", "Claude Sonnet 4.6"),
    ("claude-opus-4-5-20251101", "Claude Opus 4.5"),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5"),
    ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5"),
)
_FALLBACK_DATE = datetime(2025, 1, 1, tzinfo=UTC)
_SNAPSHOT = re.compile(r"-(\d{8})$")


def model_ids(backends: Iterable[BackendSettings]) -> list[str]:
    """Claude ids, then configured names; each once."""
    ids = [model_id for model_id, _ in CLAUDE_MODELS]
    for backend in backends:
        ids += [m for m in (backend.big_model, backend.small_model) if m]
        ids += list(backend.model_map)
    return list(dict.fromkeys(ids))


def _created(model_id: str) -> datetime:
    match = _SNAPSHOT.search(model_id)
    if match:
        try:
            return datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=UTC)
        except ValueError:
            pass
    return _FALLBACK_DATE


_NAMES = dict(CLAUDE_MODELS)


def anthropic_model(model_id: str) -> dict[str, Any]:
    return {
        "type": "model",
        "id": model_id,
        "display_name": _NAMES.get(model_id, model_id),
        "created_at": _created(model_id).isoformat().replace("+00:00", "Z"),
    }


def anthropic_page(ids: list[str], query: Mapping[str, str]) -> dict[str, Any]:
    """One page of Anthropic's cursor pagination over `ids`."""
    try:
        limit = min(1000, max(1, int(query.get("limit", "20"))))
    except ValueError:
        limit = 20
    start, end = 0, len(ids)
    if query.get("after_id") in ids:
        start = ids.index(query["after_id"]) + 1
    if query.get("before_id") in ids:
        end = ids.index(query["before_id"])
        start = max(start, end - limit) if "after_id" not in query else start
    page = ids[start:end][:limit]
    return {
        "data": [anthropic_model(m) for m in page],
        "has_more": start + len(page) < end,
        "first_id": page[0] if page else None,
        "last_id": page[-1] if page else None,
    }


def openai_model(model_id: str) -> dict[str, Any]:
    return {
        "id": model_id,
        "object": "model",
        "created": int(_created(model_id).timestamp()),
        "owned_by": "anthropic" if model_id in _NAMES else "anyllm",
    }


def openai_list(ids: list[str]) -> dict[str, Any]:
    return {"object": "list", "data": [openai_model(m) for m in ids]}
