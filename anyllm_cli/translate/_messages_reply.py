"""The reply side of `chat_via_messages`: an Anthropic Message back into a Chat completion.

`response()` and the pieces the stream translator shares with it (`finish_reason`, `chat_usage`).
The field mapping is the "Back" paragraph in `chat_via_messages`, which re-exports every public
name here. Pure; what it gives up: citations, thinking signatures, redacted thinking and server
tool blocks, each with a `Degradation`.
"""

from __future__ import annotations

import json
from typing import Any

from anyllm_cli.models.anthropic import (
    MessagesResponse,
    RedactedThinkingBlock,
    ServerToolResultBlock,
    ServerToolUseBlock,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
)
from anyllm_cli.translate._gemini_reply import SIGNATURE_PREFIX as GEMINI_PREFIX
from anyllm_cli.translate._gemini_reply import openai_extra, split_tool_id
from anyllm_cli.translate.degradation import Degradation, Translated

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: str | None, has_tool_calls: bool) -> tuple[str, str | None]:
    """OpenAI finish_reason for an Anthropic stop_reason, and a degradation code when lossy."""
    reason = _FINISH_REASONS.get(stop_reason or "end_turn")
    code = None
    if reason is None:
        reason, code = "stop", "unknown_stop_reason"
    elif stop_reason == "pause_turn":
        code = "pause_turn_as_stop"
    if has_tool_calls and reason == "stop":
        reason = "tool_calls"
    elif reason == "tool_calls" and not has_tool_calls:
        reason = "stop"
    return reason, code


def chat_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """OpenAI usage from Anthropic usage: `prompt_tokens` includes cache reads and writes."""
    fresh, read = _int(usage.get("input_tokens")), _int(usage.get("cache_read_input_tokens"))
    written, output = (
        _int(usage.get("cache_creation_input_tokens")),
        _int(usage.get("output_tokens")),
    )
    prompt = fresh + read + written
    details: dict[str, int] = {"cached_tokens": read}
    if written:
        details["cache_write_tokens"] = written
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
        "prompt_tokens_details": details,
    }
    output_details = usage.get("output_tokens_details")
    if isinstance(output_details, dict) and "thinking_tokens" in output_details:
        out["completion_tokens_details"] = {
            "reasoning_tokens": _int(output_details["thinking_tokens"])
        }
    return out


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def response(
    resp: MessagesResponse, *, requested_model: str, created: int
) -> Translated[dict[str, Any]]:
    notes: list[Degradation] = []
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    pending: str | None = None  # a Gemini signature waiting for the next tool call
    for i, block in enumerate(resp.content):
        path = f"content[{i}]"
        if isinstance(block, TextBlock):
            texts.append(block.text)
            if block.citations:
                notes.append(Degradation("citations_dropped", "OpenAI has no citations", path))
        elif isinstance(block, ThinkingBlock):
            if block.thinking:
                thoughts.append(block.thinking)
            if block.signature and block.signature.startswith(GEMINI_PREFIX):
                pending = block.signature[len(GEMINI_PREFIX) :] or None
            elif block.signature:
                notes.append(Degradation("thinking_signature_dropped", "not replayable", path))
        elif isinstance(block, ToolUseBlock):
            arguments = json.dumps(block.input, ensure_ascii=False, separators=(",", ":"))
            function = {"name": block.name, "arguments": arguments}
            call_id, extra = gemini_call(block.id, pending)
            pending = None
            calls.append({"id": call_id, "type": "function", "function": function, **extra})
        else:
            notes.append(_dropped_block(block, path))
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if thoughts:
        message["reasoning_content"] = "\n\n".join(thoughts)
    if calls:
        message["tool_calls"] = calls
    reason, code = finish_reason(resp.stop_reason, bool(calls))
    if code:
        notes.append(Degradation(code, f"stop_reason {resp.stop_reason!r}", "stop_reason"))
    body = {
        "id": f"chatcmpl-{resp.id}",
        "object": "chat.completion",
        "created": created,
        "model": requested_model,
        "choices": [{"index": 0, "message": message, "finish_reason": reason, "logprobs": None}],
        "usage": chat_usage(resp.usage.dump()),
    }
    return Translated(body, notes)


def gemini_call(tool_use_id: str, pending: str | None) -> tuple[str, dict[str, Any]]:
    """A tool call's id and extra fields: a Gemini thought signature (in the id, or on a thinking
    block before it) goes in `extra_content.google.thought_signature`, as on Gemini's own
    OpenAI-compatible endpoint, and comes back from there (`_messages_turns`)."""
    call_id, carried = split_tool_id(tool_use_id)
    return call_id, openai_extra(carried or pending)


def _dropped_block(block: Any, path: str) -> Degradation:
    if isinstance(block, RedactedThinkingBlock):
        return Degradation("redacted_thinking_dropped", "OpenAI clients cannot carry it", path)
    if isinstance(block, ServerToolUseBlock | ServerToolResultBlock):
        return Degradation("server_tool_dropped", f"{block.type} has no OpenAI form", path)
    return Degradation("block_dropped", f"{block.type} has no OpenAI form", path)
