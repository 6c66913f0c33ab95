"""The recording format, and the readers that turn a file into `Exchange`s to replay.

One JSON object per line (a "cassette"); `v` marks it as ours:

| field              | what                                                                    |
| ------------------ | ----------------------------------------------------------------------- |
| v, id, time        | format version (1), the request id, when the call ended (UTC, ISO 8601) |
| api, method, path, | the client's API (messages, chat, gemini), its route and query          |
| query, headers     | headers as received, credentials redacted                               |
| body               | the client's body as JSON (null under `--record-bodies none`)           |
| backend, model,    | the backend and model chosen, the upstream model, streaming or not      |
| upstream_model,    |                                                                         |
| stream             |                                                                         |
| upstream_request   | the body as sent upstream (null unless the pipeline kept it)            |
| response           | the client's reply body, a stream as its accumulated final message      |
|                    | (only under `--record-bodies all`)                                      |
| events             | a stream's events as the client got them, when the pipeline kept them   |
|                    | (OpenAI and Gemini clients; Anthropic streams keep the message only)    |
| status, error,     | the status the client got; the error kind and message; whether the      |
| error_message,     | client left before the end                                              |
| disconnected       |                                                                         |
| usage, cost_usd    | token counts (input, output, cache read/write, reasoning); USD or null  |
| ttft_s, duration_s | time to first byte (streams), total time                                |
| degradations       | what translation lost, by code                                          |

Readers (`read`): a recorded JSONL file (or a directory of them, read in name order: rotation keeps
the order); a plain JSONL file of request bodies (the API told from each body, or `api` given); a
HAR file (browsers, mitmproxy) keeping only LLM API calls (`/v1/messages`, `/chat/completions`,
`/models/M:generateContent|streamGenerateContent`), a streamed response folded into its message.
Lines without a replayable body (not recorded, or count_tokens and passthrough calls) are
counted in `Skipped`, not fatal.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from anyllm_cli.errors import InvalidInput
from anyllm_cli.models import codec
from anyllm_cli.pipeline.seams import ClientRequest
from anyllm_cli.replay.fold import fold
from anyllm_cli.replay.redact import Redactor
from anyllm_cli.translate.detect import request_api
from anyllm_cli.translate.streams.sse import SSEDecoder

VERSION = 1
APIS = ("messages", "chat", "gemini")
_GEMINI_PATH = re.compile(r"/models/([^/:]+):(generateContent|streamGenerateContent)$")
_DETECTED = {"anthropic": "messages", "openai": "chat", "gemini": "gemini"}


@dataclass(frozen=True, slots=True)
class Exchange:
    """One recorded (or imported) call: the client's request and, when known, what it got."""

    api: str
    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)
    model: str = ""
    stream: bool = False
    backend: str | None = None
    id: str = ""
    line: int = 0
    status: int | None = None
    response: dict[str, Any] | None = None
    error: str | None = None
    usage: Mapping[str, int] = field(default_factory=dict)
    cost_usd: float | None = None
    duration_s: float | None = None
    ttft_s: float | None = None

    def path(self) -> str:
        """The route this request takes on a proxy (no /NAME/ prefix)."""
        if self.api == "messages":
            return "/v1/messages"
        if self.api == "chat":
            return "/v1/chat/completions"
        action = "streamGenerateContent?alt=sse" if self.stream else "generateContent"
        return f"/v1beta/models/{self.model}:{action}"

    def with_model(self, model: str | None) -> Exchange:
        if not model:
            return self
        from dataclasses import replace

        body = self.body if self.api == "gemini" else {**self.body, "model": model}
        return replace(self, body=body, model=model)

    def to_request(self, backend: str | None = None, request_id: str = "") -> ClientRequest:
        return ClientRequest(
            api=self.api,  # type: ignore[arg-type]
            body=codec.dumps(self.body),
            headers=dict(self.headers),
            backend=backend if backend is not None else self.backend,
            model=self.model if self.api == "gemini" else None,
            stream=self.stream if self.api == "gemini" else None,
            request_id=request_id or self.id,
            route=self.path().split("?")[0],
        )


@dataclass(slots=True)
class Skipped:
    """Lines a reader could not replay, by reason (a body not recorded, not an LLM call, ...)."""

    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str) -> None:
        self.reasons[reason] = self.reasons.get(reason, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.reasons.values())


def read(path: Path, skipped: Skipped, *, api: str | None = None) -> Iterator[Exchange]:
    """Exchanges from a recording (file or directory), a JSONL of bodies, or a HAR file."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".jsonl")
        if not files:
            raise InvalidInput(f"{path}: no .jsonl recordings in this directory")
        for file in files:
            yield from _jsonl(file, skipped, api)
        return
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file or directory")
    with path.open("rb") as f:
        first = f.readline()
    try:
        json.loads(first) if first.strip() else None
        one_line = bool(first.strip())
    except json.JSONDecodeError:
        one_line = False
    if path.suffix == ".har" or not one_line:
        yield from read_har(_load(path), skipped)
        return
    yield from _jsonl(path, skipped, api)


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: neither JSON Lines nor a HAR file ({exc})") from None


def _jsonl(path: Path, skipped: Skipped, api: str | None) -> Iterator[Exchange]:
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                doc = codec.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise InvalidInput(f"{path}: invalid JSON ({exc})", f"line {number}") from None
            if not isinstance(doc, dict):
                raise InvalidInput(f"{path}: expected a JSON object", f"line {number}")
            exchange = (
                from_record(doc, number) if "v" in doc else _from_body(doc, number, api, path)
            )
            if isinstance(exchange, str):
                skipped.add(exchange)
            else:
                yield exchange


def from_record(doc: Mapping[str, Any], line: int = 0) -> Exchange | str:
    """A cassette line as an Exchange, or why it cannot be replayed."""
    body = doc.get("body")
    api = doc.get("api")
    if api not in APIS:  # count_tokens, passthroughs: recorded, not replayed
        return f"api {api} not replayed"
    if not isinstance(body, dict) or set(body) == {"_text"}:
        return "body not recorded"
    response = doc.get("response")
    usage = doc.get("usage")
    return Exchange(
        api=api,
        body=body,
        headers=dict(doc.get("headers") or {}),
        model=str(doc.get("model") or body.get("model") or ""),
        stream=bool(doc.get("stream", body.get("stream", False))),
        backend=doc.get("backend") or None,
        id=str(doc.get("id") or ""),
        line=line,
        status=doc.get("status"),
        response=response if isinstance(response, dict) else None,
        error=doc.get("error"),
        usage=dict(usage) if isinstance(usage, dict) else {},
        cost_usd=doc.get("cost_usd"),
        duration_s=doc.get("duration_s"),
        ttft_s=doc.get("ttft_s"),
    )


def _from_body(doc: dict[str, Any], line: int, api: str | None, path: Path) -> Exchange:
    if api is None:
        try:
            api = _DETECTED.get(request_api(doc), "")
        except InvalidInput as exc:
            raise InvalidInput(f"{path}: {exc.problem}; pass --api", f"line {line}") from None
    if api not in APIS:
        raise InvalidInput(f"{path}: not a request of a supported API; pass --api", f"line {line}")
    model = str(doc.get("model") or "")
    if api == "gemini" and not model:
        raise InvalidInput(f"{path}: a Gemini body names no model; pass --model", f"line {line}")
    return Exchange(
        api=api, body=doc, model=model, stream=bool(doc.get("stream")), id=f"line-{line}", line=line
    )


# -- HAR ---------------------------------------------------------------------------------------------


def read_har(doc: Any, skipped: Skipped) -> Iterator[Exchange]:
    """The LLM API calls of a HAR document (`log.entries`), credentials redacted."""
    entries = doc.get("log", {}).get("entries") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise InvalidInput("not a HAR file: no log.entries")
    redactor = Redactor()
    for number, entry in enumerate(entries, 1):
        exchange = _har_entry(entry, number, redactor)
        if isinstance(exchange, str):
            skipped.add(exchange)
        else:
            yield exchange


def _har_entry(entry: Any, number: int, redactor: Redactor) -> Exchange | str:
    request = entry.get("request") if isinstance(entry, dict) else None
    if not isinstance(request, dict) or request.get("method") != "POST":
        return "not an LLM API call"
    path = urlsplit(str(request.get("url", ""))).path
    gemini = _GEMINI_PATH.search(path)
    if gemini:
        api, model, stream = "gemini", gemini.group(1), gemini.group(2).startswith("stream")
    elif path.endswith("/messages"):
        api, model, stream = "messages", "", False
    elif path.endswith("/chat/completions"):
        api, model, stream = "chat", "", False
    else:
        return "not an LLM API call"
    try:
        body = json.loads((request.get("postData") or {}).get("text") or "")
    except json.JSONDecodeError:
        return "request body is not JSON"
    if not isinstance(body, dict):
        return "request body is not JSON"
    if api != "gemini":
        model, stream = str(body.get("model") or ""), bool(body.get("stream"))
    headers = {
        str(h.get("name", "")): str(h.get("value", ""))
        for h in request.get("headers") or []
        if isinstance(h, dict) and not str(h.get("name", "")).startswith(":")
    }
    response = entry.get("response") or {}
    reply, error = _har_response(api, response.get("content") or {})
    status = response.get("status")
    time_ms = entry.get("time")
    return Exchange(
        api=api,
        body=json.loads(redactor.text(json.dumps(body))),
        headers=redactor.headers(headers),
        model=model,
        stream=stream,
        id=f"har-{number}",
        line=number,
        status=status if isinstance(status, int) and status > 0 else None,
        response=reply,
        error=error,
        duration_s=time_ms / 1000 if isinstance(time_ms, int | float) and time_ms >= 0 else None,
    )


def _har_response(api: str, content: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    text = content.get("text")
    if not isinstance(text, str) or not text:
        return None, None
    if content.get("encoding") == "base64":
        text = base64.b64decode(text).decode("utf-8", "replace")
    if "event-stream" in str(content.get("mimeType", "")) or text.lstrip().startswith(
        ("event:", "data:")
    ):
        decoder = SSEDecoder()
        events = [*decoder.decode(text), *decoder.flush()]
        parsed = [json.loads(e.data) for e in events if e.data and e.data != "[DONE]"]
        folded = fold(api, [p for p in parsed if isinstance(p, dict)])
        return folded.response, "stream_error" if folded.error is not None else None
    try:
        reply = json.loads(text)
    except json.JSONDecodeError:
        return None, None
    if isinstance(reply, dict) and "error" in reply and api != "messages":
        return None, "error"
    if isinstance(reply, dict) and reply.get("type") == "error":
        return None, "error"
    return (reply, None) if isinstance(reply, dict) else (None, None)
