"""Anthropic Messages clients, Gemini `generateContent` upstreams: requests out, responses back.

`request()` turns a Messages request into a generateContent body; the model is not in the body but
in the URL: callers use `upstream_model(req, options)` (that is, `options.map_model(req.model)`) and
choose `:generateContent` or `:streamGenerateContent?alt=sse` from `req.stream`. `response()` turns
a GenerateContentResponse into a Messages `Message`. Both are pure; every lossy step is a
`Degradation`. What we give up: prompt-cache breakpoints, server tools, JSON-Schema keywords outside
Gemini's OpenAPI subset, the place of mid-conversation system text, and Anthropic signatures.

Thought signatures round-trip losslessly through the client. A Gemini `thoughtSignature` becomes a
thinking block's `signature`, written "gemini:<signature>": a thought part's on its own block; a
signature on any other part (a functionCall, a text part, an empty text part) on a thinking block
with empty text placed right before that part's block (or after the last block when the part had
nothing else). On the way back a "gemini:" thinking block with text becomes its thought part again,
and an empty one hands its signature to the next part of the turn (or, at the end of the turn, to
an empty text part). Signatures without the prefix are Anthropic's and are dropped; none is ever
made up (`GeminiOptions.signature_fallback` opts into Google's documented placeholder instead).

Request (Anthropic -> Gemini)

| Anthropic                              | Gemini                                       | degradation code            |
|----------------------------------------|----------------------------------------------|-----------------------------|
| model                                  | URL: upstream_model() = options.map_model    |                             |
| system (string or text blocks)         | systemInstruction.parts, one text per block  |                             |
| role "system" / mid_conv_system block  | appended to systemInstruction                | system_message_moved        |
| cache_control, citations               | dropped, recorded once per request           | cache_control_dropped,      |
|                                        |                                              | citations_dropped           |
| user / assistant                       | contents role "user" / "model"; consecutive  | empty_message_dropped       |
|                                        | same-role contents merged; empty ones dropped|                             |
| text block ("" dropped)                | {text}                                       |                             |
| image base64                           | {inlineData: {mimeType, data}}               |                             |
| image url                              | {fileData: {mimeType, fileUri}} (known image | image_url_as_file_data,     |
|                                        | extension and options.file_urls) else a note | image_degraded              |
| image file id                          | text note                                    | image_degraded              |
| document PDF base64                    | {inlineData: application/pdf}                |                             |
| document text / content / text/* b64   | text (title and context as leading lines)    |                             |
| document url (.pdf, file_urls) / other | fileData / text note                         | document_degraded           |
| search_result, tool_reference          | text                                         |                             |
| tool_use                               | {functionCall: {name, args, id}} (id only    |                             |
|                                        | with options.call_ids)                       |                             |
| tool_result                            | {functionResponse: {name (from the tool_use),| tool_result_missing,        |
|                                        | response: {"result": text} or {"error": ..}, | orphan_tool_result,         |
|                                        | id}}, first in the next user content, in the | tool_result_attachment_moved|
|                                        | calls' order; images/PDFs follow as parts    |                             |
| thinking, signature "gemini:<s>", text | {text, thought: true, thoughtSignature: s}   |                             |
| thinking, signature "gemini:<s>", ""   | thoughtSignature s on the next part          |                             |
| thinking, other signature              | dropped                                      | foreign_thinking_dropped    |
| thinking, no signature                 | dropped (once per request)                   | unsigned_thinking_dropped   |
| (signature_fallback) first call of a   | thoughtSignature = the fallback              | thought_signature_fallback  |
| model turn without one                 |                                              |                             |
| redacted_thinking                      | dropped                                      | redacted_thinking_dropped   |
| server tool blocks, container_upload   | dropped                                      | server_tool_dropped         |
| unknown block                          | dropped                                      | unknown_block_dropped       |
| final assistant message (prefill)      | kept; Gemini has no prefill                  | assistant_prefill_unsupported |
| max_tokens                             | generationConfig.maxOutputTokens, clamped    | max_tokens_clamped          |
| temperature, top_p, top_k              | temperature, topP, topK                      |                             |
| stop_sequences                         | stopSequences (first 5)                      | stop_sequences_truncated    |
| custom tool                            | tools[0].functionDeclarations[], schema via  | schema_keywords_dropped     |
|                                        | gemini_schema(); no properties -> no params  | tool_name_invalid           |
| bash_/text_editor_/memory_/computer_*  | declaration with a written-out schema        | anthropic_tool_schema_synthesized |
| server tools / other schema-less tools | dropped                                      | server_tool_dropped, unknown_tool_dropped |
| tool_choice auto / any / tool / none   | toolConfig.functionCallingConfig AUTO / ANY /| tool_choice_dropped         |
|                                        | ANY + allowedFunctionNames / NONE            |                             |
| disable_parallel_tool_use              | dropped (Gemini has no switch)               | parallel_tool_use_unsupported |
| thinking enabled, budget_tokens        | thinkingConfig {thinkingBudget, includeThoughts: true}                     |
| thinking adaptive (+ effort)           | thinkingConfig {includeThoughts: true,       | effort_reduced              |
|                                        | thinkingLevel LOW/HIGH} (Gemini 1.x/2.x:     |                             |
|                                        | thinkingBudget 1024/8192/24576)              |                             |
| thinking display "omitted"             | includeThoughts left out                     |                             |
| effort without thinking                | dropped                                      | effort_dropped              |
| output_config.format json_schema       | responseMimeType application/json +          | output_format_dropped       |
|                                        | responseSchema (gemini_schema)               |                             |
| metadata.user_id, service_tier,        | dropped                                      | user_id_dropped, ...        |
| context_management, other fields       |                                              | unsupported_field_dropped   |
| stream                                 | (the URL: streamGenerateContent?alt=sse)     |                             |

Response (Gemini -> Anthropic)

| Gemini                                 | Anthropic Message                            | degradation code            |
|----------------------------------------|----------------------------------------------|-----------------------------|
| responseId                             | "msg_" + responseId (sha256 of the body)     |                             |
| (requested_model argument)             | model                                        |                             |
| part thought: true                     | thinking block, signature "gemini:<s>" or "" |                             |
| thoughtSignature on another part       | thinking block "" with it, before the part   |                             |
| text                                   | text block ("" dropped)                      |                             |
| functionCall                           | tool_use; id kept when legal, else derived   | tool_call_id_derived        |
| inlineData, executableCode, ...        | dropped                                      | response_part_dropped       |
| finishReason                           | stop_reason via stop_reason()                | finish_reason_unmapped      |
| promptFeedback.blockReason             | text explaining it, stop_reason "refusal"    |                             |
| usageMetadata                          | usage via usage()                            | usage_missing               |
| no / extra candidates                  | empty content / first candidate only         | no_candidates, extra_candidates_dropped |
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
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
    Tool,
    ToolReferenceBlock,
    ToolResultBlock,
    ToolUseBlock,
    URLSource,
)
from anyllm_cli.models.gemini import GenerateContentResponse
from anyllm_cli.translate.degradation import Degradation, Translated
from anyllm_cli.translate.gemini_schema import gemini_schema
from anyllm_cli.translate.messages_via_chat import DEFINED_TOOLS, SERVER_TOOLS, scan_marks

SIGNATURE_PREFIX = "gemini:"


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


_DEFAULT_OPTIONS = GeminiOptions()


def upstream_model(req: MessagesRequest, options: GeminiOptions = _DEFAULT_OPTIONS) -> str:
    """The Gemini model id for the URL (`models/{model}:generateContent`)."""
    return options.map_model(req.model)


@dataclass(slots=True)
class _Ctx:
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

# -- request: the body ------------------------------------------------------------------------------


def request(
    req: MessagesRequest, options: GeminiOptions = _DEFAULT_OPTIONS
) -> Translated[dict[str, Any]]:
    """A generateContent body for this Messages request (the model goes in the URL)."""
    ctx = _Ctx(options)
    _scan_request(req, ctx)
    contents = _contents(req, ctx)
    body: dict[str, Any] = {"contents": contents}
    system = _system_texts(req) + ctx.system
    if system:
        body["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    body.update(_tools(req, ctx))
    generation = _generation(req, ctx)
    if generation:
        body["generationConfig"] = generation
    _dropped_fields(req, ctx)
    return Translated(body, ctx.degradations)


def _scan_request(req: MessagesRequest, ctx: _Ctx) -> None:
    blocks, count, cites = scan_marks(req)
    for block in blocks:
        if isinstance(block, ToolUseBlock):
            ctx.names.setdefault(block.id, block.name)
    if count:
        ctx.once("cache_control_dropped", f"{count} cache breakpoint(s) dropped")
    if cites:
        ctx.once("citations_dropped", "citations cannot be requested from or replayed to Gemini")


def _system_texts(req: MessagesRequest) -> list[str]:
    if isinstance(req.system, str):
        return [req.system] if req.system else []
    return [b.text for b in req.system or [] if b.text]


def _generation(req: MessagesRequest, ctx: _Ctx) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if req.max_tokens < 0:
        raise InvalidInput("must be >= 0", "max_tokens")
    limit = req.max_tokens
    cap = ctx.options.max_output_tokens
    if cap is not None and limit > cap:
        limit = cap
    limit = max(limit, 1)
    if limit != req.max_tokens:
        ctx.note("max_tokens_clamped", f"{req.max_tokens} -> {limit}", "max_tokens")
    out["maxOutputTokens"] = limit
    for name, wire in (("temperature", "temperature"), ("top_p", "topP"), ("top_k", "topK")):
        value = getattr(req, name)
        if value is not None:
            out[wire] = value
    stops = [s for s in req.stop_sequences or [] if s]
    if len(stops) > 5:
        ctx.note("stop_sequences_truncated", f"kept 5 of {len(stops)}", "stop_sequences")
    if stops:
        out["stopSequences"] = stops[:5]
    thinking = _thinking(req, ctx)
    if thinking:
        out["thinkingConfig"] = thinking
    out.update(_response_format(req, ctx))
    return out


_LEVELS = {"low": "LOW", "medium": "HIGH", "high": "HIGH", "xhigh": "HIGH", "max": "HIGH"}
_BUDGETS = {"low": 1024, "medium": 8192, "high": 24576, "xhigh": 24576, "max": 24576}
_OLD_GEMINI = re.compile(r"^(models/)?gemini-[12][.-]")


def _thinking(req: MessagesRequest, ctx: _Ctx) -> dict[str, Any]:
    kind = req.thinking.type if req.thinking else None
    effort = req.output_config.effort if req.output_config else None
    if kind not in ("enabled", "adaptive"):
        if effort is not None:
            ctx.note("effort_dropped", "effort without thinking is not sent", "output_config")
        return {}
    assert req.thinking is not None
    out: dict[str, Any] = {}
    if kind == "enabled" and req.thinking.budget_tokens is not None:
        out["thinkingBudget"] = req.thinking.budget_tokens
    elif kind == "adaptive" and effort is not None:
        if effort not in _LEVELS:
            ctx.note("effort_dropped", f"unknown effort {effort!r}", "output_config.effort")
        elif _uses_levels(req, ctx.options):
            level = _LEVELS[effort]
            if level.lower() != effort:
                ctx.note("effort_reduced", f"effort {effort} -> {level}", "output_config.effort")
            out["thinkingLevel"] = level
        else:
            out["thinkingBudget"] = _BUDGETS[effort]
    if req.thinking.display != "omitted":
        out["includeThoughts"] = True
    return out


def _uses_levels(req: MessagesRequest, options: GeminiOptions) -> bool:
    if options.thinking_levels is not None:
        return options.thinking_levels
    return not _OLD_GEMINI.match(upstream_model(req, options))


def _response_format(req: MessagesRequest, ctx: _Ctx) -> dict[str, Any]:
    fmt = req.output_config.format if req.output_config else None
    fmt = fmt or (req.model_extra or {}).get("output_format")
    if not fmt:
        return {}
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = fmt.get("schema")
        if not isinstance(schema, dict):
            raise InvalidInput("json_schema format needs a schema object", "output_config.format")
        converted, dropped = gemini_schema(schema)
        if dropped:
            detail = "dropped: " + ", ".join(dropped)
            ctx.note("schema_keywords_dropped", detail, "output_config.format.schema")
        return {"responseMimeType": "application/json", "responseSchema": converted}
    ctx.note("output_format_dropped", f"unsupported format {fmt!r}", "output_config.format")
    return {}


def _dropped_fields(req: MessagesRequest, ctx: _Ctx) -> None:
    if req.metadata is not None and req.metadata.user_id:
        ctx.note("user_id_dropped", "Gemini takes no end-user id", "metadata.user_id")
    if req.service_tier is not None:
        ctx.note("service_tier_dropped", "Anthropic service tiers do not apply", "service_tier")
    if req.context_management is not None:
        ctx.note(
            "context_management_dropped", "no Gemini equivalent for context editing",
            "context_management",
        )  # fmt: skip
    extra = req.model_extra or {}
    if extra.get("mcp_servers"):
        ctx.note("server_tool_dropped", "MCP servers run at Anthropic only", "mcp_servers")
    handled = {"cache_control", "mcp_servers", "output_format"}
    rest = sorted(k for k, v in extra.items() if k not in handled and v is not None)
    if rest:
        ctx.note("unsupported_field_dropped", ", ".join(rest))


# -- request: tools ---------------------------------------------------------------------------------

_GEMINI_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")


def _tools(req: MessagesRequest, ctx: _Ctx) -> dict[str, Any]:
    declarations: list[dict[str, Any]] = []
    for i, tool in enumerate(req.tools or []):
        declaration = _declaration(tool, f"tools[{i}]", ctx)
        if declaration is not None:
            declarations.append(declaration)
    out: dict[str, Any] = (
        {"tools": [{"functionDeclarations": declarations}]} if declarations else {}
    )
    choice = req.tool_choice
    if choice is None or not declarations:
        return out
    if choice.disable_parallel_tool_use:
        ctx.note(
            "parallel_tool_use_unsupported", "Gemini cannot be kept to one call per turn",
            "tool_choice.disable_parallel_tool_use",
        )  # fmt: skip
    config: dict[str, Any] = {
        "mode": {"auto": "AUTO", "any": "ANY", "none": "NONE"}.get(choice.type)
    }
    if choice.type == "tool":
        if not choice.name:
            raise InvalidInput("a tool choice of type 'tool' needs a name", "tool_choice.name")
        if choice.name not in {d["name"] for d in declarations}:
            ctx.note("tool_choice_dropped", f"tool {choice.name!r} is not sent", "tool_choice")
            return out
        config = {"mode": "ANY", "allowedFunctionNames": [choice.name]}
    out["toolConfig"] = {"functionCallingConfig": config}
    return out


def _declaration(tool: Tool, path: str, ctx: _Ctx) -> dict[str, Any] | None:
    kind = tool.type or "custom"
    if kind.startswith(SERVER_TOOLS):
        ctx.note("server_tool_dropped", f"{kind} runs at Anthropic only", path)
        return None
    description = tool.description
    schema = tool.input_schema
    if kind != "custom" and schema is None:
        written = next((v for k, v in DEFINED_TOOLS.items() if kind.startswith(k)), None)
        if written is None:
            ctx.note("unknown_tool_dropped", f"tool type {kind!r} has no schema", path)
            return None
        ctx.note("anthropic_tool_schema_synthesized", f"{kind} sent with a written schema", path)
        description = description or written[0]
        schema = {"type": "object", "properties": written[1]}
        if written[2]:
            schema["required"] = written[2]
    if not tool.name:
        raise InvalidInput("a tool needs a name", f"{path}.name")
    if not _GEMINI_NAME.match(tool.name):
        ctx.note("tool_name_invalid", f"{tool.name!r} is not a legal Gemini name", f"{path}.name")
    declaration: dict[str, Any] = {"name": tool.name}
    if description:
        declaration["description"] = description
    parameters, dropped = gemini_schema(schema or {"type": "object"})
    if dropped:
        detail = "dropped: " + ", ".join(dropped)
        ctx.note("schema_keywords_dropped", detail, f"{path}.input_schema")
    if parameters.get("properties") or parameters.get("type") != "OBJECT":
        declaration["parameters"] = parameters
    return declaration


# -- request: contents ------------------------------------------------------------------------------


def _contents(req: MessagesRequest, ctx: _Ctx) -> list[dict[str, Any]]:
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


def _move_to_system(texts: list[str], path: str, ctx: _Ctx) -> None:
    ctx.system += texts
    ctx.note("system_message_moved", "Gemini has one system instruction; appended to it", path)


def _block_texts(blocks: list[Any], path: str, ctx: _Ctx) -> list[str]:
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


def _mid_conv(block: MidConvSystemBlock, path: str, ctx: _Ctx) -> None:
    content = block.content
    texts = [content] if isinstance(content, str) else [b.text for b in content]
    texts = [t for t in texts if t]
    if texts:
        _move_to_system(texts, path, ctx)


def _calls(content: dict[str, Any]) -> list[dict[str, Any]]:
    return [p["functionCall"] for p in content["parts"] if "functionCall" in p]


def _model_parts(blocks: list[ContentBlock], path: str, ctx: _Ctx) -> list[Part_]:
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
            part = {"functionCall": {"name": block.name, "args": block.input, "id": block.id}}
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


def _our_signature(block: ThinkingBlock, path: str, ctx: _Ctx) -> str | None:
    """The Gemini signature a thinking block carries, or None when it is dropped (and noted)."""
    signature = block.signature or ""
    if signature.startswith(SIGNATURE_PREFIX) and len(signature) > len(SIGNATURE_PREFIX):
        return signature[len(SIGNATURE_PREFIX) :]
    if signature:
        ctx.note("foreign_thinking_dropped", "a signature Gemini did not make is not sent", path)
    elif block.thinking:
        ctx.once("unsigned_thinking_dropped", "thinking without a Gemini signature is not sent")
    return None


def _drop(block: Any, path: str, ctx: _Ctx) -> None:
    if isinstance(block, ServerToolUseBlock | ServerToolResultBlock | ContainerUploadBlock):
        ctx.note("server_tool_dropped", f"{block.type} belongs to an Anthropic server tool", path)
    else:
        ctx.note("unknown_block_dropped", f"{block.type} block cannot be sent", path)


def _user_parts(blocks: list[ContentBlock], path: str, ctx: _Ctx) -> list[Part_]:
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


def _tool_result(block: ToolResultBlock, path: str, ctx: _Ctx) -> tuple[Part_, list[Part_]]:
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
        "functionResponse": {"name": name, "response": response, "id": block.tool_use_id}
    }, moved


_IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
_IMAGE_TYPES |= {".gif": "image/gif", ".webp": "image/webp", ".heic": "image/heic"}


def _extension(url: str) -> str:
    tail = url.split("?", 1)[0].split("#", 1)[0].rsplit("/", 1)[-1]
    return "." + tail.rsplit(".", 1)[-1].lower() if "." in tail else ""


def _user_block(block: ContentBlock, path: str, ctx: _Ctx) -> list[Part_]:
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


def _image(block: ImageBlock, path: str, ctx: _Ctx) -> Part_:
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


def _document(block: DocumentBlock, path: str, ctx: _Ctx) -> list[Part_]:
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


def _content_document(
    source: ContentSource, lead: list[Part_], path: str, ctx: _Ctx
) -> list[Part_]:
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


def _pair_responses(contents: list[dict[str, Any]], ctx: _Ctx) -> list[dict[str, Any]]:
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


def _answer(calls: list[dict[str, Any]], parts: list[Part_], ctx: _Ctx) -> list[Part_]:
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


# -- response ---------------------------------------------------------------------------------------


def response(resp: GenerateContentResponse, *, requested_model: str) -> Translated[dict[str, Any]]:
    """An Anthropic Message for this Gemini response (first candidate)."""
    degradations: list[Degradation] = []
    content: list[dict[str, Any]] = []
    finish: str | None = None
    has_calls = False
    blocked = resp.promptFeedback.blockReason if resp.promptFeedback else None
    base = _id_base(resp)
    if blocked:
        content.append({"type": "text", "text": block_text(blocked)})
    elif not resp.candidates:
        degradations.append(
            Degradation("no_candidates", "the upstream returned no candidates", "candidates")
        )
    else:
        if len(resp.candidates) > 1:
            detail = f"kept 1 of {len(resp.candidates)} candidates"
            degradations.append(Degradation("extra_candidates_dropped", detail, "candidates"))
        candidate = resp.candidates[0]
        finish = candidate.finishReason
        parts = candidate.content.parts if candidate.content else None
        calls = 0
        for n, part in enumerate(parts or []):
            path = f"candidates[0].content.parts[{n}]"
            blocks = part_blocks(part.dump(), base, calls, path, degradations)
            calls += sum(b["type"] == "tool_use" for b in blocks)
            content += blocks
        has_calls = calls > 0
        if finish is not None and finish not in FINISH_REASONS:
            detail = f"finishReason {finish!r} became end_turn"
            if candidate.finishMessage:
                detail += f" ({candidate.finishMessage})"
            degradations.append(Degradation("finish_reason_unmapped", detail, "candidates[0]"))
    meta = resp.usageMetadata
    if meta is None:
        degradations.append(Degradation("usage_missing", "the upstream reported no usage"))
    body = {
        "id": f"msg_{base}",
        "type": "message",
        "role": "assistant",
        "model": requested_model,
        "content": content,
        "stop_reason": "refusal" if blocked else stop_reason(finish, has_calls),
        "stop_sequence": None,
        "usage": usage(meta.dump() if meta else None),
    }
    return Translated(body, degradations)


def _id_base(resp: GenerateContentResponse) -> str:
    clean = _NOT_ID.sub("_", resp.responseId or "")
    if clean:
        return clean
    digest = hashlib.sha256(json.dumps(resp.dump(), sort_keys=True).encode()).hexdigest()
    return digest[:24]


# -- shared with the stream translator -------------------------------------------------------------

_NOT_ID = re.compile(r"[^A-Za-z0-9_-]")
_LEGAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# Gemini finishReason -> Anthropic stop_reason
FINISH_REASONS = {
    "STOP": "end_turn",
    "MAX_TOKENS": "max_tokens",
    "SAFETY": "refusal",
    "RECITATION": "refusal",
    "PROHIBITED_CONTENT": "refusal",
    "BLOCKLIST": "refusal",
    "SPII": "refusal",
    "IMAGE_SAFETY": "refusal",
    "IMAGE_PROHIBITED_CONTENT": "refusal",
    "IMAGE_RECITATION": "refusal",
}


def stop_reason(finish_reason: str | None, has_calls: bool) -> str:
    """Gemini has no tool-call finish reason: calls make STOP (or a missing reason) tool_use."""
    mapped = FINISH_REASONS.get(finish_reason or "STOP", "end_turn")
    if has_calls and mapped == "end_turn":
        return "tool_use"
    return mapped


def block_text(reason: str) -> str:
    return f"[The prompt was blocked by Gemini (blockReason: {reason}); no answer was generated.]"


def usage(meta: dict[str, Any] | None) -> dict[str, int]:
    """Anthropic usage: input excludes the cached tokens; output includes the thoughts."""
    meta = meta or {}
    prompt = _int(meta.get("promptTokenCount"))
    cached = min(_int(meta.get("cachedContentTokenCount")), prompt)
    output = _int(meta.get("candidatesTokenCount")) + _int(meta.get("thoughtsTokenCount"))
    return {
        "input_tokens": prompt - cached,
        "output_tokens": output,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def tool_id(upstream: Any, base: str, ordinal: int) -> str:
    """The tool_use id: Gemini's own when Anthropic accepts it, else `toolu_<base>_<ordinal>`."""
    if isinstance(upstream, str) and _LEGAL_ID.match(upstream):
        return upstream
    return f"toolu_{base}_{ordinal}"


def signature_block(signature: str) -> dict[str, Any]:
    """A thinking block with no text that only carries a Gemini signature."""
    return {"type": "thinking", "thinking": "", "signature": SIGNATURE_PREFIX + signature}


def part_blocks(
    part: dict[str, Any], base: str, calls: int, path: str, degradations: list[Degradation]
) -> list[dict[str, Any]]:
    """The Anthropic blocks for one whole Gemini part (`calls`: tool uses before it)."""
    signature = part.get("thoughtSignature")
    signature = signature if isinstance(signature, str) and signature else None
    text = part.get("text")
    if part.get("thought") is True and isinstance(text, str):
        sig = SIGNATURE_PREFIX + signature if signature else ""
        return [{"type": "thinking", "thinking": text, "signature": sig}]
    lead = [signature_block(signature)] if signature else []
    call = part.get("functionCall")
    if isinstance(call, dict):
        call_id = tool_id(call.get("id"), base, calls)
        if call_id != call.get("id"):
            degradations.append(Degradation("tool_call_id_derived", f"id {call_id}", path))
        args = call.get("args") or {}
        return [*lead, {"type": "tool_use", "id": call_id, "name": call["name"], "input": args}]
    if isinstance(text, str):
        return [*lead, {"type": "text", "text": text}] if text else lead
    kinds = sorted(k for k in part if k not in ("thoughtSignature", "thought"))
    degradations.append(Degradation("response_part_dropped", f"{', '.join(kinds)} part", path))
    return lead
