from __future__ import annotations

from typing import Any

import pytest

from anyllm_cli.errors import (
    ANTHROPIC_ERRORS,
    ErrorKind,
    anthropic_error,
    gemini_error,
    kind_from_status,
    openai_error,
    parse_error_body,
)


@pytest.mark.parametrize(
    ("status", "etype"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_status_round_trips_through_the_anthropic_table(status: int, etype: str) -> None:
    kind = kind_from_status(status)
    assert anthropic_error(kind, "m") == (
        status,
        {"type": "error", "error": {"type": etype, "message": "m"}},
    )


def test_every_kind_renders_in_both_formats() -> None:
    for kind in ErrorKind:
        assert kind in ANTHROPIC_ERRORS
        status, body = openai_error(kind, "boom")
        assert status != 529 and body["error"]["message"] == "boom"


def test_overloaded_becomes_503_for_openai_clients() -> None:
    assert openai_error(ErrorKind.OVERLOADED, "x")[0] == 503
    assert kind_from_status(529) is ErrorKind.OVERLOADED


@pytest.mark.parametrize(
    ("status", "etype", "anthropic", "openai", "gemini"),
    [
        (404, "invalid_request_error", (404, "not_found_error"), 404, 404),  # OpenAI's 404 body
        (503, "server_error", (503, "overloaded_error"), 503, 503),
        (502, None, (502, "api_error"), 502, 502),
        (529, "overloaded_error", (529, "overloaded_error"), 503, 503),
        (429, "rate_limit_error", (429, "rate_limit_error"), 429, 429),
        (429, "insufficient_quota", (402, "billing_error"), 402, 403),  # the type names billing
        (409, "invalid_request_error", (400, "invalid_request_error"), 400, 400),
    ],
)
def test_the_upstream_status_is_kept_and_the_body_type_only_refines_it(
    status: int,
    etype: str | None,
    anthropic: tuple[int, str],
    openai: int,
    gemini: int,
) -> None:
    body = {"error": {"message": "m", "type": etype}} if etype else "<html>gateway</html>"
    kind, _ = parse_error_body(body, status)
    code, rendered = anthropic_error(kind, "m")
    assert (code, rendered["error"]["type"]) == anthropic
    assert openai_error(kind, "m")[0] == openai
    assert gemini_error(kind, "m")[0] == gemini


@pytest.mark.parametrize(
    ("body", "status", "kind", "message"),
    [
        (
            {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}},
            429,
            ErrorKind.RATE_LIMIT,
            "slow",
        ),
        (
            {
                "error": {
                    "message": "bad key",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
            401,
            ErrorKind.AUTHENTICATION,
            "bad key",
        ),
        (
            {"error": {"message": "busy", "type": "server_error"}},
            503,
            ErrorKind.UNAVAILABLE,
            "busy",
        ),
        (
            [{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}],
            429,
            ErrorKind.RATE_LIMIT,
            "quota",
        ),
        ("<html>bad gateway</html>", 502, ErrorKind.BAD_GATEWAY, "<html>bad gateway</html>"),
        ({"detail": "x"}, 418, ErrorKind.INVALID_REQUEST, "{'detail': 'x'}"),
    ],
)
def test_parse_error_body(body: object, status: int, kind: ErrorKind, message: str) -> None:
    assert parse_error_body(body, status) == (kind, message)


def test_unknown_statuses() -> None:
    assert kind_from_status(418) is ErrorKind.INVALID_REQUEST
    assert kind_from_status(599) is ErrorKind.API_ERROR


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        (
            {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}},
            429,
            ErrorKind.RATE_LIMIT,
        ),
        (
            [{"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}],
            503,
            ErrorKind.UNAVAILABLE,
        ),
        (
            {"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}},
            400,
            ErrorKind.INVALID_REQUEST,
        ),
    ],
)
def test_gemini_error_bodies_are_classified(body: Any, status: int, kind: ErrorKind) -> None:
    assert parse_error_body(body, status)[0] is kind


def test_gemini_clients_get_google_rpc_errors() -> None:
    status, body = gemini_error(ErrorKind.OVERLOADED, "try later")
    assert (status, body["error"]["status"], body["error"]["code"]) == (503, "UNAVAILABLE", 503)
    assert gemini_error(ErrorKind.RATE_LIMIT, "x")[0] == 429
