"""Which API a caller speaks, and its error bodies."""

from __future__ import annotations

import json

import pytest

from anyllm_cli.errors import ErrorKind
from anyllm_cli.server.formats import (
    ClientFormat,
    client_format,
    error_type,
    render_error,
    retry_after_header,
)

ANTHROPIC_HEADERS = [(b"anthropic-version", b"2023-06-01")]


@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        ("/v1/messages", [], ClientFormat.ANTHROPIC),
        ("/v1/messages/count_tokens", [], ClientFormat.ANTHROPIC),
        ("/ollama/v1/messages", [], ClientFormat.ANTHROPIC),
        ("/v1/chat/completions", ANTHROPIC_HEADERS, ClientFormat.OPENAI),
        ("/v1/embeddings", [], ClientFormat.OPENAI),
        ("/v1/models", [], ClientFormat.OPENAI),
        ("/v1/models", ANTHROPIC_HEADERS, ClientFormat.ANTHROPIC),
        ("/", [], ClientFormat.ANTHROPIC),
        ("/nope", [], ClientFormat.ANTHROPIC),
    ],
)
def test_client_format(
    path: str, headers: list[tuple[bytes, bytes]], expected: ClientFormat
) -> None:
    assert client_format(path, headers) is expected


def test_anthropic_error_rendering() -> None:
    status, headers, body = render_error(
        ClientFormat.ANTHROPIC, ErrorKind.RATE_LIMIT, "slow", retry_after=2.2
    )
    assert status == 429
    assert (b"retry-after", b"3") in headers
    assert json.loads(body) == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow"},
    }


def test_openai_error_rendering_maps_overload_to_503() -> None:
    status, _, body = render_error(ClientFormat.OPENAI, ErrorKind.OVERLOADED, "busy", param="x")
    assert status == 503
    assert json.loads(body)["error"]["param"] == "x"
    assert error_type(ClientFormat.OPENAI, ErrorKind.OVERLOADED) == "server_error"
    assert error_type(ClientFormat.ANTHROPIC, ErrorKind.OVERLOADED) == "overloaded_error"


def test_retry_after_is_whole_seconds() -> None:
    assert retry_after_header(None) == []
    assert retry_after_header(0) == [(b"retry-after", b"1")]
    assert retry_after_header(7) == [(b"retry-after", b"7")]


def test_gemini_paths_get_google_rpc_errors() -> None:
    assert client_format("/v1beta/models/m:generateContent", []) is ClientFormat.GEMINI
    assert client_format("/gem/v1beta/models/m:streamGenerateContent", []) is ClientFormat.GEMINI
    status, _, body = render_error(ClientFormat.GEMINI, ErrorKind.RATE_LIMIT, "slow down")
    assert status == 429
    assert json.loads(body)["error"] == {
        "code": 429,
        "message": "slow down",
        "status": "RESOURCE_EXHAUSTED",
    }
    assert error_type(ClientFormat.GEMINI, ErrorKind.OVERLOADED) == "UNAVAILABLE"
