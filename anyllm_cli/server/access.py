"""Logging for the server: one access line per request, as text or as one JSON object per line.

`AccessLog` is the pipeline observer that writes the line and the metrics for every call the
pipeline saw (at its completion point, after a stream's last byte); the middleware writes them for
requests that never reached the pipeline (auth, limits, listings, 404s).

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
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from anyllm_cli.pipeline import Outcome
from anyllm_cli.server.formats import error_type, format_of_api
from anyllm_cli.server.metrics import Metrics

access_log = logging.getLogger("anyllm.access")


def access_fields(
    *,
    method: str,
    path: str,
    status: int,
    request_id: str,
    latency_s: float,
    ttft_s: float | None = None,
    model: str = "",
    upstream_model: str = "",
    backend: str = "",
    tokens_in: int = 0,
    tokens_out: int = 0,
    error_type: str | None = None,
    error: str | None = None,
    degradations: Iterable[str] = (),
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "method": method,
        "path": path,
        "status": status,
        "model": model or None,
        "upstream_model": upstream_model or None,
        "backend": backend or None,
        "latency_ms": round(latency_s * 1000, 1),
        "ttft_ms": None if ttft_s is None else round(ttft_s * 1000, 1),
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "request_id": request_id,
    }
    if error_type:
        fields["error_type"] = error_type
        fields["error"] = error
    codes = sorted(set(degradations))
    if codes:
        fields["degradations"] = codes
    return fields


def log_access(fields: dict[str, Any]) -> None:
    access_log.info(access_line(fields), extra={"fields": fields})


class AccessLog:
    """The pipeline observer that writes the access line and the metrics of every call it saw."""

    wants_bodies = False

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def on_complete(self, outcome: Outcome) -> None:
        request = outcome.request
        candidate = outcome.candidate
        etype = None
        if outcome.error is not None:
            etype = error_type(format_of_api(request.api), outcome.error)
        backend = candidate.backend if candidate else ""
        model = candidate.requested_model if candidate else ""
        usage = outcome.usage
        path = "/v1" + request.path if request.api == "forward" else request.route
        log_access(
            access_fields(
                method=request.method,
                path=path,
                status=outcome.status,
                request_id=request.request_id,
                latency_s=outcome.duration_s,
                ttft_s=outcome.ttft_s,
                model=model,
                upstream_model=candidate.upstream_model if candidate else "",
                backend=backend,
                tokens_in=usage.input_tokens,
                tokens_out=usage.output_tokens,
                error_type=etype,
                error=outcome.error_message,
                degradations=outcome.degradations,
            )
        )
        self.metrics.observe(
            backend=backend or "-",
            model=model or "-",
            route=request.route or "other",
            status=outcome.status,
            error_type=etype,
            latency_s=outcome.duration_s,
            ttft_s=outcome.ttft_s,
            tokens_in=usage.input_tokens,
            tokens_out=usage.output_tokens,
        )


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
