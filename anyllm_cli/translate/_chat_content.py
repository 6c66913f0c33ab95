"""User-side Anthropic content blocks as Chat content parts, for `messages_via_chat` and its siblings.

`user_parts()` maps one block (text, image, document, search result, tool reference) to parts;
`tool_result_message()` builds the tool message for a `tool_result` and hands back the parts a tool
message cannot hold (images, files), which go to the next user message. What it gives up: Anthropic
file ids, document URLs, and non-text base64 documents other than PDFs become text notes. The field
mapping is the content rows of the table in `messages_via_chat`, which re-exports the public names.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from anyllm_cli.errors import InvalidInput
from anyllm_cli.models.anthropic import (
    Base64Source,
    ContainerUploadBlock,
    ContentBlock,
    ContentSource,
    DocumentBlock,
    FileSource,
    ImageBlock,
    SearchResultBlock,
    ServerToolResultBlock,
    ServerToolUseBlock,
    TextBlock,
    TextSource,
    ToolReferenceBlock,
    ToolResultBlock,
    URLSource,
)
from anyllm_cli.translate._chat_context import ChatContext, Parts, join


def tool_result_message(
    block: ToolResultBlock, path: str, ctx: ChatContext
) -> tuple[dict[str, Any], Parts]:
    """The tool message, and the parts a tool message cannot hold (they go to the next user turn)."""
    call_id = ctx.call_id(block.tool_use_id, f"{path}.tool_use_id")
    texts: list[str] = []
    moved: Parts = []
    if isinstance(block.content, str):
        texts.append(block.content)
    elif block.content:
        for k, inner in enumerate(block.content):
            for part in user_parts(inner, f"{path}.content[{k}]", ctx):
                if part["type"] == "text":
                    texts.append(part["text"])
                else:
                    moved.append(part)
    if moved:
        texts.append(f"[{len(moved)} attachment(s) follow in the next user message]")
        moved.insert(0, {"type": "text", "text": f"Attachments from tool result {call_id}:"})
    text = join(texts)
    if block.is_error:
        text = f"[tool error] {text}"
    return {"role": "tool", "tool_call_id": call_id, "content": text}, moved


def user_parts(block: ContentBlock, path: str, ctx: ChatContext) -> Parts:
    """One user-side block as Chat content parts (empty when it is dropped)."""
    if isinstance(block, TextBlock):
        return [{"type": "text", "text": block.text}] if block.text else []
    if isinstance(block, ImageBlock):
        return [_image(block, path, ctx)]
    if isinstance(block, DocumentBlock):
        return _document(block, path, ctx)
    if isinstance(block, SearchResultBlock):
        lines = [f"Search result: {block.title}", f"Source: {block.source}"]
        return [{"type": "text", "text": "\n".join(lines + [b.text for b in block.content])}]
    if isinstance(block, ToolReferenceBlock):
        return [{"type": "text", "text": f"[tool reference: {block.tool_name}]"}]
    if isinstance(block, ServerToolUseBlock | ServerToolResultBlock | ContainerUploadBlock):
        ctx.note("server_tool_dropped", f"{block.type} belongs to an Anthropic server tool", path)
        return []
    ctx.note("unknown_block_dropped", f"{block.type} block cannot be sent", path)
    return []


def _image(block: ImageBlock, path: str, ctx: ChatContext) -> dict[str, Any]:
    source = block.source
    if isinstance(source, Base64Source):
        url = f"data:{source.media_type};base64,{source.data}"
    elif isinstance(source, URLSource):
        url = source.url
    else:
        ctx.note("image_degraded", "Anthropic file ids cannot cross providers", path)
        return {"type": "text", "text": f"[image {source.file_id} could not be attached]"}
    return {"type": "image_url", "image_url": {"url": url}}


def _document(block: DocumentBlock, path: str, ctx: ChatContext) -> Parts:
    source = block.source
    head = [t for t in (block.title and f"Document: {block.title}", block.context) if t]
    if isinstance(source, Base64Source) and source.media_type == "application/pdf":
        if ctx.options.file_parts:
            name = f"{block.title or 'document'}.pdf".replace(".pdf.pdf", ".pdf")
            data = f"data:application/pdf;base64,{source.data}"
            part = {"type": "file", "file": {"filename": name, "file_data": data}}
            return [{"type": "text", "text": "\n".join(head)}, part] if head else [part]
        note = "PDF could not be attached: this upstream takes no file parts"
    elif isinstance(source, Base64Source):
        text = _decoded_text(source)
        if text is not None:
            return [{"type": "text", "text": "\n".join([*head, text])}]
        note = f"{source.media_type} document could not be attached"
    elif isinstance(source, TextSource):
        return [{"type": "text", "text": "\n".join([*head, source.data])}]
    elif isinstance(source, ContentSource):
        return _content_document(source, head, path, ctx)
    elif isinstance(source, URLSource):
        note = f"document at {source.url} was not attached: the upstream cannot fetch it"
    else:
        assert isinstance(source, FileSource)
        note = f"document file {source.file_id} was not attached: file ids cannot cross providers"
    ctx.note("document_degraded", note, path)
    return [{"type": "text", "text": "\n".join([*head, f"[{note}]"])}]


def _decoded_text(source: Base64Source) -> str | None:
    if not source.media_type.startswith("text/"):
        return None
    try:
        return base64.b64decode(source.data, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


_DOCUMENT_BLOCKS: dict[str, type[TextBlock] | type[ImageBlock]] = {
    "text": TextBlock,
    "image": ImageBlock,
}


def _content_document(source: ContentSource, head: list[str], path: str, ctx: ChatContext) -> Parts:
    parts: Parts = [{"type": "text", "text": "\n".join(head)}] if head else []
    if isinstance(source.content, str):
        return [*parts, {"type": "text", "text": source.content}] if source.content else parts
    for k, raw in enumerate(source.content):
        inner = f"{path}.source.content[{k}]"
        model = _DOCUMENT_BLOCKS.get(str(raw.get("type")))
        if model is None:
            ctx.note("unknown_block_dropped", f"{raw.get('type')!r} in a content document", inner)
            continue
        try:
            parts += user_parts(model.parse(raw), inner, ctx)
        except InvalidInput as exc:
            raise InvalidInput(exc.problem, f"{inner}.{exc.path}".rstrip(".")) from None
    return parts
