"""Upstream headers turned into the client's, and redaction."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from anyllm_cli.server.headers import (
    anthropic_ratelimit,
    degradation_header,
    openai_ratelimit,
    parse_duration,
    redact,
    upstream_retry_after,
)
from anyllm_cli.translate.degradation import Degradation

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("12", 12.0),
        ("soon", None),
        ("", None),
        ("1s2", None),
    ],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


def test_anthropic_ratelimit_headers() -> None:
    upstream = {
        "X-RateLimit-Limit-Requests": "60",
        "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "many",
        "x-ratelimit-reset-tokens": "whenever",
    }
    assert anthropic_ratelimit(upstream, NOW) == [
        ("anthropic-ratelimit-requests-limit", "60"),
        ("anthropic-ratelimit-requests-remaining", "59"),
        ("anthropic-ratelimit-requests-reset", "2026-01-02T03:04:06Z"),
        ("anthropic-ratelimit-tokens-limit", "1000"),
    ]
    assert anthropic_ratelimit({}, NOW) == []


def test_openai_clients_get_the_upstream_headers() -> None:
    upstream = {"x-ratelimit-limit-requests": "60", "content-type": "x", "Retry-After": "3"}
    assert openai_ratelimit(upstream) == [("x-ratelimit-limit-requests", "60")]
    assert upstream_retry_after(upstream) == [("retry-after", "3")]


def test_redact_and_degradations() -> None:
    headers = [
        ("Authorization", "Bearer s"),
        ("x-api-key", "k"),
        ("x-goog-api-key", "g"),
        ("a", "b"),
    ]
    assert redact(headers) == {
        "Authorization": "[redacted]",
        "x-api-key": "[redacted]",
        "x-goog-api-key": "[redacted]",
        "a": "b",
    }
    found = [Degradation("b", ""), Degradation("a", ""), Degradation("b", "again")]
    assert degradation_header(found) == "b, a"
