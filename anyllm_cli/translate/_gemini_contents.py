"""The request side's `contents` for `messages_via_gemini`, and the context they share.

`build_contents()` turns the Messages conversation into Gemini contents: user / model roles with
same-role turns merged, system text moved to the system instruction, "gemini:" thinking replayed
as thought parts or signatures on the next part, media as inlineData / fileData or a text note, and
every model turn's calls answered by function responses in the next user content. `GeminiOptions`
and `Ctx` live here so that this module and `messages_via_gemini` (which re-exports the options)
share them without an import cycle. The field mapping is the "Request" table there.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
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
    MessagesRequest,
    MidConvSystemBlock,
    RedactedThinkingBlock,
    SearchResultBlock,
    ServerToolResultBlock,
    ServerToolUseBlock,
    TextBlock,
    TextSource,
    ThinkingBlock,
    ToolReferenceBlock,
    ToolResultBlock,
    ToolUseBlock,
    URLSource,
)
from anyllm_cli.translate._gemini_reply import SIGNATURE_PREFIX, split_tool_id
from anyllm_cli.translate.degradation import Degradation


def _identity(name: str) -> str:
    return name


@dataclass(frozen=True, slots=True)
class GeminiOptions:
    map_model: Callable[[str], str] = _identity
    max_output_tokens: int | None = None  # clamp max_tokens to this
    call_ids: bool = (
        True  # send functionCall.id / functionResponse.id (Gemini API v1beta takes them)
    )
    file_urls: bool = True  # image / PDF URLs as fileData (the upstream fetches them); else a note
    thinking_levels: bool | None = None  # effort as thinkingLevel; None: not for gemini-1.x/2.x
    signature_fallback: str | None = None  # e.g. "skip_thought_signature_validator"


@dataclass(slots=True)
class Ctx:
    options: GeminiOptions
    degradations: list[Degradation] = field(default_factory=list)
    recorded: set[str] = field(default_factory=set)
    system: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # tool_use id -> tool name

    def note(self, code: str, detail: str, path: str = "") -> None:
        self.degradations.append(Degradation(code, detail, path))

    def once(self, code: str, detail: str, path: str = "") -> None:
        if code not in self.recorded:
            self.recorded.add(code)
            self.note(code, detail, path)


Part_ = dict[str, Any]


def build_contents(req: MessagesRequest, ctx: Ctx) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, msg in enumerate(req.messages):
        path = f"messages[{i}]"
        blocks = msg.content
        if isinstance(blocks, str):
            blocks = [TextBlock(type="text", text=blocks)]
        if msg.role == "system":
            texts = _block_texts(blocks, path, ctx)
            if texts:
                _move_to_system(texts, path, ctx)
            continue
        if msg.role == "assistant":
            parts = _model_parts(blocks, path, ctx)
        else:
            parts = _user_parts(blocks, path, ctx)
        if not parts:
            ctx.note("empty_message_dropped", "nothing sendable was left", path)
            continue
        role = "model" if msg.role == "assistant" else "user"
        if out and out[-1]["role"] == role:
            out[-1]["parts"] += parts
        else:
            out.append({"role": role, "parts": parts})
    if out and out[-1]["role"] == "model" and not _calls(out[-1]):
        where = f"messages[{len(req.messages) - 1}]"
        ctx.note("assistant_prefill_unsupported", "Gemini answers after it, not from it", where)
    out = _pair_responses(out, ctx)
    if not ctx.options.call_ids:
        for content in out:
            for part in content["parts"]:
                (part.get("functionCall") or part.get("functionResponse") or {}).pop("id", None)
    return out


def _move_to_system(texts: list[str], path: str, ctx: Ctx) -> None:
    ctx.system += texts
    ctx.note("system_message_moved", "Gemini has one system instruction; appended to it", path)


def _block_texts(blocks: list[Any], path: str, ctx: Ctx) -> list[str]:
    texts = []
    for j, block in enumerate(blocks):
        if isinstance(block, TextBlock):
            if block.text:
                texts.append(block.text)
        else:
            ctx.note(
                "unknown_block_dropped", f"{block.type} in a system message", f"{path}.content[{j}]"
            )
    return texts


def _mid_conv(block: MidConvSystemBlock, path: str, ctx: Ctx) -> None:
    content = block.content
    texts = [content] if isinstance(content, str) else [b.text for b in content]
    texts = [t for t in texts if t]
    if texts:
        _move_to_system(texts, path, ctx)


def _calls(content: dict[str, Any]) -> list[dict[str, Any]]:
    return [p["functionCall"] for p in content["parts"] if "functionCall" in p]


def _model_parts(blocks: list[ContentBlock], path: str, ctx: Ctx) -> list[Part_]:
    parts: list[Part_] = []
    pending: str | None = None  # a signature waiting for the next part
    for j, block in enumerate(blocks):
        where = f"{path}.content[{j}]"
        part: Part_ | None = None
        if isinstance(block, ThinkingBlock):
            raw = _our_signature(block, where, ctx)
            if raw is None:
                continue
            if pending is not None:
                parts.append({"text": "", "thoughtSignature": pending})
            pending = None
            if block.thinking:
                parts.append({"text": block.thinking, "thought": True, "thoughtSignature": raw})
            else:
                pending = raw
            continue
        if isinstance(block, TextBlock):
            if block.text or pending is not None:
                part = {"text": block.text}
        elif isinstance(block, ToolUseBlock):
            call_id, carried = split_tool_id(block.id)
            part = {"functionCall": {"name": block.name, "args": block.input, "id": call_id}}
            if carried and pending is None:
                part["thoughtSignature"] = carried
        elif isinstance(block, MidConvSystemBlock):
            _mid_conv(block, where, ctx)
        elif isinstance(block, RedactedThinkingBlock):
            ctx.note("redacted_thinking_dropped", "encrypted thinking is Anthropic's only", where)
        else:
            _drop(block, where, ctx)
        if part is not None:
            if pending is not None:
                part["thoughtSignature"] = pending
                pending = None
            parts.append(part)
    if pending is not None:
        parts.append({"text": "", "thoughtSignature": pending})
    fallback = ctx.options.signature_fallback
    first_call = next((p for p in parts if "functionCall" in p), None)
    if fallback and first_call is not None and "thoughtSignature" not in first_call:
        first_call["thoughtSignature"] = fallback
        ctx.note("thought_signature_fallback", "a call without a Gemini signature", path)
    return parts


def _our_signature(block: ThinkingBlock, path: str, ctx: Ctx) -> str | None:
    """The Gemini signature a thinking block carries, or None when it is dropped (and noted)."""
    signature = block.signature or ""
    if signature.startswith(SIGNATURE_PREFIX) and len(signature) > len(SIGNATURE_PREFIX):
        return signature[len(SIGNATURE_PREFIX) :]
    if signature:
        ctx.note("foreign_thinking_dropped", "a signature Gemini did not make is not sent", path)
    elif block.thinking:
        ctx.once("unsigned_thinking_dropped", "thinking without a Gemini signature is not sent")
    return None


def _drop(block: Any, path: str, ctx: Ctx) -> None:
    if isinstance(block, ServerToolUseBlock | ServerToolResultBlock | ContainerUploadBlock):
        ctx.note("server_tool_dropped", f"{block.type} belongs to an Anthropic server tool", path)
    else:
        ctx.note("unknown_block_dropped", f"{block.type} block cannot be sent", path)


def _user_parts(blocks: list[ContentBlock], path: str, ctx: Ctx) -> list[Part_]:
    """Function responses first (as Anthropic's tool results are), then everything else."""
    responses: list[Part_] = []
    rest: list[Part_] = []
    for j, block in enumerate(blocks):
        where = f"{path}.content[{j}]"
        if isinstance(block, ToolResultBlock):
            response, moved = _tool_result(block, where, ctx)
            responses.append(response)
            rest += moved
        elif isinstance(block, MidConvSystemBlock):
            _mid_conv(block, where, ctx)
        else:
            rest += _user_block(block, where, ctx)
    return responses + rest


def _tool_result(block: ToolResultBlock, path: str, ctx: Ctx) -> tuple[Part_, list[Part_]]:
    texts: list[str] = []
    moved: list[Part_] = []
    if isinstance(block.content, str):
        texts.append(block.content)
    elif block.content:
        for k, inner in enumerate(block.content):
            for part in _user_block(inner, f"{path}.content[{k}]", ctx):
                if "text" in part:
                    texts.append(part["text"])
                else:
                    moved.append(part)
    if moved:
        ctx.note("tool_result_attachment_moved", "media follow the function response", path)
        texts.append(f"[{len(moved)} attachment(s) follow this result]")
    text = "\n\n".join(t for t in texts if t)
    name = ctx.names.get(block.tool_use_id)
    if name is None:
        ctx.note("orphan_tool_result", f"{block.tool_use_id} answers no tool_use", path)
        return {"text": f"[result of tool call {block.tool_use_id}]\n{text}"}, moved
    response = {"error": text} if block.is_error else {"result": text}
    return {
        "functionResponse": {
            "name": name,
            "response": response,
            "id": split_tool_id(block.tool_use_id)[0],
        }
    }, moved


_IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
_IMAGE_TYPES |= {".gif": "image/gif", ".webp": "image/webp", ".heic": "image/heic"}


def _extension(url: str) -> str:
    tail = url.split("?", 1)[0].split("#", 1)[0].rsplit("/", 1)[-1]
    return "." + tail.rsplit(".", 1)[-1].lower() if "." in tail else ""


def _user_block(block: ContentBlock, path: str, ctx: Ctx) -> list[Part_]:
    if isinstance(block, TextBlock):
        return [{"text": block.text}] if block.text else []
    if isinstance(block, ImageBlock):
        return [_image(block, path, ctx)]
    if isinstance(block, DocumentBlock):
        return _document(block, path, ctx)
    if isinstance(block, SearchResultBlock):
        lines = [f"Search result: {block.title}", f"Source: {block.source}"]
        return [{"text": "\n".join(lines + [b.text for b in block.content])}]
    if isinstance(block, ToolReferenceBlock):
        return [{"text": f"[tool reference: {block.tool_name}]"}]
    _drop(block, path, ctx)
    return []


def _image(block: ImageBlock, path: str, ctx: Ctx) -> Part_:
    source = block.source
    if isinstance(source, Base64Source):
        return {"inlineData": {"mimeType": source.media_type, "data": source.data}}
    if isinstance(source, URLSource):
        mime = _IMAGE_TYPES.get(_extension(source.url))
        if mime and ctx.options.file_urls:
            ctx.note("image_url_as_file_data", "the upstream must fetch the URL itself", path)
            return {"fileData": {"mimeType": mime, "fileUri": source.url}}
        ctx.note("image_degraded", "an image URL Gemini cannot take", path)
        return {"text": f"[image at {source.url} could not be attached]"}
    ctx.note("image_degraded", "Anthropic file ids cannot cross providers", path)
    return {"text": f"[image {source.file_id} could not be attached]"}


def _document(block: DocumentBlock, path: str, ctx: Ctx) -> list[Part_]:
    source = block.source
    head = [t for t in (block.title and f"Document: {block.title}", block.context) if t]
    lead: list[Part_] = [{"text": "\n".join(head)}] if head else []
    if isinstance(source, Base64Source):
        text = _decoded_text(source)
        if text is not None:
            return [{"text": "\n".join([*head, text])}]
        return [*lead, {"inlineData": {"mimeType": source.media_type, "data": source.data}}]
    if isinstance(source, TextSource):
        return [{"text": "\n".join([*head, source.data])}] if head or source.data else []
    if isinstance(source, ContentSource):
        return _content_document(source, lead, path, ctx)
    if isinstance(source, URLSource):
        if _extension(source.url) == ".pdf" and ctx.options.file_urls:
            part = {"fileData": {"mimeType": "application/pdf", "fileUri": source.url}}
            ctx.note("document_url_as_file_data", "the upstream must fetch the URL itself", path)
            return [*lead, part]
        note = f"document at {source.url} was not attached: Gemini cannot take it"
    else:
        assert isinstance(source, FileSource)
        note = f"document file {source.file_id} was not attached: file ids cannot cross providers"
    ctx.note("document_degraded", note, path)
    return [{"text": "\n".join([*head, f"[{note}]"])}]


def _decoded_text(source: Base64Source) -> str | None:
    if not source.media_type.startswith("text/"):
        return None
    try:
        return base64.b64decode(source.data, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _content_document(source: ContentSource, lead: list[Part_], path: str, ctx: Ctx) -> list[Part_]:
    if isinstance(source.content, str):
        return [*lead, {"text": source.content}] if source.content else lead
    parts = list(lead)
    for k, raw in enumerate(source.content):
        inner = f"{path}.source.content[{k}]"
        model = {"text": TextBlock, "image": ImageBlock}.get(str(raw.get("type")))
        if model is None:
            ctx.note("unknown_block_dropped", f"{raw.get('type')!r} in a content document", inner)
            continue
        try:
            parts += _user_block(model.parse(raw), inner, ctx)  # type: ignore[attr-defined]
        except InvalidInput as exc:
            raise InvalidInput(exc.problem, f"{inner}.{exc.path}".rstrip(".")) from None
    return parts


def _pair_responses(contents: list[dict[str, Any]], ctx: Ctx) -> list[dict[str, Any]]:
    """Each model turn's calls answered in the next user content, in the calls' order.

    Gemini wants as many function responses as calls, right after them. A missing one is written
    as an error; a response that answers no call of the turn before becomes text.
    """
    out: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    for given in contents:
        content = given
        if content["role"] == "user":
            content = {"role": "user", "parts": _answer(pending, content["parts"], ctx)}
            pending = []
        elif pending:
            out.append({"role": "user", "parts": _answer(pending, [], ctx)})
            pending = []
        if content["role"] == "model":
            pending = _calls(content)
        out.append(content)
    if pending:
        out.append({"role": "user", "parts": _answer(pending, [], ctx)})
    return out


def _answer(calls: list[dict[str, Any]], parts: list[Part_], ctx: Ctx) -> list[Part_]:
    by_id: dict[str, Part_] = {}
    rest: list[Part_] = []
    for part in parts:
        response = part.get("functionResponse")
        if response is None:
            rest.append(part)
        elif any(c["id"] == response["id"] for c in calls) and response["id"] not in by_id:
            by_id[response["id"]] = part
        else:
            ctx.note("orphan_tool_result", f"{response['id']} answers no call of the turn before")
            text = json.dumps(response["response"], ensure_ascii=False)
            rest.append({"text": f"[result of tool call {response['id']}]\n{text}"})
    answered: list[Part_] = []
    for call in calls:
        found = by_id.get(call["id"])
        if found is None:
            ctx.note("tool_result_missing", f"{call['id']} had no tool_result; one was written")
            response = {"error": "tool result missing"}
            found = {"functionResponse": {"name": call["name"], "response": response}}
            found["functionResponse"]["id"] = call["id"]
        answered.append(found)
    return answered + rest
