"""Response headers derived from the upstream's, and the one list of headers never recorded.

OpenAI-compatible upstreams report rate limits as `x-ratelimit-{limit,remaining,reset}-{requests,
tokens}` with resets as durations (`6m0s`, `20ms`); Anthropic clients read
`anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}` with resets as RFC 3339 times. The
mapping is direct; a reset that does not parse as a duration is left out rather than guessed.
OpenAI clients get the upstream's own `x-ratelimit-*` headers unchanged. `retry-after` passes as is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from anyllm_cli.translate.degradation import Degradation

SECRET_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "proxy-authorization"})
REDACTED = "[redacted]"

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def redact(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers safe to record: credentials replaced by a marker."""
    return {k: (REDACTED if k.lower() in SECRET_HEADERS else v) for k, v in headers}


def parse_duration(text: str) -> float | None:
    """OpenAI's reset durations (`1s`, `6m0s`, `20ms`, `1h2m3.5s`) or plain seconds, in seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    total, pos = 0.0, 0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    return total if pos == len(text) and pos > 0 else None


def anthropic_ratelimit(upstream: Mapping[str, str], now: datetime) -> list[tuple[str, str]]:
    """`anthropic-ratelimit-*` headers from an upstream's `x-ratelimit-*` headers."""
    out: list[tuple[str, str]] = []
    lowered = {k.lower(): v for k, v in upstream.items()} if upstream else {}
    for bucket in ("requests", "tokens"):
        for field in ("limit", "remaining"):
            value = lowered.get(f"x-ratelimit-{field}-{bucket}")
            if value is not None and value.strip().isdigit():
                out.append((f"anthropic-ratelimit-{bucket}-{field}", value.strip()))
        reset = lowered.get(f"x-ratelimit-reset-{bucket}")
        seconds = parse_duration(reset) if reset is not None else None
        if seconds is not None:
            at = (now + timedelta(seconds=seconds)).astimezone(UTC).replace(microsecond=0)
            out.append(
                (f"anthropic-ratelimit-{bucket}-reset", at.isoformat().replace("+00:00", "Z"))
            )
    return out


def openai_ratelimit(upstream: Mapping[str, str]) -> list[tuple[str, str]]:
    """The upstream's own `x-ratelimit-*` headers, for OpenAI clients."""
    if not upstream:
        return []
    return [(k.lower(), v) for k, v in upstream.items() if k.lower().startswith("x-ratelimit-")]


def upstream_retry_after(upstream: Mapping[str, str]) -> list[tuple[str, str]]:
    for key, value in (upstream or {}).items():
        if key.lower() == "retry-after":
            return [("retry-after", value)]
    return []


def degradation_header(degradations: Iterable[Degradation]) -> str:
    """`x-anyllm-degradation`: the distinct codes, in order of first appearance."""
    return ", ".join(dict.fromkeys(d.code for d in degradations))
