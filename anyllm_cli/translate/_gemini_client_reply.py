"""The reply side for Gemini clients: an Anthropic Messages response as a GenerateContentResponse,
and the pieces the stream translator shares (finishReason, usageMetadata, Gemini's signatures).

| Messages response                       | GenerateContentResponse                              |
| --------------------------------------- | ---------------------------------------------------- |
| thinking (with a "gemini:" signature)   | a thought part; the signature on it or the next part |
| text / tool_use                         | a text part / a functionCall part (id kept)          |
| redacted thinking, citations, others    | dropped, named                                       |
| stop_reason                             | finishReason (FINISH_REASONS)                        |
| usage                                   | usageMetadata (cache reads and writes in the prompt) |

Split from gemini_via_messages.py (the request side) to keep each module readable; pure.
"""

from __future__ import annotations

import re
from typing import Any

from anyllm_cli.models.anthropic import (
    MessagesResponse,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
)
from anyllm_cli.translate.degradation import Degradation, Translated
from anyllm_cli.translate.messages_via_gemini import SIGNATURE_PREFIX

# Anthropic stop_reason -> Gemini finishReason
FINISH_REASONS = {
    "end_turn": "STOP",
    "stop_sequence": "STOP",
    "tool_use": "STOP",
    "pause_turn": "STOP",
    "max_tokens": "MAX_TOKENS",
    "model_context_window_exceeded": "MAX_TOKENS",
    "refusal": "SAFETY",
}


def finish_reason(stop_reason: str | None) -> tuple[str, str | None]:
    """Gemini finishReason for an Anthropic stop_reason, and a degradation code when lossy."""
    reason = FINISH_REASONS.get(stop_reason or "end_turn")
    if reason is None:
        return "STOP", "stop_reason_unmapped"
    return reason, "pause_turn_as_stop" if stop_reason == "pause_turn" else None


def usage_metadata(usage: dict[str, Any]) -> dict[str, int]:
    """Gemini usage: the prompt counts cache reads and writes; thoughts split out when known."""
    read = _int(usage.get("cache_read_input_tokens"))
    prompt = _int(usage.get("input_tokens")) + read + _int(usage.get("cache_creation_input_tokens"))
    output = _int(usage.get("output_tokens"))
    details = usage.get("output_tokens_details")
    thoughts = None
    if isinstance(details, dict) and details.get("thinking_tokens") is not None:
        thoughts = min(_int(details["thinking_tokens"]), output)
    out = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": output - (thoughts or 0),
        "totalTokenCount": prompt + output,
    }
    if read:
        out["cachedContentTokenCount"] = read
    if thoughts is not None:
        out["thoughtsTokenCount"] = thoughts
    return out


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


_BASE64 = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")


def our_signature(signature: str | None) -> str | None:
    """The Gemini signature inside a "gemini:" thinking signature; None for any other (Gemini's
    are base64: anything else was not made by Gemini and would be refused)."""
    if not signature or not signature.startswith(SIGNATURE_PREFIX):
        return None
    inner = signature[len(SIGNATURE_PREFIX) :]
    if not _BASE64.match(inner) or len(inner.rstrip("=")) % 4 == 1:
        return None
    return inner


def response(resp: MessagesResponse, *, model: str) -> Translated[dict[str, Any]]:
    """A GenerateContentResponse (one candidate) for this Messages response."""
    notes: list[Degradation] = []
    parts: list[dict[str, Any]] = []
    pending: str | None = None  # a signature for the next part
    for i, block in enumerate(resp.content):
        path = f"content[{i}]"
        part: dict[str, Any] | None = None
        if isinstance(block, ThinkingBlock):
            signature = our_signature(block.signature)
            if block.signature and signature is None:
                notes.append(Degradation("thinking_signature_dropped", "not Gemini's", path))
            if block.thinking or signature is None:
                if block.thinking:
                    part = {"text": block.thinking, "thought": True}
                    if signature:
                        part["thoughtSignature"] = signature
            else:
                if pending is not None:
                    parts.append({"text": "", "thoughtSignature": pending})
                pending = signature
                continue
        elif isinstance(block, TextBlock):
            if block.citations:
                notes.append(Degradation("citations_dropped", "Gemini parts carry none", path))
            part = {"text": block.text} if block.text or pending else None
        elif isinstance(block, ToolUseBlock):
            part = {"functionCall": {"name": block.name, "args": block.input, "id": block.id}}
        elif isinstance(block, RedactedThinkingBlock):
            notes.append(Degradation("redacted_thinking_dropped", "no Gemini form", path))
        else:
            notes.append(Degradation("block_dropped", f"{block.type} has no Gemini form", path))
        if part is None:
            continue
        if pending is not None and not part.get("thought"):
            part["thoughtSignature"] = pending
            pending = None
        elif pending is not None:
            parts.append({"text": "", "thoughtSignature": pending})
            pending = None
        parts.append(part)
    if pending is not None:
        parts.append({"text": "", "thoughtSignature": pending})
    reason, code = finish_reason(resp.stop_reason)
    if code:
        notes.append(Degradation(code, f"stop_reason {resp.stop_reason!r}", "stop_reason"))
    content: dict[str, Any] = {"role": "model"}
    if parts:
        content["parts"] = parts
    body = {
        "candidates": [{"content": content, "finishReason": reason, "index": 0}],
        "usageMetadata": usage_metadata(resp.usage.dump()),
        "modelVersion": model,
        "responseId": resp.id,
    }
    return Translated(body, notes)
