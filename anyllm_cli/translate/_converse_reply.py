"""The reply side of `messages_via_converse`: a Converse output back into an Anthropic Message.

`response()` and the pieces the stream translator shares with it (`stop_reason`, `usage`). The
field mapping is the "Response" table in `messages_via_converse`, which re-exports every public
name here. Pure; what it gives up: image and other non-text output blocks and citations (their text
kept), each with a `Degradation`; the message id is derived from the body (Converse has none).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from anyllm_cli.errors import InvalidInput
from anyllm_cli.translate.degradation import Degradation, Translated

STOP_REASONS = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "guardrail_intervened": "refusal",
    "content_filtered": "refusal",
    "model_context_window_exceeded": "model_context_window_exceeded",
}


def stop_reason(reason: Any, degradations: list[Degradation]) -> str:
    """The Anthropic stop_reason; unknown values (malformed_*) become end_turn, and say so."""
    if isinstance(reason, str) and reason in STOP_REASONS:
        return STOP_REASONS[reason]
    detail = f"stopReason {reason!r} became end_turn"
    degradations.append(Degradation("stop_reason_unmapped", detail, "stopReason"))
    return "end_turn"


def usage(raw: Any) -> dict[str, int]:
    raw = raw if isinstance(raw, dict) else {}
    return {
        "input_tokens": _int(raw.get("inputTokens")),
        "output_tokens": _int(raw.get("outputTokens")),
        "cache_creation_input_tokens": _int(raw.get("cacheWriteInputTokens")),
        "cache_read_input_tokens": _int(raw.get("cacheReadInputTokens")),
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def response(body: dict[str, Any], *, requested_model: str) -> Translated[dict[str, Any]]:
    """An Anthropic Message for this Converse output."""
    if not isinstance(body, dict):
        raise InvalidInput("expected a JSON object", "")
    degradations: list[Degradation] = []
    output = body.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    blocks = message.get("content") if isinstance(message, dict) else None
    if not isinstance(blocks, list):
        raise InvalidInput("expected an array", "output.message.content")
    content = [b for i, raw in enumerate(blocks) for b in _response_block(raw, i, degradations)]
    if "usage" not in body:
        degradations.append(Degradation("usage_missing", "the upstream reported no usage", "usage"))
    extra = body.get("additionalModelResponseFields")
    stop_sequence = extra.get("stop_sequence") if isinstance(extra, dict) else None
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    anthropic = {
        "id": f"msg_bdrk_{digest[:24]}",
        "type": "message",
        "role": "assistant",
        "model": requested_model,
        "content": content,
        "stop_reason": stop_reason(body.get("stopReason"), degradations),
        "stop_sequence": stop_sequence if isinstance(stop_sequence, str) else None,
        "usage": usage(body.get("usage")),
    }
    return Translated(anthropic, degradations)


def _response_block(raw: Any, i: int, degradations: list[Degradation]) -> list[dict[str, Any]]:
    path = f"output.message.content[{i}]"
    if not isinstance(raw, dict):
        raise InvalidInput("expected an object", path)
    if isinstance(raw.get("text"), str):
        return [{"type": "text", "text": raw["text"]}] if raw["text"] else []
    use = raw.get("toolUse")
    if isinstance(use, dict):
        tool_input = use.get("input")
        if not isinstance(tool_input, dict):
            tool_input = {} if tool_input is None else {"_raw": tool_input}
        return [
            {"type": "tool_use", "id": str(use.get("toolUseId", "")), "name": str(use.get("name", "")),
             "input": tool_input}
        ]  # fmt: skip
    reasoning = raw.get("reasoningContent")
    if isinstance(reasoning, dict):
        if isinstance(reasoning.get("redactedContent"), str):
            return [{"type": "redacted_thinking", "data": reasoning["redactedContent"]}]
        text = reasoning.get("reasoningText") or {}
        return [
            {"type": "thinking", "thinking": str(text.get("text", "")),
             "signature": str(text.get("signature") or "")}
        ]  # fmt: skip
    cited = raw.get("citationsContent")
    if isinstance(cited, dict):
        degradations.append(Degradation("response_block_dropped", "citations dropped", path))
        parts = [c.get("text", "") for c in cited.get("content") or [] if isinstance(c, dict)]
        return [{"type": "text", "text": "".join(parts)}] if any(parts) else []
    kind = next(iter(raw), "empty")
    degradations.append(Degradation("response_block_dropped", f"{kind} block dropped", path))
    return []
