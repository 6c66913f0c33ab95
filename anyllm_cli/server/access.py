"""Logging for the server: one access line per request, as text or as one JSON object per line.

The access record holds method, path (never the query string), status, requested -> upstream model,
backend, latency, time to first byte, tokens in/out, the request id and, for errors, the error type.
No header and no body is ever part of it, so no credential can reach a log; `redact()` in
`headers.py` is for anything that must record headers. `configure_logging()` is called once by the
runner (not at import): the `anyllm` loggers get one handler on stderr in the chosen format.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from anyllm_cli.server.context import RequestContext


def access_fields(
    *, method: str, path: str, status: int, ctx: RequestContext, latency_s: float
) -> dict[str, Any]:
    call = ctx.call
    fields: dict[str, Any] = {
        "method": method,
        "path": path,
        "status": status,
        "model": call.requested_model or None,
        "upstream_model": call.upstream_model or None,
        "backend": call.backend or None,
        "latency_ms": round(latency_s * 1000, 1),
        "ttft_ms": None if ctx.ttft_s is None else round(ctx.ttft_s * 1000, 1),
        "tokens_in": call.tokens_in,
        "tokens_out": call.tokens_out,
        "request_id": ctx.request_id,
    }
    if ctx.error_type:
        fields["error_type"] = ctx.error_type
        fields["error"] = ctx.error_message
    if call.degradations:
        fields["degradations"] = sorted({d.code for d in call.degradations})
    return fields


def access_line(fields: dict[str, Any]) -> str:
    """`POST /v1/messages 200 claude-x -> gpt-y backend=openai 812.0ms ttft=95.1ms in=12 out=40`."""
    parts = [fields["method"], fields["path"], str(fields["status"])]
    if fields["model"]:
        parts.append(f"{fields['model']} -> {fields['upstream_model']}")
    if fields["backend"]:
        parts.append(f"backend={fields['backend']}")
    parts.append(f"{fields['latency_ms']}ms")
    if fields["ttft_ms"] is not None:
        parts.append(f"ttft={fields['ttft_ms']}ms")
    if fields["tokens_in"] or fields["tokens_out"]:
        parts.append(f"in={fields['tokens_in']} out={fields['tokens_out']}")
    parts.append(f"id={fields['request_id']}")
    if fields.get("error_type"):
        parts.append(f"error={fields['error_type']}")
    if fields.get("degradations"):
        parts.append("degraded=" + ",".join(fields["degradations"]))
    return " ".join(parts)


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        else:
            out["message"] = record.getMessage()
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(level: str, fmt: str) -> None:
    """One stderr handler for anyllm's loggers (and Hypercorn's errors) in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    for name in ("anyllm", "hypercorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
        logger.setLevel(level.upper())
    # Hypercorn's own "Running on ..." banner would repeat ours.
    logging.getLogger("hypercorn.error").setLevel(
        max(logging.WARNING, logging.getLevelName(level.upper()))
    )
