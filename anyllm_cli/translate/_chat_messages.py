"""Anthropic messages as a Chat message list, for `messages_via_chat.request`.

`messages()` turns the system prompt and every turn into Chat messages (tool results first in a
user turn, mid-conversation system blocks at their place, thinking in the configured reasoning
field), then repairs the list: consecutive same-role messages merged, every tool call answered
right after its assistant message, orphan results turned into user text. What it gives up: the
exact place of text between tool calls in a turn. The field mapping is the table in
`messages_via_chat`.
"""

from __future__ import annotations

import json
from typing import Any

from anyllm_cli.models.anthropic import (
    ContainerUploadBlock,
    ContentBlock,
    Message,
    MessagesRequest,
    MidConvSystemBlock,
    RedactedThinkingBlock,
    ServerToolResultBlock,
    ServerToolUseBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from anyllm_cli.translate._chat_content import tool_result_message, user_parts
from anyllm_cli.translate._chat_context import ChatContext, Parts, join
from anyllm_cli.translate._gemini_reply import openai_extra, split_tool_id


def messages(req: MessagesRequest, ctx: ChatContext) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    system = req.system
    if isinstance(system, list):
        system = join(b.text for b in system)
    if system:
        out.append(_system_message(system, ctx))
    for i, msg in enumerate(req.messages):
        out += _turn(msg, f"messages[{i}]", ctx)
    last = out[-1] if out else None
    if last and last["role"] == "assistant" and not last.get("tool_calls"):
        where = f"messages[{len(req.messages) - 1}]"
        ctx.note("assistant_prefill_unsupported", "Chat answers after it, not from it", where)
    return _merge(_pair_tool_results(_merge(out), ctx))


def _turn(msg: Message, path: str, ctx: ChatContext) -> list[dict[str, Any]]:
    blocks = msg.content
    if isinstance(blocks, str):
        blocks = [TextBlock(type="text", text=blocks)]
    if msg.role == "system":
        text = join(_texts(blocks, path, ctx))
        out = [_system_message(text, ctx)] if text else []
    elif msg.role == "assistant":
        out = _assistant_turn(blocks, path, ctx)
    else:
        out = _user_turn(blocks, path, ctx)
    if not out:
        ctx.note("empty_message_dropped", "nothing sendable was left", path)
    return out


def _system_message(text: str, ctx: ChatContext) -> dict[str, Any]:
    return {"role": "developer" if ctx.options.reasoning_model else "system", "content": text}


def _texts(blocks: list[Any], path: str, ctx: ChatContext) -> list[str]:
    texts = []
    for j, block in enumerate(blocks):
        if isinstance(block, TextBlock):
            texts.append(block.text)
        else:
            ctx.note(
                "unknown_block_dropped", f"{block.type} in a system message", f"{path}.content[{j}]"
            )
    return texts


def _user_turn(blocks: list[ContentBlock], path: str, ctx: ChatContext) -> list[dict[str, Any]]:
    """Tool results first (as tool messages), then the rest; a mid_conv_system block splits it."""
    out: list[dict[str, Any]] = []
    parts: Parts = []
    for j, block in enumerate(blocks):
        if isinstance(block, ToolResultBlock):
            tool_message, moved = tool_result_message(block, f"{path}.content[{j}]", ctx)
            out.append(tool_message)
            parts += moved
    for j, block in enumerate(blocks):
        if isinstance(block, MidConvSystemBlock):
            out += _user_message(parts)
            parts = []
            out += _mid_conv(block, ctx)
        elif not isinstance(block, ToolResultBlock):
            parts += user_parts(block, f"{path}.content[{j}]", ctx)
    return out + _user_message(parts)


def _mid_conv(block: MidConvSystemBlock, ctx: ChatContext) -> list[dict[str, Any]]:
    content = block.content
    text = content if isinstance(content, str) else join(b.text for b in content)
    return [_system_message(text, ctx)] if text else []


def _user_message(parts: Parts) -> list[dict[str, Any]]:
    if not parts:
        return []
    if all(p["type"] == "text" for p in parts):
        return [{"role": "user", "content": join(p["text"] for p in parts)}]
    return [{"role": "user", "content": parts}]


def _assistant_turn(
    blocks: list[ContentBlock], path: str, ctx: ChatContext
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        where = f"{path}.content[{j}]"
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, ToolUseBlock):
            calls.append(_tool_call(block, where, ctx))
        elif isinstance(block, ThinkingBlock):
            reasoning.append(block.thinking)
        elif isinstance(block, RedactedThinkingBlock):
            ctx.note("redacted_thinking_dropped", "encrypted thinking is Anthropic's only", where)
        elif isinstance(block, MidConvSystemBlock):
            out += _assistant_message(texts, reasoning, calls, ctx)
            texts, reasoning, calls = [], [], []
            out += _mid_conv(block, ctx)
        elif isinstance(block, ServerToolUseBlock | ServerToolResultBlock | ContainerUploadBlock):
            ctx.note(
                "server_tool_dropped", f"{block.type} belongs to an Anthropic server tool", where
            )
        else:
            ctx.note("unknown_block_dropped", f"{block.type} block in an assistant turn", where)
    return out + _assistant_message(texts, reasoning, calls, ctx)


def _tool_call(block: ToolUseBlock, path: str, ctx: ChatContext) -> dict[str, Any]:
    return {
        "id": ctx.call_id(block.id, f"{path}.id"),
        "type": "function",
        "function": {"name": block.name, "arguments": json.dumps(block.input, ensure_ascii=False)},
        **openai_extra(split_tool_id(block.id)[1]),  # Gemini's thought signature, given back
    }


def _assistant_message(
    texts: list[str], reasoning: list[str], calls: list[dict[str, Any]], ctx: ChatContext
) -> list[dict[str, Any]]:
    field_name = ctx.options.reasoning_field
    thought = join(reasoning)
    if thought and not field_name:
        ctx.once("thinking_dropped", "no reasoning field is configured for this upstream")
        thought = ""
    content = join(texts)
    if not (content or calls or thought):
        return []
    msg: dict[str, Any] = {"role": "assistant", "content": content or (None if calls else "")}
    if calls:
        msg["tool_calls"] = calls
    if thought and field_name:
        msg[field_name] = thought
    return [msg]


# -- request: message list repairs ------------------------------------------------------------------


def _merge(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive user (or assistant) messages become one, as Anthropic itself treats them."""
    out: list[dict[str, Any]] = []
    for msg in messages:
        prev = out[-1] if out else None
        if prev is not None and prev["role"] == msg["role"] == "user":
            out[-1] = {"role": "user", "content": _merge_content(prev["content"], msg["content"])}
        elif prev is not None and prev["role"] == msg["role"] == "assistant":
            out[-1] = _merge_assistant(prev, msg)
        else:
            out.append(msg)
    return out


def _merge_content(a: str | Parts, b: str | Parts) -> str | Parts:
    if isinstance(a, str) and isinstance(b, str):
        return join([a, b])
    as_parts = [x if isinstance(x, list) else [{"type": "text", "text": x}] for x in (a, b)]
    return as_parts[0] + as_parts[1]


def _merge_assistant(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    merged = {**a, **b}
    merged["content"] = join([a.get("content") or "", b.get("content") or ""]) or None
    calls = (a.get("tool_calls") or []) + (b.get("tool_calls") or [])
    if calls:
        merged["tool_calls"] = calls
    elif merged["content"] is None:
        merged["content"] = ""
    for key in set(a) & set(b) - {"role", "content", "tool_calls"}:
        merged[key] = join([a[key], b[key]])
    return merged


def _pair_tool_results(messages: list[dict[str, Any]], ctx: ChatContext) -> list[dict[str, Any]]:
    """Every tool call answered right after its assistant message, and nothing else answered.

    System messages and orphans met inside a run of tool messages wait until the run ends.
    """
    out: list[dict[str, Any]] = []
    pending: dict[str, None] = {}
    held: list[dict[str, Any]] = []
    for msg in messages:
        if msg["role"] == "tool" and msg["tool_call_id"] in pending:
            del pending[msg["tool_call_id"]]
            out.append(msg)
            continue
        if msg["role"] == "tool":
            ctx.note("orphan_tool_result", f"{msg['tool_call_id']} answers no preceding call")
            text = f"[result of tool call {msg['tool_call_id']}]\n{msg['content']}"
            (held if pending else out).append({"role": "user", "content": text})
            continue
        if pending and msg["role"] in ("system", "developer"):
            held.append(msg)
            continue
        out += _missing_results(pending, ctx) + held
        pending, held = {}, []
        out.append(msg)
        if msg["role"] == "assistant" and msg.get("tool_calls"):
            pending = dict.fromkeys(c["id"] for c in msg["tool_calls"])
    return out + _missing_results(pending, ctx) + held


def _missing_results(pending: dict[str, None], ctx: ChatContext) -> list[dict[str, Any]]:
    out = []
    for call_id in pending:
        ctx.note("tool_result_missing", f"{call_id} had no tool_result; one was written")
        out.append({"role": "tool", "tool_call_id": call_id, "content": "[tool result missing]"})
    return out
