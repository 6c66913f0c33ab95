"""The exception tree and the one error table, both directions.

    AnyllmError
     ├── InvalidInput        the caller's body is malformed; carries a JSON path ("messages[3].content[0]")
     ├── LossyTranslation    a translation had to drop or degrade something and the caller forbade it
     ├── ConfigError         settings cannot be loaded; names the file, key and fix
     ├── NotFound            no such backend, route or model for this proxy
     ├── StoreError          the store cannot be opened or used (newer schema, bad URL, engine down)
     ├── KeyNotFound         no virtual key with that id or name (managing keys, not calling with one)
     ├── Refused             a guard said no: unknown key 401, not allowed 403, limit or budget 429
     └── UpstreamError       the upstream answered with an error, or could not be reached

Every error has a kind (an `ErrorKind`). One table maps an upstream HTTP status to a kind; one table
renders a kind as each client API's error body and status. Backends classify; they never build HTTP
responses. Status codes are preserved where the client API has the same meaning (a 429 stays a 429),
and translated where it does not (Anthropic's 529 becomes 503 for OpenAI clients).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorKind(StrEnum):
    INVALID_REQUEST = "invalid_request"
    AUTHENTICATION = "authentication"
    BILLING = "billing"
    PERMISSION = "permission"
    NOT_FOUND = "not_found"
    REQUEST_TOO_LARGE = "request_too_large"
    RATE_LIMIT = "rate_limit"
    API_ERROR = "api_error"
    BAD_GATEWAY = "bad_gateway"  # the upstream's reply is unusable, or it refused the proxy's key
    UNAVAILABLE = "unavailable"  # 503
    TIMEOUT = "timeout"
    OVERLOADED = "overloaded"  # Anthropic's 529


# The in-stream error for an upstream stream that ended (cleanly, even) before its finish signal.
UNFINISHED = "upstream stream ended before it finished"


class AnyllmError(Exception):
    """Base of every error anyllm raises on purpose."""

    kind: ErrorKind = ErrorKind.API_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(AnyllmError):
    """The input does not parse as the API it claims to be. `path` names where."""

    kind = ErrorKind.INVALID_REQUEST

    def __init__(self, problem: str, path: str = "") -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem
        self.partial = b""  # output a stream produced before the bad input; write it first


class LossyTranslation(AnyllmError):
    """Raised under --strict when a translation recorded degradations."""

    kind = ErrorKind.INVALID_REQUEST

    def __init__(self, codes: list[str]) -> None:
        super().__init__("translation is lossy: " + ", ".join(codes))
        self.codes = codes


class ConfigError(AnyllmError):
    """Settings cannot be loaded or are inconsistent."""

    kind = ErrorKind.INVALID_REQUEST


class NotFound(AnyllmError):
    """What the caller asked for does not exist here (a backend name, a route, a method)."""

    kind = ErrorKind.NOT_FOUND


class StoreError(AnyllmError):
    """The store cannot be opened, migrated or reached."""

    kind = ErrorKind.API_ERROR


class KeyNotFound(NotFound):
    """No virtual key has that id or name."""

    kind = ErrorKind.NOT_FOUND


class Refused(AnyllmError):
    """A guard refused a call; `headers` (rate-limit state) go on the error reply."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after
        self.headers = headers or {}


class UpstreamError(AnyllmError):
    """The upstream returned an error status, an error event, or could not be reached."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status if status is not None else ANTHROPIC_ERRORS[kind][0]
        self.retry_after = retry_after


class CredentialsRefused(UpstreamError):
    """The upstream refused the proxy's own credentials (401/403): a 502 to the caller, and the one
    bad-gateway failure no retry can mend (an unreachable or garbled upstream may recover)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorKind.BAD_GATEWAY, message)


# -- the table ---------------------------------------------------------------------------------------

_STATUS_TO_KIND: dict[int, ErrorKind] = {
    400: ErrorKind.INVALID_REQUEST,
    401: ErrorKind.AUTHENTICATION,
    402: ErrorKind.BILLING,
    403: ErrorKind.PERMISSION,
    404: ErrorKind.NOT_FOUND,
    408: ErrorKind.TIMEOUT,
    409: ErrorKind.INVALID_REQUEST,
    413: ErrorKind.REQUEST_TOO_LARGE,
    422: ErrorKind.INVALID_REQUEST,
    429: ErrorKind.RATE_LIMIT,
    500: ErrorKind.API_ERROR,
    502: ErrorKind.BAD_GATEWAY,
    503: ErrorKind.UNAVAILABLE,
    504: ErrorKind.TIMEOUT,
    529: ErrorKind.OVERLOADED,
}

# kind -> (status, Anthropic error type)
ANTHROPIC_ERRORS: dict[ErrorKind, tuple[int, str]] = {
    ErrorKind.INVALID_REQUEST: (400, "invalid_request_error"),
    ErrorKind.AUTHENTICATION: (401, "authentication_error"),
    ErrorKind.BILLING: (402, "billing_error"),
    ErrorKind.PERMISSION: (403, "permission_error"),
    ErrorKind.NOT_FOUND: (404, "not_found_error"),
    ErrorKind.REQUEST_TOO_LARGE: (413, "request_too_large"),
    ErrorKind.RATE_LIMIT: (429, "rate_limit_error"),
    ErrorKind.API_ERROR: (500, "api_error"),
    ErrorKind.BAD_GATEWAY: (502, "api_error"),
    ErrorKind.UNAVAILABLE: (503, "overloaded_error"),
    ErrorKind.TIMEOUT: (504, "timeout_error"),
    ErrorKind.OVERLOADED: (529, "overloaded_error"),
}

# kind -> (status, OpenAI error type, OpenAI error code). OpenAI clients do not know 529.
OPENAI_ERRORS: dict[ErrorKind, tuple[int, str, str | None]] = {
    ErrorKind.INVALID_REQUEST: (400, "invalid_request_error", None),
    ErrorKind.AUTHENTICATION: (401, "authentication_error", "invalid_api_key"),
    ErrorKind.BILLING: (402, "insufficient_quota", "insufficient_quota"),
    ErrorKind.PERMISSION: (403, "permission_error", None),
    ErrorKind.NOT_FOUND: (404, "not_found_error", None),
    ErrorKind.REQUEST_TOO_LARGE: (413, "invalid_request_error", "request_too_large"),
    ErrorKind.RATE_LIMIT: (429, "rate_limit_error", "rate_limit_exceeded"),
    ErrorKind.API_ERROR: (500, "server_error", None),
    ErrorKind.BAD_GATEWAY: (502, "server_error", None),
    ErrorKind.UNAVAILABLE: (503, "server_error", None),
    ErrorKind.TIMEOUT: (504, "timeout_error", None),
    ErrorKind.OVERLOADED: (503, "server_error", "overloaded"),
}
# kind -> (status, google.rpc status) for Gemini-format clients.
GEMINI_ERRORS: dict[ErrorKind, tuple[int, str]] = {
    ErrorKind.INVALID_REQUEST: (400, "INVALID_ARGUMENT"),
    ErrorKind.AUTHENTICATION: (401, "UNAUTHENTICATED"),
    ErrorKind.BILLING: (403, "PERMISSION_DENIED"),
    ErrorKind.PERMISSION: (403, "PERMISSION_DENIED"),
    ErrorKind.NOT_FOUND: (404, "NOT_FOUND"),
    ErrorKind.REQUEST_TOO_LARGE: (413, "INVALID_ARGUMENT"),
    ErrorKind.RATE_LIMIT: (429, "RESOURCE_EXHAUSTED"),
    ErrorKind.API_ERROR: (500, "INTERNAL"),
    ErrorKind.BAD_GATEWAY: (502, "UNAVAILABLE"),
    ErrorKind.UNAVAILABLE: (503, "UNAVAILABLE"),
    ErrorKind.TIMEOUT: (504, "DEADLINE_EXCEEDED"),
    ErrorKind.OVERLOADED: (503, "UNAVAILABLE"),
}
_GEMINI_STATUS_TO_KIND: dict[str, ErrorKind] = {
    "INVALID_ARGUMENT": ErrorKind.INVALID_REQUEST,
    "FAILED_PRECONDITION": ErrorKind.INVALID_REQUEST,
    "OUT_OF_RANGE": ErrorKind.INVALID_REQUEST,
    "UNAUTHENTICATED": ErrorKind.AUTHENTICATION,
    "PERMISSION_DENIED": ErrorKind.PERMISSION,
    "NOT_FOUND": ErrorKind.NOT_FOUND,
    "RESOURCE_EXHAUSTED": ErrorKind.RATE_LIMIT,
    "INTERNAL": ErrorKind.API_ERROR,
    "UNKNOWN": ErrorKind.API_ERROR,
    "DEADLINE_EXCEEDED": ErrorKind.TIMEOUT,
    "UNAVAILABLE": ErrorKind.UNAVAILABLE,
}

_ANTHROPIC_TYPE_TO_KIND = {
    etype: kind
    for kind, (_, etype) in ANTHROPIC_ERRORS.items()
    if kind not in (ErrorKind.BAD_GATEWAY, ErrorKind.UNAVAILABLE)  # types they share with others
}
_OPENAI_TYPE_TO_KIND: dict[str, ErrorKind] = {
    "invalid_request_error": ErrorKind.INVALID_REQUEST,
    "authentication_error": ErrorKind.AUTHENTICATION,
    "insufficient_quota": ErrorKind.BILLING,
    "permission_error": ErrorKind.PERMISSION,
    "not_found_error": ErrorKind.NOT_FOUND,
    "rate_limit_error": ErrorKind.RATE_LIMIT,
    "requests": ErrorKind.RATE_LIMIT,
    "tokens": ErrorKind.RATE_LIMIT,
    "server_error": ErrorKind.API_ERROR,
    "timeout_error": ErrorKind.TIMEOUT,
}


def kind_from_status(status: int) -> ErrorKind:
    """Classify an HTTP status; unknown 4xx are invalid requests, unknown 5xx API errors."""
    if status in _STATUS_TO_KIND:
        return _STATUS_TO_KIND[status]
    return ErrorKind.INVALID_REQUEST if 400 <= status < 500 else ErrorKind.API_ERROR


def kind_from_error_type(error_type: str | None, status: int | None = None) -> ErrorKind:
    """Classify an error from its HTTP status (when known) and its body's `type` (either API's).

    A known status wins; the type only refines an unknown status, or names a billing problem."""
    typed = _kind_of_type(error_type)
    if status is None:
        return typed or ErrorKind.API_ERROR
    if status in _STATUS_TO_KIND and typed is not ErrorKind.BILLING:
        return _STATUS_TO_KIND[status]
    return typed or kind_from_status(status)


def _kind_of_type(error_type: str | None) -> ErrorKind | None:
    if error_type in _ANTHROPIC_TYPE_TO_KIND:
        return _ANTHROPIC_TYPE_TO_KIND[error_type]
    if error_type in _GEMINI_STATUS_TO_KIND:
        return _GEMINI_STATUS_TO_KIND[error_type]
    if error_type in _OPENAI_TYPE_TO_KIND:
        return _OPENAI_TYPE_TO_KIND[error_type]
    return None


def anthropic_error(kind: ErrorKind, message: str) -> tuple[int, dict[str, Any]]:
    """The status and body an Anthropic client expects for this kind of error."""
    status, etype = ANTHROPIC_ERRORS[kind]
    return status, {"type": "error", "error": {"type": etype, "message": message}}


def openai_error(
    kind: ErrorKind, message: str, param: str | None = None
) -> tuple[int, dict[str, Any]]:
    """The status and body an OpenAI client expects for this kind of error."""
    status, etype, code = OPENAI_ERRORS[kind]
    return status, {"error": {"message": message, "type": etype, "param": param, "code": code}}


def gemini_error(kind: ErrorKind, message: str) -> tuple[int, dict[str, Any]]:
    """The status and body a Gemini client (google-genai) expects for this kind of error."""
    status, rpc = GEMINI_ERRORS[kind]
    return status, {"error": {"code": status, "message": message, "status": rpc}}


def parse_error_body(body: Any, status: int | None = None) -> tuple[ErrorKind, str]:
    """Read the kind and message out of an Anthropic, OpenAI or Gemini error body (or anything)."""
    if isinstance(body, list) and body:  # Gemini sometimes wraps its error in a list
        body = body[0]
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            message = err.get("message")
            etype = err.get("type") or err.get("code")
            if isinstance(etype, int):  # Gemini: {"code": 429, "status": "RESOURCE_EXHAUSTED"}
                etype = err.get("status")
            if not isinstance(message, str):
                message = str(err)[:500]
            return kind_from_error_type(etype if isinstance(etype, str) else None, status), message
        if isinstance(err, str):
            return kind_from_status(status or 500), err
    text = body if isinstance(body, str) else repr(body)
    return kind_from_status(status or 500), text[:500] or "upstream error"
