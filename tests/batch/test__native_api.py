"""The providers' batch result lines, read as one `ItemResult` each."""

from __future__ import annotations

from anyllm_cli.batch._native_api import _anthropic_result, _openai_result, _rfc3339
from anyllm_cli.batch.job import ItemResult
from anyllm_cli.errors import ErrorKind

MESSAGE = {"type": "message", "content": [], "usage": {"input_tokens": 1, "output_tokens": 2}}


def test_anthropic_results() -> None:
    assert _anthropic_result({"type": "succeeded", "message": MESSAGE}) == ItemResult(
        "succeeded", 200, body=MESSAGE
    )
    assert _anthropic_result({"type": "canceled"}) == ItemResult("canceled")
    assert _anthropic_result({"type": "expired"}) == ItemResult("expired")
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    got = _anthropic_result({"type": "errored", "error": error})
    assert (got.type, got.status, got.error_kind, got.message) == (
        "errored",
        529,
        ErrorKind.OVERLOADED,
        "busy",
    )
    assert _anthropic_result(None).type == "errored"


def test_openai_results() -> None:
    body = {"id": "chatcmpl-1", "choices": []}
    ok = {"custom_id": "a", "response": {"status_code": 200, "body": body}, "error": None}
    assert _openai_result(ok) == ItemResult("succeeded", 200, body=body)
    refused = {"error": {"message": "bad", "type": "invalid_request_error"}}
    got = _openai_result({"response": {"status_code": 400, "body": refused}, "error": None})
    assert (got.type, got.status, got.error_kind, got.message) == (
        "errored",
        400,
        ErrorKind.INVALID_REQUEST,
        "bad",
    )
    cancelled = {"response": None, "error": {"code": "batch_cancelled", "message": "x"}}
    assert _openai_result(cancelled) == ItemResult("canceled")
    assert _openai_result({"error": {"code": "batch_expired"}}) == ItemResult("expired")
    assert _openai_result({"error": {"code": "other", "message": "m"}}).message == "m"


def test_rfc3339() -> None:
    assert _rfc3339("2024-08-20T18:37:24.100435Z") == 1724179044.100435
    assert _rfc3339(None) == 0.0 and _rfc3339("yesterday") == 0.0
