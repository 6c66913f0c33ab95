"""The reply side of `messages_via_responses`: a Responses object back into an Anthropic Message.

`response()` and the pieces the stream translator shares with it (`stop_reason`, `usage`,
`error_kind`, `SIGNATURE_PREFIX`). The field mapping is the "Response" table in
`messages_via_responses`, which re-exports every public name here. Pure, like the request side;
what it gives up: annotations, output items with no Anthropic equivalent, and the boundaries
between reasoning summary parts (joined with a blank line).
"""

from __future__ import annotations

import hashlib
from typing import Any

from anyllm_cli.errors import ErrorKind, UpstreamError
from anyllm_cli.models.openai_responses import (
    FunctionCallItem,
    OutputMessage,
    OutputText,
    ReasoningItem,
    Refusal,
    ResponsesResponse,
)
from anyllm_cli.translate._chat_reply import message_id
from anyllm_cli.translate.degradation import Degradation, Translated
from anyllm_cli.translate.messages_via_chat import parse_arguments

SIGNATURE_PREFIX = "resp:"  # a thinking block's signature: "resp:<item id>:<encrypted_content>"


def signature(item_id: str | None, encrypted: str) -> str:
    """The thinking signature for a reasoning item: its id and encrypted content, both needed back."""
    return f"{SIGNATURE_PREFIX}{item_id}:{encrypted}" if item_id else SIGNATURE_PREFIX + encrypted


def read_signature(value: str) -> tuple[str | None, str] | None:
    """(item id, encrypted content) of a "resp:" signature, None for any other signature.

    Signatures written before ids were carried ("resp:<encrypted>", no colon: encrypted content is
    base64) read as (None, encrypted).
    """
    if not value.startswith(SIGNATURE_PREFIX):
        return None
    rest = value[len(SIGNATURE_PREFIX) :]
    item_id, colon, encrypted = rest.partition(":")
    if not colon:
        return (None, rest) if rest else None
    return (item_id or None, encrypted) if encrypted else None


def response(resp: ResponsesResponse, *, requested_model: str) -> Translated[dict[str, Any]]:
    """An Anthropic Message for this Responses object. A failed response raises UpstreamError."""
    if resp.status not in (None, "completed", "incomplete"):
        error = resp.error
        kind = error_kind(error.code if error else None)
        message = (error.message if error else "") or f"the response has status {resp.status!r}"
        raise UpstreamError(kind, message)
    degradations: list[Degradation] = []
    content: list[dict[str, Any]] = []
    refused = False
    for i, item in enumerate(resp.output):
        path = f"output[{i}]"
        if isinstance(item, ReasoningItem):
            content += _thinking(item)
        elif isinstance(item, OutputMessage):
            blocks, item_refused = _message_content(item, path, degradations)
            content += blocks
            refused = refused or item_refused
        elif isinstance(item, FunctionCallItem):
            content.append(_tool_use(resp, item, i, degradations))
        else:
            detail = f"{item.type} items have no Anthropic equivalent"
            degradations.append(Degradation("output_item_dropped", detail, path))
    reason = resp.incomplete_details.reason if resp.incomplete_details else None
    has_calls = any(block["type"] == "tool_use" for block in content)
    stop = stop_reason(resp.status, reason, has_calls=has_calls, refused=refused)
    if resp.status == "incomplete" and reason not in _INCOMPLETE_REASONS:
        detail = f"incomplete reason {reason!r} became {stop}"
        degradations.append(Degradation("incomplete_reason_unmapped", detail, "incomplete_details"))
    if resp.usage is None:
        degradations.append(Degradation("usage_missing", "the upstream reported no usage", "usage"))
    body = {
        "id": message_id(resp.id, resp),
        "type": "message",
        "role": "assistant",
        "model": requested_model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage(resp.usage.dump() if resp.usage else None),
    }
    return Translated(body, degradations)


def _thinking(item: ReasoningItem) -> list[dict[str, Any]]:
    texts = [s.text for s in item.summary] or [c.text for c in item.content or []]
    thought = "\n\n".join(t for t in texts if t)
    encrypted = item.encrypted_content or ""
    if not (thought or encrypted):
        return []
    signed = signature(item.id, encrypted) if encrypted else ""
    return [{"type": "thinking", "thinking": thought, "signature": signed}]


def _message_content(
    item: OutputMessage, path: str, degradations: list[Degradation]
) -> tuple[list[dict[str, Any]], bool]:
    blocks: list[dict[str, Any]] = []
    refused = False
    for j, part in enumerate(item.content):
        where = f"{path}.content[{j}]"
        if isinstance(part, OutputText):
            if part.text:
                blocks.append({"type": "text", "text": part.text})
            if part.annotations:
                detail = f"{len(part.annotations)} annotation(s) dropped"
                degradations.append(Degradation("response_field_dropped", detail, where))
        elif isinstance(part, Refusal):
            refused = True
            if part.refusal:
                blocks.append({"type": "text", "text": part.refusal})
        else:
            detail = f"{part.type} content has no Anthropic equivalent"
            degradations.append(Degradation("output_item_dropped", detail, where))
    return blocks, refused


def _tool_use(
    resp: ResponsesResponse, item: FunctionCallItem, index: int, degradations: list[Degradation]
) -> dict[str, Any]:
    path = f"output[{index}]"
    arguments, degraded = parse_arguments(item.arguments)
    if degraded:
        detail = "arguments are not a JSON object; kept under _raw"
        degradations.append(Degradation("tool_arguments_invalid", detail, path))
    call_id = item.call_id
    if not call_id:
        seed = f"{resp.id}|{index}|{item.id}|{item.name}|{item.arguments}"
        call_id = "toolu_" + hashlib.sha256(seed.encode()).hexdigest()[:24]
        degradations.append(Degradation("tool_call_id_derived", f"id {call_id} derived", path))
    return {"type": "tool_use", "id": call_id, "name": item.name, "input": arguments}


# -- shared with the stream translator -------------------------------------------------------------

_INCOMPLETE_REASONS = frozenset({"max_output_tokens", "content_filter"})


def stop_reason(
    status: str | None, incomplete_reason: str | None, *, has_calls: bool, refused: bool
) -> str:
    """Function calls always mean tool_use (Responses has no finish_reason to say otherwise)."""
    if has_calls:
        return "tool_use"
    if refused or incomplete_reason == "content_filter":
        return "refusal"
    if status == "incomplete":
        return "max_tokens"  # max_output_tokens, and the context window (no better Anthropic word)
    return "end_turn"


def usage(responses_usage: dict[str, Any] | None) -> dict[str, int]:
    """Anthropic usage: `input_tokens` excludes cache reads and writes, as Anthropic's does."""
    found = responses_usage or {}
    total = _int(found.get("input_tokens"))
    details = found.get("input_tokens_details")
    details = details if isinstance(details, dict) else {}
    cached = min(_int(details.get("cached_tokens")), total)
    written = min(_int(details.get("cache_write_tokens")), total - cached)
    return {
        "input_tokens": total - cached - written,
        "output_tokens": _int(found.get("output_tokens")),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


# Responses `error.code` -> kind; anything else is an API error.
_ERROR_CODES = {
    "rate_limit_exceeded": ErrorKind.RATE_LIMIT,
    "insufficient_quota": ErrorKind.BILLING,
    "server_error": ErrorKind.API_ERROR,
    "vector_store_timeout": ErrorKind.TIMEOUT,
    "invalid_prompt": ErrorKind.INVALID_REQUEST,
    "context_length_exceeded": ErrorKind.INVALID_REQUEST,
}


def error_kind(code: str | None) -> ErrorKind:
    if code in _ERROR_CODES:
        return _ERROR_CODES[code]
    if code and code.startswith(("invalid_", "image_")):
        return ErrorKind.INVALID_REQUEST
    return ErrorKind.API_ERROR
