"""The access line and the JSON log format."""

from __future__ import annotations

import json
import logging

from anyllm_cli.pipeline import Call
from anyllm_cli.server.access import JSONFormatter, access_fields, access_line
from anyllm_cli.server.context import RequestContext
from anyllm_cli.server.formats import ClientFormat
from anyllm_cli.translate.degradation import Degradation


def _ctx() -> RequestContext:
    call = Call(
        backend="openai",
        requested_model="claude-x",
        upstream_model="gpt-y",
        tokens_in=12,
        tokens_out=40,
        degradations=[Degradation("top_k_dropped", "")],
    )
    return RequestContext(
        request_id="req_1", fmt=ClientFormat.ANTHROPIC, start=0.0, call=call, ttft_s=0.0951
    )


def test_text_line() -> None:
    fields = access_fields(
        method="POST", path="/v1/messages", status=200, ctx=_ctx(), latency_s=0.812
    )
    assert access_line(fields) == (
        "POST /v1/messages 200 claude-x -> gpt-y backend=openai 812.0ms ttft=95.1ms "
        "in=12 out=40 id=req_1 degraded=top_k_dropped"
    )


def test_minimal_line_and_error() -> None:
    ctx = RequestContext(request_id="r", fmt=ClientFormat.OPENAI, start=0.0)
    ctx.error_type = "authentication_error"
    fields = access_fields(method="GET", path="/v1/models", status=401, ctx=ctx, latency_s=0.001)
    assert access_line(fields) == "GET /v1/models 401 1.0ms id=r error=authentication_error"


def test_json_records() -> None:
    fields = access_fields(method="POST", path="/v1/messages", status=200, ctx=_ctx(), latency_s=1)
    record = logging.LogRecord("anyllm.access", logging.INFO, "", 0, "line", None, None)
    record.fields = fields
    out = json.loads(JSONFormatter().format(record))
    assert out["level"] == "info"
    assert out["model"] == "claude-x"
    assert out["degradations"] == ["top_k_dropped"]
    plain = logging.LogRecord("anyllm.server", logging.WARNING, "", 0, "hello %s", ("x",), None)
    assert json.loads(JSONFormatter().format(plain))["message"] == "hello x"
