"""The request side's input items for `messages_via_responses`, and the context they share.

`input_items()` turns the Messages conversation into Responses `input` items: consecutive turns
of one role joined, tool outputs first in their turn (a missing one written, an orphan turned into
text), assistant text and tool uses in block order, and "resp:"-signed thinking replayed as
reasoning items with their ids (the API requires `id` on an input reasoning item). `ResponsesOptions` and `RespCtx` live here so that both this module
and `messages_via_responses` (which re-exports the options) can use them without an import cycle.
The field mapping is the "Request" table in `messages_via_responses`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from anyllm_cli.models.anthropic import (
    ContainerUploadBlock,
    ContentBlock,
    DocumentBlock,
    MessagesRequest,
    MidConvSystemBlock,
    RedactedThinkingBlock,
    ServerToolResultBlock,
    ServerToolUseBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    URLSource,
)
from anyllm_cli.translate._responses_reply import read_signature
from anyllm_cli.translate.messages_via_chat import ChatContext, tool_result_message, user_parts


def _identity(name: str) -> str:
    return name


@dataclass(frozen=True, slots=True)
class ResponsesOptions:
    map_model: Callable[[str], str] = _identity
    max_output_tokens: int | None = None  # clamp max_tokens to this
    prompt_cache_key: str | None = None  # sent as prompt_cache_key
    reasoning_model: bool = False  # always reasons: encrypted reasoning, no sampling parameters
    strict_tools: bool = False  # `strict` for tools that do not say (Responses defaults to true)
    max_effort: str = "high"  # the highest reasoning.effort this upstream accepts
    user_field: Literal["safety_identifier", "user"] = "safety_identifier"


_DEFAULT_OPTIONS = ResponsesOptions()


@dataclass(slots=True)
class RespCtx(ChatContext):
    """The Chat route's context (degradations, rewritten ids) plus this route's state."""

    responses: ResponsesOptions = _DEFAULT_OPTIONS
    pending: dict[str, None] = field(default_factory=dict)  # call ids awaiting their output
    reasoning_items: int = 0


Item = dict[str, Any]
Parts = list[dict[str, Any]]


def join(texts: Any) -> str:
    return "\n\n".join(t for t in texts if t)


def input_items(req: MessagesRequest, ctx: RespCtx) -> list[Item]:
    items: list[Item] = []
    for role, blocks, path in _turns(req):
        if role == "system":
            texts = [b.text for b, _ in blocks if isinstance(b, TextBlock)]
            for block, where in blocks:
                if not isinstance(block, TextBlock):
                    ctx.note("unknown_block_dropped", f"{block.type} in a system message", where)
            out = _system_item(join(texts), ctx)
        elif role == "assistant":
            out = _assistant_turn(blocks, ctx)
        else:
            out = _user_turn(blocks, ctx)
        if not out:
            ctx.note("empty_message_dropped", "nothing sendable was left", path)
        items += out
    items += _missing_outputs(ctx)
    last = items[-1] if items else None
    if last is not None and last.get("role") == "assistant":
        where = f"messages[{len(req.messages) - 1}]"
        ctx.note("assistant_prefill_unsupported", "Responses answers after it, not from it", where)
    return items


Turn = tuple[str, list[tuple[ContentBlock, str]], str]


def _turns(req: MessagesRequest) -> list[Turn]:
    """Consecutive messages of one role joined into one turn, each block with its JSON path."""
    turns: list[Turn] = []
    for i, msg in enumerate(req.messages):
        path = f"messages[{i}]"
        content = msg.content
        if isinstance(content, str):
            blocks: list[tuple[ContentBlock, str]] = []
            if content:
                blocks.append((TextBlock(type="text", text=content), f"{path}.content"))
        else:
            blocks = [(b, f"{path}.content[{j}]") for j, b in enumerate(content)]
        if turns and turns[-1][0] == msg.role != "system":
            turns[-1][1].extend(blocks)
        else:
            turns.append((msg.role, blocks, path))
    return turns


def _system_item(text: str, ctx: RespCtx) -> list[Item]:
    if not text:
        return []
    role = "developer" if ctx.responses.reasoning_model else "system"
    return [{"type": "message", "role": role, "content": text}]


def _user_turn(blocks: list[tuple[ContentBlock, str]], ctx: RespCtx) -> list[Item]:
    """Tool outputs first (with attachments right after), then the rest of the user's content."""
    out: list[Item] = []
    parts: Parts = []
    for block, path in blocks:
        if not isinstance(block, ToolResultBlock):
            continue
        message, moved = tool_result_message(block, path, ctx)
        call_id = message["tool_call_id"]
        if call_id in ctx.pending:
            del ctx.pending[call_id]
            out.append(
                {"type": "function_call_output", "call_id": call_id, "output": message["content"]}
            )
        else:
            ctx.note("orphan_tool_result", f"{call_id} answers no preceding call", path)
            parts.append(_text(f"[result of tool call {call_id}]\n{message['content']}"))
        parts += [_input_part(p) for p in moved]
    out += _missing_outputs(ctx)
    for block, path in blocks:
        if isinstance(block, MidConvSystemBlock):
            out += _user_message(parts)
            parts = []
            out += _mid_conv(block, ctx)
        elif not isinstance(block, ToolResultBlock):
            parts += _user_parts(block, path, ctx)
    return out + _user_message(parts)


def _user_parts(block: ContentBlock, path: str, ctx: RespCtx) -> Parts:
    """As the Chat route sends it, except that Responses fetches documents by URL itself."""
    if isinstance(block, DocumentBlock) and isinstance(block.source, URLSource):
        head = [t for t in (block.title and f"Document: {block.title}", block.context) if t]
        url_file = {"type": "input_file", "file_url": block.source.url}
        return [_text("\n".join(head)), url_file] if head else [url_file]
    return [_input_part(p) for p in user_parts(block, path, ctx)]


def _missing_outputs(ctx: RespCtx) -> list[Item]:
    out = []
    for call_id in ctx.pending:
        ctx.note("tool_result_missing", f"{call_id} had no tool_result; one was written")
        out.append(
            {"type": "function_call_output", "call_id": call_id, "output": "[tool result missing]"}
        )
    ctx.pending.clear()
    return out


def _text(text: str) -> dict[str, Any]:
    return {"type": "input_text", "text": text}


def _input_part(part: dict[str, Any]) -> dict[str, Any]:
    """A Chat content part (what the shared helpers build) as a Responses input part."""
    if part["type"] == "image_url":
        return {"type": "input_image", "image_url": part["image_url"]["url"], "detail": "auto"}
    if part["type"] == "file":
        return {"type": "input_file", **part["file"]}
    return _text(part["text"])


def _user_message(parts: Parts) -> list[Item]:
    if not parts:
        return []
    if all(p["type"] == "input_text" for p in parts):
        return [{"type": "message", "role": "user", "content": join(p["text"] for p in parts)}]
    return [{"type": "message", "role": "user", "content": parts}]


def _mid_conv(block: MidConvSystemBlock, ctx: RespCtx) -> list[Item]:
    content = block.content
    return _system_item(content if isinstance(content, str) else join(b.text for b in content), ctx)


def _assistant_turn(blocks: list[tuple[ContentBlock, str]], ctx: RespCtx) -> list[Item]:
    """Items in the order of the blocks: text runs become messages, tool uses function calls."""
    out: list[Item] = []
    texts: list[str] = []
    for block, path in blocks:
        if isinstance(block, TextBlock):
            texts.append(block.text)
            continue
        out += _assistant_message(texts)
        texts = []
        if isinstance(block, ToolUseBlock):
            call_id = ctx.call_id(block.id, f"{path}.id")
            ctx.pending[call_id] = None
            arguments = json.dumps(block.input, ensure_ascii=False)
            out.append(
                {
                    "type": "function_call",
                    "call_id": call_id,
                    "name": block.name,
                    "arguments": arguments,
                }
            )
        elif isinstance(block, ThinkingBlock):
            out += _reasoning_item(block, path, ctx)
        elif isinstance(block, RedactedThinkingBlock):
            ctx.note("redacted_thinking_dropped", "encrypted thinking is Anthropic's only", path)
        elif isinstance(block, MidConvSystemBlock):
            out += _mid_conv(block, ctx)
        elif isinstance(block, ServerToolUseBlock | ServerToolResultBlock | ContainerUploadBlock):
            ctx.note(
                "server_tool_dropped", f"{block.type} belongs to an Anthropic server tool", path
            )
        else:
            ctx.note("unknown_block_dropped", f"{block.type} block in an assistant turn", path)
    out += _assistant_message(texts)
    return _drop_trailing_reasoning(out, ctx)


def _assistant_message(texts: list[str]) -> list[Item]:
    text = join(texts)
    return [{"type": "message", "role": "assistant", "content": text}] if text else []


def _reasoning_item(block: ThinkingBlock, path: str, ctx: RespCtx) -> list[Item]:
    signed = read_signature(block.signature or "")
    if signed is None:
        detail = "thinking not signed by a Responses upstream cannot be replayed to one"
        ctx.once("thinking_dropped", detail, path)
        return []
    item_id, encrypted = signed
    if item_id is None:
        detail = "a reasoning signature without its item id (the API requires the id) is not sent"
        ctx.note("reasoning_id_missing", detail, path)
        return []
    summary = [{"type": "summary_text", "text": block.thinking}] if block.thinking else []
    ctx.reasoning_items += 1
    return [
        {"type": "reasoning", "id": item_id, "summary": summary, "encrypted_content": encrypted}
    ]


def _drop_trailing_reasoning(items: list[Item], ctx: RespCtx) -> list[Item]:
    """Responses refuses a reasoning item that no message or function call follows."""
    while items and items[-1]["type"] == "reasoning":
        items.pop()
        ctx.reasoning_items -= 1
        detail = "a reasoning item with no output after it in its turn cannot be sent"
        ctx.note("reasoning_without_output_dropped", detail)
    return items
