"""OpenAI content parts as Anthropic content blocks, for `chat_via_messages.request`.

`content_blocks()` turns a message's string or parts into text / image / document blocks, keeping
only the kinds its place allows and honouring `cache_control` on parts (at most four breakpoints).
What it gives up: audio, OpenAI file ids, image detail, and media Anthropic cannot take, each with
a `Degradation`. The field mapping is the table in `chat_via_messages`, which re-exports
`IMAGE_TYPES`.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from anyllm_cli.errors import InvalidInput
from anyllm_cli.models.openai_chat import (
    ContentPart,
    FilePart,
    ImagePart,
    InputAudioPart,
    RefusalPart,
    TextPart,
)
from anyllm_cli.translate._messages_context import MessagesContext

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
MAX_CACHE_BREAKPOINTS = 4


_DATA_URL = re.compile(r"data:([^;,]*)((?:;[^;,]*)*),(.*)", re.DOTALL)


def content_blocks(
    content: str | list[ContentPart], path: str, ctx: MessagesContext, allowed: frozenset[str]
) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content.strip() else []
    out: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        where = f"{path}.content[{j}]"
        block = _part(part, where, ctx)
        if block is None:
            continue
        if block["type"] not in allowed:
            ctx.note("part_dropped", f"{block['type']} is not allowed here", where)
            continue
        _cache_control(part, block, where, ctx)
        out.append(block)
    return out


def _part(part: ContentPart, path: str, ctx: MessagesContext) -> dict[str, Any] | None:
    if isinstance(part, TextPart | RefusalPart):
        text = part.text if isinstance(part, TextPart) else part.refusal
        return {"type": "text", "text": text} if text.strip() else None  # blank text is refused
    if isinstance(part, ImagePart):
        return _image(part, path, ctx)
    if isinstance(part, FilePart):
        return _file(part, path, ctx)
    if isinstance(part, InputAudioPart):
        ctx.note("audio_dropped", "Anthropic takes no audio input", path)
        return None
    ctx.note("unknown_part_dropped", f"unknown part type {part.type!r}", path)
    return None


def _cache_control(
    part: ContentPart, block: dict[str, Any], path: str, ctx: MessagesContext
) -> None:
    """Clients that know Anthropic (OpenRouter, LiteLLM style) put cache_control on parts."""
    value = (part.model_extra or {}).get("cache_control")
    if value is None:
        return
    if not isinstance(value, dict) or value.get("type") != "ephemeral":
        ctx.note("cache_control_dropped", "only ephemeral cache_control exists", path)
        return
    if ctx.breakpoints >= MAX_CACHE_BREAKPOINTS:
        ctx.note("cache_control_dropped", "Anthropic allows at most 4 breakpoints", path)
        return
    ctx.breakpoints += 1
    block["cache_control"] = value


def _data_url(url: str, path: str) -> tuple[str, str]:
    match = _DATA_URL.fullmatch(url)
    if match is None or ";base64" not in match.group(2).lower():
        raise InvalidInput("a data URL must be base64-encoded (data:<type>;base64,...)", path)
    media = match.group(1).lower() or "application/octet-stream"
    return media, match.group(3)


def _image(part: ImagePart, path: str, ctx: MessagesContext) -> dict[str, Any] | None:
    url = part.image_url.url
    if part.image_url.detail not in (None, "auto"):
        ctx.note("image_detail_dropped", "Anthropic has no image detail level", path)
    if url.startswith("data:"):
        media, data = _data_url(url, f"{path}.image_url.url")
        media = "image/jpeg" if media == "image/jpg" else media
        if media not in IMAGE_TYPES:
            ctx.note("image_dropped", f"Anthropic takes no {media} images", path)
            return None
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    ctx.note("image_dropped", "only data: and http(s) image URLs can be sent", path)
    return None


def _file(part: FilePart, path: str, ctx: MessagesContext) -> dict[str, Any] | None:
    file = part.file
    if file.file_data is None:
        if file.file_id is None:
            raise InvalidInput("a file part needs file_data or file_id", f"{path}.file")
        ctx.note("file_id_dropped", "OpenAI file ids mean nothing to Anthropic", path)
        return None
    if file.file_data.startswith("data:"):
        media, data = _data_url(file.file_data, f"{path}.file.file_data")
    elif (file.filename or "").lower().endswith(".pdf"):
        media, data = "application/pdf", file.file_data
    else:
        ctx.note("file_dropped", "file_data without a media type", path)
        return None
    block: dict[str, Any] = {"type": "document"}
    if media == "application/pdf":
        block["source"] = {"type": "base64", "media_type": media, "data": data}
    elif media.startswith("text/"):
        try:
            text = base64.b64decode(data, validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            raise InvalidInput("file_data is not valid base64", f"{path}.file.file_data") from None
        block["source"] = {"type": "text", "media_type": "text/plain", "data": text}
    else:
        ctx.note("file_dropped", f"Anthropic documents cannot be {media}", path)
        return None
    if file.filename:
        block["title"] = file.filename
    return block
