"""Which API a caller speaks, and how an error looks to it.

Every response the proxy makes on its own (auth failures, limits, bad input, upstream errors, 404s,
crashes) is rendered here, in the caller's API: Anthropic's `{"type":"error",...}` for the Messages
paths, OpenAI's `{"error":{...}}` for Chat Completions and the other OpenAI paths, Google's
`{"error":{"code","message","status"}}` for the Gemini paths (`/v1beta/...`). Paths that both
kinds of client call (`/v1/models`, `/`) are told apart by headers: Anthropic clients always send
`anthropic-version`; OpenAI's SDK never does. What it gives up: a hand-rolled client that sends
neither a Messages path nor `anthropic-version` gets OpenAI-shaped errors.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from anyllm_cli.errors import ErrorKind, anthropic_error, gemini_error, openai_error
from anyllm_cli.models import codec

Headers = list[tuple[bytes, bytes]]


_GEMINI_ACTIONS = (":generateContent", ":streamGenerateContent", ":countTokens")


class ClientFormat(StrEnum):
    ANTHROPIC = "anthropic"
    OPENAI = "openai"
    GEMINI = "gemini"


def client_format(path: str, headers: Headers) -> ClientFormat:
    """Anthropic for `/v1/messages*` (also under `/NAME/`), Gemini for `/v1beta/*` and Gemini
    methods (`...:generateContent`), OpenAI for other `/v1/*` paths."""
    if "/v1beta/" in path or path.endswith(_GEMINI_ACTIONS):
        return ClientFormat.GEMINI
    marker = path.find("/v1/")
    if marker >= 0:
        rest = path[marker + 4 :]
        if rest.startswith("messages"):
            return ClientFormat.ANTHROPIC
        if not rest.startswith("models"):
            return ClientFormat.OPENAI
    for name, _ in headers:
        if name == b"anthropic-version":
            return ClientFormat.ANTHROPIC
    return ClientFormat.OPENAI if marker >= 0 else ClientFormat.ANTHROPIC


def format_of_api(api: str) -> ClientFormat:
    """The error format of a pipeline request's API (`ClientRequest.api`)."""
    if api in ("messages", "count_tokens"):
        return ClientFormat.ANTHROPIC
    if api in ("gemini", "gemini_count"):
        return ClientFormat.GEMINI
    return ClientFormat.OPENAI


def error_body(
    fmt: ClientFormat, kind: ErrorKind, message: str, *, param: str | None = None
) -> tuple[int, dict[str, Any]]:
    """The status and body a caller of this format expects for this kind of error."""
    if fmt is ClientFormat.ANTHROPIC:
        return anthropic_error(kind, message)
    if fmt is ClientFormat.GEMINI:
        return gemini_error(kind, message)
    return openai_error(kind, message, param)


def error_type(fmt: ClientFormat, kind: ErrorKind) -> str:
    """The `type` string of the rendered error (used as the metrics label)."""
    _, body = error_body(fmt, kind, "")
    error = body["error"]
    return str(error.get("type") or error.get("status"))


def dump_json(body: Any) -> bytes:
    return codec.dumps(body)


def json_headers(length: int, extra: Headers | None = None) -> Headers:
    headers: Headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(length).encode()),
    ]
    if extra:
        headers.extend(extra)
    return headers


def retry_after_header(seconds: float | None) -> Headers:
    """`retry-after` in whole seconds (rounded up, at least 1) when the upstream gave one."""
    if seconds is None or seconds < 0:
        return []
    whole = max(1, int(-(-seconds // 1)))
    return [(b"retry-after", str(whole).encode())]


def render_error(
    fmt: ClientFormat,
    kind: ErrorKind,
    message: str,
    *,
    param: str | None = None,
    retry_after: float | None = None,
    status: int | None = None,
) -> tuple[int, Headers, bytes]:
    """Status, headers and bytes of a complete error response. `status` replaces the kind's own
    (408 for a client's slow body is a timeout, but not the upstream's 504)."""
    own, body = error_body(fmt, kind, message, param=param)
    if status is None:
        status = own
    elif fmt is ClientFormat.GEMINI:
        body["error"]["code"] = status
    payload = dump_json(body)
    return status, json_headers(len(payload), retry_after_header(retry_after)), payload
