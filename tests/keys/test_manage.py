"""Key management: parsing options, periods and their reset, JSON bodies (LiteLLM names too)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from anyllm_cli.errors import InvalidInput
from anyllm_cli.keys.manage import (
    CLEAR,
    KeyOptions,
    options_from_json,
    options_to_json,
    parse_options,
    parse_since,
    parse_when,
    period_window,
)

# Wednesday 2026-12-09 15:30 UTC
NOW = datetime(2026, 12, 9, 15, 30, tzinfo=UTC).timestamp()


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("period", "start", "reset"),
    [
        ("day", "2026-12-09", "2026-12-10"),
        ("week", "2026-12-07", "2026-12-14"),
        ("month", "2026-12-01", "2027-01-01"),
    ],
)
def test_periods_start_and_reset_on_utc_days(period: str, start: str, reset: str) -> None:
    assert period_window(period, NOW) == (start, _ts(reset))


def test_total_never_resets() -> None:
    assert period_window("total", NOW) == (None, None)


def test_when_and_since() -> None:
    assert parse_when("30d", NOW) == NOW + 30 * 86400
    assert parse_when("2027-01-31", NOW) == _ts("2027-01-31")
    assert parse_when("never", NOW) is CLEAR
    assert parse_since("7d", NOW) == "2026-12-02"
    assert parse_since("2026-11-30", NOW) == "2026-11-30"
    assert parse_since(None, NOW) is None
    with pytest.raises(InvalidInput, match="expected 30d"):
        parse_when("soon", NOW)


def test_command_line_options() -> None:
    got = parse_options(
        "ci",
        {"rpm": "10", "tpm": "none", "budget": "2.5", "models": "a*, b", "expires": "1h"},
        NOW,
    )
    assert got == KeyOptions(
        name="ci", rpm=10, tpm=CLEAR, budget_usd=2.5, models=("a*", "b"), expires=NOW + 3600
    )
    assert got.changes()["tpm"] is None and "period" not in got.changes()


def test_json_bodies_accept_litellm_names_and_null_clears() -> None:
    got = options_from_json(
        {"key_alias": "bot", "rpm_limit": 3, "max_budget": 10, "budget_duration": "30d",
         "models": ["gpt-*"], "tpm": None},
        NOW,
    )  # fmt: skip
    assert got == KeyOptions(
        name="bot", rpm=3, budget_usd=10.0, period="month", models=("gpt-*",), tpm=CLEAR
    )
    assert options_to_json(got)["tpm"] is None
    assert options_from_json(options_to_json(got), NOW) == got


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "expected a JSON object"),
        ({"rpm": "x"}, "expected a whole number"),
        ({"models": [1]}, "expected a list of names"),
        ({"period": "year"}, "expected one of"),
        ({"metadata": "x"}, "metadata: expected a JSON object"),
    ],
)
def test_bad_json_bodies(body: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        options_from_json(body, NOW)
