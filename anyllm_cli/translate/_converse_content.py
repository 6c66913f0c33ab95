"""Anthropic system prompt and messages as Converse blocks, for `messages_via_converse.request`.

`converse_system()` and `converse_messages()` turn text, images, documents, tool calls and results
and replayable thinking into Converse content blocks, with a `cachePoint` after every block marked
with cache_control (`cache_point()`, shared with the tool list), and merge consecutive same-role
messages. What it gives up: URL and file sources, citations, server tool blocks, and thinking for
models other than Claude, each with a `Degradation`. The field mapping is the "Request" table in
`messages_via_converse`.
"""

from __future__ import annotations

import re
from typing import Any

from anyllm_cli.models.anthropic import (
    Base64Source,
    ContentBlock,
    ContentSource,
    DocumentBlock,
    ImageBlock,
    MessagesRequest,
    MidConvSystemBlock,
    RedactedThinkingBlock,
    SearchResultBlock,
    ServerToolResultBlock,
    ServerToolUseBlock,
    TextBlock,
    TextSource,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from anyllm_cli.translate._converse_context import ConverseContext

_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}


def cache_point(marker: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not marker:
        return []
    point: dict[str, Any] = {"type": "default"}
    if marker.get("ttl") in ("5m", "1h"):
        point["ttl"] = marker["ttl"]
    return [{"cachePoint": point}]


def converse_system(req: MessagesRequest, ctx: ConverseContext) -> list[dict[str, Any]]:
    if isinstance(req.system, str):
        return [{"text": req.system}] if req.system else []
    out: list[dict[str, Any]] = []
    for block in req.system or []:
        if block.text:
            out.append({"text": block.text})
        out += cache_point(block.cache_control)
        if block.citations:
            ctx.once("citations_dropped", "Converse cannot replay citations")
    return out


def converse_messages(
    req: MessagesRequest, system: list[dict[str, Any]], ctx: ConverseContext
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, msg in enumerate(req.messages):
        path = f"messages[{i}]"
        blocks: list[Any] = (
            [TextBlock(type="text", text=msg.content)]
            if isinstance(msg.content, str)
            else msg.content
        )
        if msg.role == "system":
            ctx.note("system_message_moved", "a system message joins the system prompt", path)
            system += [{"text": b.text} for b in blocks if isinstance(b, TextBlock) and b.text]
            continue
        content: list[dict[str, Any]] = []
        for j, block in enumerate(blocks):
            content += _block(block, msg.role, f"{path}.content[{j}]", system, ctx)
        if not content:
            ctx.note("empty_message_dropped", "nothing Converse can carry was left", path)
            continue
        if out and out[-1]["role"] == msg.role:
            out[-1]["content"] += content
        else:
            out.append({"role": msg.role, "content": content})
    return out


def _block(
    block: ContentBlock, role: str, path: str, system: list[dict[str, Any]], ctx: ConverseContext
) -> list[dict[str, Any]]:
    if getattr(block, "citations", None):
        ctx.once("citations_dropped", "Converse cannot replay citations", path)
    marker = getattr(block, "cache_control", None)
    if isinstance(block, TextBlock):
        return ([{"text": block.text}] if block.text else []) + cache_point(marker)
    if isinstance(block, ImageBlock):
        return _image(block, path, ctx) + cache_point(marker)
    if isinstance(block, DocumentBlock):
        return _document(block, path, ctx) + cache_point(marker)
    if isinstance(block, SearchResultBlock):
        ctx.note("search_result_flattened", "search result sent as text", path)
        text = "\n".join([block.title, block.source, *(t.text for t in block.content)])
        return [{"text": text}, *cache_point(marker)]
    if isinstance(block, ToolUseBlock):
        ctx.tool_names[block.name] = None
        use = {"toolUseId": ctx.tool_id(block.id, path), "name": block.name, "input": block.input}
        return [{"toolUse": use}, *cache_point(marker)]
    if isinstance(block, ToolResultBlock):
        return [_tool_result(block, path, ctx), *cache_point(marker)]
    if isinstance(block, ThinkingBlock | RedactedThinkingBlock):
        return _reasoning_block(block, role, path, ctx)
    if isinstance(block, MidConvSystemBlock):
        ctx.note("system_message_moved", "a mid-conversation system block joins the system", path)
        texts = (
            [block.content] if isinstance(block.content, str) else [b.text for b in block.content]
        )
        system += [{"text": t} for t in texts if t]
        return []
    if isinstance(block, ServerToolUseBlock | ServerToolResultBlock):
        ctx.note("server_tool_dropped", f"{block.type} belongs to an Anthropic server tool", path)
        return []
    ctx.note("unknown_block_dropped", f"{block.type} block has no Converse equivalent", path)
    return []


def _reasoning_block(
    block: ThinkingBlock | RedactedThinkingBlock, role: str, path: str, ctx: ConverseContext
) -> list[dict[str, Any]]:
    if role != "assistant" or not ctx.anthropic:
        ctx.note("thinking_dropped", "reasoning replays only to Claude, in assistant turns", path)
        return []
    if isinstance(block, RedactedThinkingBlock):
        return [{"reasoningContent": {"redactedContent": block.data}}]
    if not block.signature:
        ctx.note("thinking_dropped", "thinking without a signature cannot be replayed", path)
        return []
    text = {"text": block.thinking, "signature": block.signature}
    return [{"reasoningContent": {"reasoningText": text}}]


def _image(block: ImageBlock, path: str, ctx: ConverseContext) -> list[dict[str, Any]]:
    source = block.source
    if isinstance(source, Base64Source) and source.media_type in _IMAGE_FORMATS:
        fmt = _IMAGE_FORMATS[source.media_type]
        return [{"image": {"format": fmt, "source": {"bytes": source.data}}}]
    what = source.media_type if isinstance(source, Base64Source) else source.type
    note = f"an image ({what}) was not attached: Converse takes png/jpeg/gif/webp bytes only"
    ctx.note("image_degraded", note, path)
    return [{"text": f"[{note}]"}]


def _document(block: DocumentBlock, path: str, ctx: ConverseContext) -> list[dict[str, Any]]:
    source = block.source
    ctx.documents += 1
    name = re.sub(r"[^A-Za-z0-9\-()\[\] ]", " ", block.title or "")
    name = re.sub(r"\s+", " ", name).strip()[:190] or "document"
    name = f"{name} {ctx.documents}"  # names must be unique in a request
    doc: dict[str, Any] = {"name": name}
    if isinstance(source, Base64Source) and source.media_type == "application/pdf":
        doc.update(format="pdf", source={"bytes": source.data})
    elif isinstance(source, TextSource):
        doc.update(format="txt", source={"text": source.data})
    elif isinstance(source, ContentSource) and isinstance(source.content, str):
        doc.update(format="txt", source={"text": source.content})
    else:
        note = f"a document ({source.type}) was not attached: Converse takes bytes or text"
        ctx.note("document_degraded", note, path)
        return [{"text": f"[{note}]"}]
    if block.context:
        doc["context"] = block.context
    return [{"document": doc}]


def _tool_result(block: ToolResultBlock, path: str, ctx: ConverseContext) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if isinstance(block.content, str):
        content = [{"text": block.content}] if block.content else []
    else:
        for k, inner in enumerate(block.content or []):
            where = f"{path}.content[{k}]"
            if isinstance(inner, TextBlock | ImageBlock | DocumentBlock):
                content += [
                    p for p in _block(inner, "user", where, [], ctx) if "cachePoint" not in p
                ]
            else:
                ctx.note("unknown_block_dropped", f"{inner.type} in a tool result", where)
    result: dict[str, Any] = {"toolUseId": ctx.tool_id(block.tool_use_id, path), "content": content}
    if block.is_error:
        result["status"] = "error"
    return {"toolResult": result}
