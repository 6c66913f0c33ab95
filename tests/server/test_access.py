"""The access line, the JSON log format, and the observer that writes both for pipeline calls."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from anyllm_cli.errors import ErrorKind
from anyllm_cli.pipeline import Candidate, ClientRequest, Outcome
from anyllm_cli.pipeline.seams import Usage
from anyllm_cli.server.access import AccessLog, JSONFormatter, access_fields, access_line
from anyllm_cli.server.metrics import Metrics


def _fields(**extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "method": "POST",
        "path": "/v1/messages",
        "status": 200,
        "request_id": "req_1",
        "latency_s": 0.812,
        "ttft_s": 0.0951,
        "model": "claude-x",
        "upstream_model": "gpt-y",
        "backend": "openai",
        "tokens_in": 12,
        "tokens_out": 40,
        "degradations": ["top_k_dropped"],
    }
    return access_fields(**{**values, **extra})


def test_text_line() -> None:
    assert access_line(_fields()) == (
        "POST /v1/messages 200 claude-x -> gpt-y backend=openai 812.0ms ttft=95.1ms "
        "in=12 out=40 id=req_1 degraded=top_k_dropped"
    )


def test_minimal_line_and_error() -> None:
    fields = access_fields(
        method="GET",
        path="/v1/models",
        status=401,
        request_id="r",
        latency_s=0.001,
        error_type="authentication_error",
        error="missing API key",
    )
    assert access_line(fields) == "GET /v1/models 401 1.0ms id=r error=authentication_error"


def test_json_records() -> None:
    record = logging.LogRecord("anyllm.access", logging.INFO, "", 0, "line", None, None)
    record.fields = _fields(latency_s=1)
    out = json.loads(JSONFormatter().format(record))
    assert out["level"] == "info"
    assert out["model"] == "claude-x"
    assert out["degradations"] == ["top_k_dropped"]
    plain = logging.LogRecord("anyllm.server", logging.WARNING, "", 0, "hello %s", ("x",), None)
    assert json.loads(JSONFormatter().format(plain))["message"] == "hello x"


@pytest.mark.anyio
async def test_the_observer_logs_and_meters_an_outcome(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "anyllm.access")
    metrics = Metrics()
    request = ClientRequest("chat", b"", request_id="req_9", route="/v1/chat/completions")
    outcome = Outcome(
        request=request,
        candidate=Candidate("mock", "gpt-x", "up-x"),
        status=429,
        usage=Usage(input_tokens=7, output_tokens=2),
        cost_usd=None,
        error=ErrorKind.RATE_LIMIT,
        error_message="slow down",
        duration_s=0.5,
    )
    await AccessLog(metrics).on_complete(outcome)
    assert "POST /v1/chat/completions 429 gpt-x -> up-x backend=mock" in caplog.text
    assert "error=rate_limit_error" in caplog.text
    rendered = metrics.render()
    assert 'route="/v1/chat/completions",status="429"' in rendered
    assert 'anyllm_tokens_total{backend="mock",model="gpt-x",direction="in"} 7' in rendered
