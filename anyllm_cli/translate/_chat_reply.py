"""The reply side of `messages_via_chat`: a Chat completion back into an Anthropic Message.

`response()` and the pieces the stream translator and the other routes share with it
(`stop_reason`, `usage`, `parse_arguments`). The field mapping is the "Response" table in
`messages_via_chat`, which re-exports every public name here. Pure; what it gives up: extra
choices, annotations and audio, and a thinking signature (always "").
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from anyllm_cli.models._base import Wire
from anyllm_cli.models.openai_chat import ChatResponse, ResponseMessage, ToolCall
from anyllm_cli.translate._gemini_reply import openai_thought_signature, signed_tool_id
from anyllm_cli.translate.degradation import Degradation, Translated


def response(resp: ChatResponse, *, requested_model: str) -> Translated[dict[str, Any]]:
    """An Anthropic Message for this Chat completion (first choice)."""
    degradations: list[Degradation] = []
    content: list[dict[str, Any]] = []
    finish: str | None = None
    refused = False
    if not resp.choices:
        degradations.append(
            Degradation("no_choices", "the upstream returned no choices", "choices")
        )
    else:
        if len(resp.choices) > 1:
            detail = f"kept 1 of {len(resp.choices)} choices"
            degradations.append(Degradation("extra_choices_dropped", detail, "choices"))
        choice = resp.choices[0]
        finish = choice.finish_reason
        content, refused = _response_content(resp, choice.message, degradations)
    has_calls = any(block["type"] == "tool_use" for block in content)
    if resp.usage is None:
        degradations.append(Degradation("usage_missing", "the upstream reported no usage", "usage"))
    body = {
        "id": message_id(resp.id, resp),
        "type": "message",
        "role": "assistant",
        "model": requested_model,
        "content": content,
        "stop_reason": "refusal" if refused else stop_reason(finish, has_calls),
        "stop_sequence": None,
        "usage": usage(resp.usage.dump() if resp.usage else None),
    }
    return Translated(body, degradations)


def message_id(upstream_id: str | None, reply: Wire) -> str:
    """`msg_` + the upstream's id, or a digest of the reply when it has none (stable, not random)."""
    if upstream_id:
        return f"msg_{upstream_id}"
    digest = hashlib.sha256(json.dumps(reply.dump(), sort_keys=True).encode()).hexdigest()
    return f"msg_{digest[:24]}"


def _response_content(
    resp: ChatResponse, message: ResponseMessage, degradations: list[Degradation]
) -> tuple[list[dict[str, Any]], bool]:
    """Content blocks (thinking, text, refusal text, tool uses) and whether the model refused."""
    blocks: list[dict[str, Any]] = []
    thought = message.reasoning_content or message.reasoning or _reasoning_details(message)
    if thought:
        blocks.append({"type": "thinking", "thinking": thought, "signature": ""})
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    if message.refusal:
        blocks.append({"type": "text", "text": message.refusal})
    calls = list(message.tool_calls or [])
    legacy = (message.model_extra or {}).get("function_call")
    if not calls and isinstance(legacy, dict) and isinstance(legacy.get("name"), str):
        legacy = {"name": legacy["name"], "arguments": str(legacy.get("arguments") or "")}
        calls.append(ToolCall.parse({"id": "", "function": legacy}))
    for index, call in enumerate(calls):
        blocks.append(_tool_use(resp, call, index, degradations))
    for key in ("annotations", "audio"):
        if (message.model_extra or {}).get(key):
            path = f"choices[0].message.{key}"
            degradations.append(Degradation("response_field_dropped", f"{key} dropped", path))
    return blocks, bool(message.refusal)


def _reasoning_details(message: ResponseMessage) -> str:
    details = (message.model_extra or {}).get("reasoning_details")
    if not isinstance(details, list):
        return ""
    texts = [d.get("text") for d in details if isinstance(d, dict)]
    return "".join(t for t in texts if isinstance(t, str))


def _tool_use(
    resp: ChatResponse, call: ToolCall, index: int, degradations: list[Degradation]
) -> dict[str, Any]:
    path = f"choices[0].message.tool_calls[{index}]"
    arguments, degraded = parse_arguments(call.function.arguments)
    if degraded:
        detail = "arguments are not a JSON object; kept under _raw"
        degradations.append(Degradation("tool_arguments_invalid", detail, path))
    call_id = call.id
    if not call_id:
        seed = f"{resp.id}|{resp.created}|{index}|{call.function.name}|{call.function.arguments}"
        call_id = "toolu_" + hashlib.sha256(seed.encode()).hexdigest()[:24]
        degradations.append(Degradation("tool_call_id_derived", f"id {call_id} derived", path))
    signature = openai_thought_signature(call.model_extra or {}, path)
    if signature:  # Gemini's OpenAI-compatible endpoint: it must come back on the next turn
        call_id = signed_tool_id(call_id, signature)
    return {"type": "tool_use", "id": call_id, "name": call.function.name, "input": arguments}


# -- shared with the stream translator -------------------------------------------------------------

# OpenAI finish_reason -> Anthropic stop_reason
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def stop_reason(finish_reason: str | None, has_tool_calls: bool) -> str:
    """Tool calls win over any finish_reason (servers send "stop" with forced tool calls)."""
    if has_tool_calls and finish_reason != "length":
        return "tool_use"
    return _STOP_REASONS.get(finish_reason or "stop", "end_turn")


def usage(chat_usage: dict[str, Any] | None) -> dict[str, int]:
    """Anthropic usage from OpenAI usage: `input_tokens` excludes cached tokens, as Anthropic's does."""
    chat_usage = chat_usage or {}
    prompt = _int(chat_usage.get("prompt_tokens"))
    details = chat_usage.get("prompt_tokens_details") or {}
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    # DeepSeek reports its cache hits at the top level.
    cached = cached or _int(chat_usage.get("prompt_cache_hit_tokens"))
    cached = min(cached, prompt)
    return {
        "input_tokens": prompt - cached,
        "output_tokens": _int(chat_usage.get("completion_tokens")),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_arguments(text: str | None) -> tuple[dict[str, Any], bool]:
    """Tool-call arguments (a JSON string) as an object. Returns (input, degraded).

    Empty -> {}; a ```json fence is unwrapped; a non-object or invalid JSON is kept whole under
    `_raw` (never dropped) and flagged as degraded.
    """
    if text is None or not text.strip():
        return {}, False
    candidate = text
    match = _FENCE.match(text)
    if match:
        candidate = match.group(1)
    try:
        value = json.loads(candidate)
    except ValueError:
        return {"_raw": text}, True
    if isinstance(value, dict):
        return value, False
    return {"_raw": text}, True
