"""A stream's events folded into the reply a non-streaming call would have returned, per client API.

| api      | events                               | folded into                                        |
| -------- | ------------------------------------ | -------------------------------------------------- |
| messages | Anthropic events                     | a Message (translate/streams/accumulate.py)        |
| chat     | `chat.completion.chunk`s             | a `chat.completion`: text joined, tool calls by     |
|          |                                      | index with their arguments joined, the last finish |
|          |                                      | reason, the last usage                             |
| gemini   | `GenerateContentResponse` chunks     | one response: text parts joined, function calls    |
|          |                                      | kept, the last finishReason and usageMetadata      |

An in-stream error (Anthropic's `error` event, an OpenAI or Gemini `{"error": ...}` chunk) is
returned apart, so the caller counts it as the call's error. Pure; what it gives up: only the first
choice / candidate is kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from anyllm_cli.errors import InvalidInput, UpstreamError
from anyllm_cli.translate.streams.accumulate import accumulate


@dataclass(frozen=True, slots=True)
class Folded:
    response: dict[str, Any] | None
    error: dict[str, Any] | None = None  # the in-stream error body, when the stream carried one


def fold(api: str, events: Iterable[dict[str, Any]]) -> Folded:
    """The events of one stream (decoded JSON, `[DONE]` left out) as one reply."""
    kept: list[dict[str, Any]] = []
    for event in events:
        if event.get("type") == "error" or "error" in event:
            return Folded(_partial(api, kept), event)
        kept.append(event)
    return Folded(_partial(api, kept))


def _partial(api: str, events: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not events:
        return None
    if api == "messages":
        try:
            return accumulate(events)
        except (InvalidInput, UpstreamError):
            return None
    if api == "gemini":
        return _gemini(events)
    return _chat(events)


def _chat(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    text: list[str] = []
    tools: dict[int, dict[str, Any]] = {}
    finish: str | None = None
    usage: dict[str, Any] | None = None
    for chunk in chunks:
        if isinstance(chunk.get("usage"), dict):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                text.append(delta["content"])
            for call in delta.get("tool_calls") or []:
                _tool_delta(tools, call)
            finish = choice.get("finish_reason") or finish
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text else None}
    if tools:
        message["tool_calls"] = [tools[i] for i in sorted(tools)]
    first = chunks[0]
    out: dict[str, Any] = {
        "id": first.get("id", ""),
        "object": "chat.completion",
        "created": first.get("created", 0),
        "model": first.get("model", ""),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }
    if usage is not None:
        out["usage"] = usage
    return out


def _tool_delta(tools: dict[int, dict[str, Any]], call: dict[str, Any]) -> None:
    index = call.get("index", len(tools))
    tool = tools.setdefault(
        index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
    )
    if call.get("id"):
        tool["id"] = call["id"]
    function = call.get("function") or {}
    if function.get("name"):
        tool["function"]["name"] = function["name"]
    if isinstance(function.get("arguments"), str):
        tool["function"]["arguments"] += function["arguments"]


def _gemini(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    finish: str | None = None
    usage: dict[str, Any] | None = None
    for chunk in chunks:
        if isinstance(chunk.get("usageMetadata"), dict):
            usage = chunk["usageMetadata"]
        candidates = chunk.get("candidates") or []
        if not candidates or not isinstance(candidates[0], dict):
            continue
        candidate = candidates[0]
        finish = candidate.get("finishReason") or finish
        for part in (candidate.get("content") or {}).get("parts") or []:
            last = parts[-1] if parts else None
            if (
                isinstance(part.get("text"), str)
                and last is not None
                and set(last) == {"text"}
                and set(part) == {"text"}
            ):
                last["text"] += part["text"]
            else:
                parts.append(dict(part))
    candidate_out: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish is not None:
        candidate_out["finishReason"] = finish
    out: dict[str, Any] = {"candidates": [candidate_out]}
    if usage is not None:
        out["usageMetadata"] = usage
    return out
