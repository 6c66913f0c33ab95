"""OpenAI Chat messages as Anthropic turns, for `chat_via_messages.request`.

`conversation()` hoists system messages into the system prompt, turns every other message into
blocks, merges consecutive same-role turns, then repairs the list: tool_result blocks first in their
user turn, every tool_use answered in the next turn (an error result stands in when missing), orphan
results sent as text, a user turn first, no trailing whitespace in a prefill. What it gives up:
message names, echoed reasoning and the place of late system messages. A tool call's
`extra_content.google.thought_signature` (Gemini's, see `_messages_reply.gemini_call`) comes back as
a "gemini:"-signed empty thinking block right before its tool_use. The field mapping is the table
in `chat_via_messages`.
"""

from __future__ import annotations

from typing import Any

from anyllm_cli.models.openai_chat import (
    AssistantMessage,
    ChatRequest,
    FunctionMessage,
    SystemMessage,
    ToolMessage,
    UserMessage,
)
from anyllm_cli.translate._gemini_reply import SIGNATURE_PREFIX as GEMINI_PREFIX
from anyllm_cli.translate._gemini_reply import openai_thought_signature
from anyllm_cli.translate._messages_content import content_blocks
from anyllm_cli.translate._messages_context import MessagesContext, Turn, tool_id
from anyllm_cli.translate.messages_via_chat import parse_arguments


def conversation(req: ChatRequest, ctx: MessagesContext) -> list[Turn]:
    turns: list[Turn] = []
    for i, msg in enumerate(req.messages):
        path = f"messages[{i}]"
        if isinstance(msg, SystemMessage):
            _system_message(msg, path, bool(turns), ctx)
            continue
        role, blocks = _message(msg, path, ctx)
        _extra_fields(msg, path, ctx)
        if not blocks:
            ctx.note("empty_message_dropped", "Anthropic refuses empty messages", path)
            continue
        if turns and turns[-1].role == role:
            turns[-1].blocks += blocks
            turns[-1].path = path
        else:
            turns.append(Turn(role, blocks, path))
    for turn in turns:  # tool_result blocks must open their user turn
        if turn.role == "user":
            turn.blocks.sort(key=lambda b: b["type"] != "tool_result")
    _pair_tool_results(turns, ctx)
    if not turns or turns[0].role != "user":
        ctx.note("user_turn_inserted", "Anthropic conversations start with a user turn", "messages")
        turns.insert(0, Turn("user", [{"type": "text", "text": "."}]))
    _strip_prefill(turns, ctx)
    return turns


def _system_message(msg: SystemMessage, path: str, late: bool, ctx: MessagesContext) -> None:
    if late:
        ctx.note("system_message_moved", f"{msg.role} message hoisted into top-level system", path)
    if msg.name is not None:
        ctx.note("message_name_dropped", "Anthropic messages have no name", f"{path}.name")
    for block in content_blocks(msg.content, path, ctx, allowed=frozenset({"text"})):
        ctx.system.append(block)


def _message(msg: Any, path: str, ctx: MessagesContext) -> tuple[str, list[dict[str, Any]]]:
    if isinstance(msg, UserMessage):
        if msg.name is not None:
            ctx.note("message_name_dropped", "Anthropic messages have no name", f"{path}.name")
        return "user", content_blocks(
            msg.content, path, ctx, frozenset({"text", "image", "document"})
        )
    if isinstance(msg, AssistantMessage):
        return "assistant", _assistant(msg, path, ctx)
    if isinstance(msg, ToolMessage):
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_id(msg.tool_call_id)}
        ctx.where["result:" + block["tool_use_id"]] = path
        content = content_blocks(msg.content, path, ctx, frozenset({"text", "image", "document"}))
        if content:
            block["content"] = content
        return "user", [block]
    assert isinstance(msg, FunctionMessage)
    ctx.note("function_message_converted", "legacy function result sent as user text", path)
    return "user", [{"type": "text", "text": f"Result of {msg.name}: {msg.content or ''}"}]


def _assistant(msg: AssistantMessage, path: str, ctx: MessagesContext) -> list[dict[str, Any]]:
    if msg.name is not None:
        ctx.note("message_name_dropped", "Anthropic messages have no name", f"{path}.name")
    for name in ("reasoning_content", "reasoning"):
        if getattr(msg, name):
            ctx.note("reasoning_dropped", "unsigned reasoning cannot be replayed", f"{path}.{name}")
    blocks = (
        [] if msg.content is None else content_blocks(msg.content, path, ctx, frozenset({"text"}))
    )
    if msg.refusal and msg.refusal.strip():
        blocks.append({"type": "text", "text": msg.refusal})
    for k, call in enumerate(msg.tool_calls or []):
        args, degraded = parse_arguments(call.function.arguments)
        if degraded:
            where = f"{path}.tool_calls[{k}].function.arguments"
            ctx.note(
                "tool_arguments_invalid", "arguments are not a JSON object; kept as _raw", where
            )
        ctx.where["call:" + tool_id(call.id)] = f"{path}.tool_calls[{k}]"
        signature = openai_thought_signature(call.model_extra or {}, f"{path}.tool_calls[{k}]")
        if (
            signature
        ):  # Gemini's, as its OpenAI-compatible endpoint carries it: back before its call
            blocks.append(
                {"type": "thinking", "thinking": "", "signature": GEMINI_PREFIX + signature}
            )
        blocks.append(
            {"type": "tool_use", "id": tool_id(call.id), "name": call.function.name, "input": args}
        )
    return blocks


def _extra_fields(msg: Any, path: str, ctx: MessagesContext) -> None:
    for name, value in (msg.model_extra or {}).items():
        if value is not None:
            ctx.note(
                "message_field_dropped", f"`{name}` has no Anthropic equivalent", f"{path}.{name}"
            )


def _pair_tool_results(turns: list[Turn], ctx: MessagesContext) -> None:
    """Every tool_use answered in the next user turn, every tool_result answering one (else 400).

    Runs after merging, so roles alternate and the turn after an assistant turn is a user turn.
    """
    open_ids: list[str] = []
    for turn in turns:
        if turn.role == "user":
            _check_results(turn, open_ids, ctx)
        open_ids = [b["id"] for b in turn.blocks if b["type"] == "tool_use"]
    if open_ids:
        turns.append(Turn("user", []))
        _check_results(turns[-1], open_ids, ctx)


def _check_results(turn: Turn, open_ids: list[str], ctx: MessagesContext) -> None:
    results: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    answered: set[str] = set()
    for block in turn.blocks:
        tid = block.get("tool_use_id")
        if block["type"] != "tool_result":
            rest.append(block)
        elif tid in open_ids and tid not in answered:
            results.append(block)
            answered.add(tid)
        else:
            detail = f"no tool call {tid!r} is waiting for it; sent as text"
            ctx.note("orphan_tool_result", detail, ctx.where.get(f"result:{tid}", ""))
            rest += [{"type": "text", "text": f"Result of tool call {tid}:"}]
            rest += block.get("content") or []
    for missing in (i for i in open_ids if i not in answered):
        detail = f"tool call {missing!r} has no result; an error result stands in"
        ctx.note("tool_result_missing", detail, ctx.where.get(f"call:{missing}", ""))
        results.append(
            {
                "type": "tool_result",
                "tool_use_id": missing,
                "is_error": True,
                "content": [{"type": "text", "text": "tool result missing"}],
            }
        )
    turn.blocks = results + rest


def _strip_prefill(turns: list[Turn], ctx: MessagesContext) -> None:
    last = turns[-1]
    if last.role != "assistant" or last.blocks[-1]["type"] != "text":
        return
    text = last.blocks[-1]["text"]  # never blank: blank text blocks are not made
    if text != text.rstrip():
        detail = "a final assistant turn cannot end in whitespace"
        ctx.note("prefill_whitespace_stripped", detail, last.path)
        last.blocks[-1]["text"] = text.rstrip()
