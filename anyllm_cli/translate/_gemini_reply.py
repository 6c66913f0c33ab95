"""The reply side of `messages_via_gemini`: a Gemini response back into an Anthropic Message.

`response()` and the pieces the stream translator shares with it (`FINISH_REASONS`, `stop_reason`,
`block_text`, `usage`, `tool_id`, `signature_block`, `part_blocks`, `SIGNATURE_PREFIX`,
`signed_tool_id` / `split_tool_id`). The field
mapping is the "Response" table in `messages_via_gemini`, which re-exports every public name here.
Pure; what it gives up: candidates after the first and parts with no Anthropic block (inlineData,
executableCode, ...). Thought signatures are kept, never made up.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from anyllm_cli.errors import InvalidInput
from anyllm_cli.models.gemini import GenerateContentResponse
from anyllm_cli.translate.degradation import Degradation, Translated

SIGNATURE_PREFIX = "gemini:"  # a thinking block's signature: "gemini:" + Gemini's thoughtSignature
CALL_SIGNATURE = "__gsig_"  # a tool_use id "<id>__gsig_<base64url of the signature>" carries one


def response(resp: GenerateContentResponse, *, requested_model: str) -> Translated[dict[str, Any]]:
    """An Anthropic Message for this Gemini response (first candidate)."""
    degradations: list[Degradation] = []
    content: list[dict[str, Any]] = []
    finish: str | None = None
    has_calls = False
    blocked = resp.promptFeedback.blockReason if resp.promptFeedback else None
    base = _id_base(resp)
    if blocked:
        content.append({"type": "text", "text": block_text(blocked)})
    elif not resp.candidates:
        degradations.append(
            Degradation("no_candidates", "the upstream returned no candidates", "candidates")
        )
    else:
        if len(resp.candidates) > 1:
            detail = f"kept 1 of {len(resp.candidates)} candidates"
            degradations.append(Degradation("extra_candidates_dropped", detail, "candidates"))
        candidate = resp.candidates[0]
        finish = candidate.finishReason
        parts = candidate.content.parts if candidate.content else None
        calls = 0
        for n, part in _with_call_signatures([p.dump() for p in parts or []]):
            path = f"candidates[0].content.parts[{n}]"
            late = any(b["type"] != "thinking" for b in content)
            blocks = part_blocks(part, base, calls, path, degradations, late=late)
            calls += sum(b["type"] == "tool_use" for b in blocks)
            content += blocks
        has_calls = calls > 0
        if finish is not None and finish not in FINISH_REASONS:
            detail = f"finishReason {finish!r} became end_turn"
            if candidate.finishMessage:
                detail += f" ({candidate.finishMessage})"
            degradations.append(Degradation("finish_reason_unmapped", detail, "candidates[0]"))
    meta = resp.usageMetadata
    if meta is None:
        degradations.append(Degradation("usage_missing", "the upstream reported no usage"))
    body = {
        "id": f"msg_{base}",
        "type": "message",
        "role": "assistant",
        "model": requested_model,
        "content": content,
        "stop_reason": "refusal" if blocked else stop_reason(finish, has_calls),
        "stop_sequence": None,
        "usage": usage(meta.dump() if meta else None),
    }
    return Translated(body, degradations)


def _with_call_signatures(parts: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """The parts with their indexes; a bare signature part (empty text) right after an unsigned
    functionCall becomes that call's signature, as the stream translator does."""
    out: list[tuple[int, dict[str, Any]]] = []
    for n, part in enumerate(parts):
        previous = out[-1][1] if out else None
        bare = part.get("thoughtSignature") and not part.get("text") and not part.get("thought")
        bare = bare and set(part) <= {"text", "thoughtSignature"}
        if (
            bare
            and previous
            and "functionCall" in previous
            and not previous.get("thoughtSignature")
        ):
            out[-1] = (out[-1][0], {**previous, "thoughtSignature": part["thoughtSignature"]})
        else:
            out.append((n, part))
    return out


def _id_base(resp: GenerateContentResponse) -> str:
    clean = _NOT_ID.sub("_", resp.responseId or "")
    if clean:
        return clean
    digest = hashlib.sha256(json.dumps(resp.dump(), sort_keys=True).encode()).hexdigest()
    return digest[:24]


# -- shared with the stream translator -------------------------------------------------------------

_NOT_ID = re.compile(r"[^A-Za-z0-9_-]")
_LEGAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# Gemini finishReason -> Anthropic stop_reason
FINISH_REASONS = {
    "STOP": "end_turn",
    "MAX_TOKENS": "max_tokens",
    "SAFETY": "refusal",
    "RECITATION": "refusal",
    "PROHIBITED_CONTENT": "refusal",
    "BLOCKLIST": "refusal",
    "SPII": "refusal",
    "IMAGE_SAFETY": "refusal",
    "IMAGE_PROHIBITED_CONTENT": "refusal",
    "IMAGE_RECITATION": "refusal",
}


def stop_reason(finish_reason: str | None, has_calls: bool) -> str:
    """Gemini has no tool-call finish reason: calls make STOP (or a missing reason) tool_use."""
    mapped = FINISH_REASONS.get(finish_reason or "STOP", "end_turn")
    if has_calls and mapped == "end_turn":
        return "tool_use"
    return mapped


def block_text(reason: str) -> str:
    return f"[The prompt was blocked by Gemini (blockReason: {reason}); no answer was generated.]"


def usage(meta: dict[str, Any] | None) -> dict[str, int]:
    """Anthropic usage: input excludes the cached tokens; output includes the thoughts."""
    meta = meta or {}
    prompt = _int(meta.get("promptTokenCount"))
    cached = min(_int(meta.get("cachedContentTokenCount")), prompt)
    output = _int(meta.get("candidatesTokenCount")) + _int(meta.get("thoughtsTokenCount"))
    return {
        "input_tokens": prompt - cached,
        "output_tokens": output,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def tool_id(upstream: Any, base: str, ordinal: int) -> str:
    """The tool_use id: Gemini's own when Anthropic accepts it, else `toolu_<base>_<ordinal>`."""
    if isinstance(upstream, str) and _LEGAL_ID.match(upstream):
        return upstream
    return f"toolu_{base}_{ordinal}"


def signature_block(signature: str) -> dict[str, Any]:
    """A thinking block with no text that only carries a Gemini signature."""
    return {"type": "thinking", "thinking": "", "signature": SIGNATURE_PREFIX + signature}


def signed_tool_id(call_id: str, signature: str) -> str:
    """A tool_use id that also carries its functionCall's thoughtSignature (see CALL_SIGNATURE)."""
    encoded = base64.urlsafe_b64encode(signature.encode()).decode().rstrip("=")
    return call_id + CALL_SIGNATURE + encoded


def split_tool_id(value: str) -> tuple[str, str | None]:
    """(the tool id Gemini knows, the thoughtSignature it carries or None) of a tool_use id."""
    head, mark, tail = value.partition(CALL_SIGNATURE)
    if not mark or not head or not tail:
        return value, None
    try:
        raw = base64.urlsafe_b64decode(tail + "=" * (-len(tail) % 4))
        return head, raw.decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return value, None


def openai_thought_signature(call: Mapping[str, Any], path: str) -> str | None:
    """`extra_content.google.thought_signature` of an OpenAI tool call (as Gemini's own
    OpenAI-compatible endpoint sends and takes it), or None."""
    content = call.get("extra_content")
    google = content.get("google") if isinstance(content, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    if signature is not None and not isinstance(signature, str):
        raise InvalidInput("expected a string", f"{path}.extra_content.google.thought_signature")
    return signature or None


def openai_extra(signature: str | None) -> dict[str, Any]:
    """The tool-call fields that carry a Gemini thought signature to an OpenAI client or upstream."""
    return {"extra_content": {"google": {"thought_signature": signature}}} if signature else {}


def late_signature(path: str, degradations: list[Degradation]) -> None:
    """A signature on a non-call part after text: Gemini does not validate those; dropped."""
    detail = "a thinking block cannot follow text; Gemini does not check text-part signatures"
    degradations.append(Degradation("text_signature_dropped", detail, path))


def part_blocks(
    part: dict[str, Any],
    base: str,
    calls: int,
    path: str,
    degradations: list[Degradation],
    *,
    late: bool = False,
) -> list[dict[str, Any]]:
    """The Anthropic blocks for one whole Gemini part (`calls`: tool uses before it; `late`: a text
    or tool_use block came before it, so a signature can no longer go on a thinking block)."""
    signature = part.get("thoughtSignature")
    signature = signature if isinstance(signature, str) and signature else None
    text = part.get("text")
    if part.get("thought") is True and isinstance(text, str):
        sig = SIGNATURE_PREFIX + signature if signature else ""
        return [{"type": "thinking", "thinking": text, "signature": sig}]
    lead = [signature_block(signature)] if signature and not late else []
    call = part.get("functionCall")
    if isinstance(call, dict):
        call_id = tool_id(call.get("id"), base, calls)
        if call_id != call.get("id"):
            degradations.append(Degradation("tool_call_id_derived", f"id {call_id}", path))
        if signature and late:
            call_id = signed_tool_id(call_id, signature)
        args = call.get("args") or {}
        return [*lead, {"type": "tool_use", "id": call_id, "name": call["name"], "input": args}]
    if signature and late:
        late_signature(path, degradations)
    if isinstance(text, str):
        return [*lead, {"type": "text", "text": text}] if text else lead
    kinds = sorted(k for k in part if k not in ("thoughtSignature", "thought"))
    degradations.append(Degradation("response_part_dropped", f"{', '.join(kinds)} part", path))
    return lead
