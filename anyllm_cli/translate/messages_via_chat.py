"""Anthropic Messages clients, OpenAI Chat Completions upstreams: requests out, responses back.

(Being written: the request and response translators join the shared pieces below.)
"""

from __future__ import annotations

import json
import re
from typing import Any

# OpenAI finish_reason -> Anthropic stop_reason
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def stop_reason(finish_reason: str | None, has_tool_calls: bool) -> str:
    """Tool calls win over any finish_reason (servers send "stop" with forced tool calls)."""
    if has_tool_calls and finish_reason != "length":
        return "tool_use"
    return _STOP_REASONS.get(finish_reason or "stop", "end_turn")


def usage(chat_usage: dict[str, Any] | None) -> dict[str, int]:
    """Anthropic usage from OpenAI usage: `input_tokens` excludes cached tokens, as Anthropic's does."""
    chat_usage = chat_usage or {}
    prompt = _int(chat_usage.get("prompt_tokens"))
    details = chat_usage.get("prompt_tokens_details") or {}
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    # DeepSeek reports its cache hits at the top level.
    cached = cached or _int(chat_usage.get("prompt_cache_hit_tokens"))
    cached = min(cached, prompt)
    return {
        "input_tokens": prompt - cached,
        "output_tokens": _int(chat_usage.get("completion_tokens")),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_arguments(text: str | None) -> tuple[dict[str, Any], bool]:
    """Tool-call arguments (a JSON string) as an object. Returns (input, degraded).

    Empty -> {}; a ```json fence is unwrapped; a non-object or invalid JSON is kept whole under
    `_raw` (never dropped) and flagged as degraded.
    """
    if text is None or not text.strip():
        return {}, False
    candidate = text
    match = _FENCE.match(text)
    if match:
        candidate = match.group(1)
    try:
        value = json.loads(candidate)
    except ValueError:
        return {"_raw": text}, True
    if isinstance(value, dict):
        return value, False
    return {"_raw": text}, True
