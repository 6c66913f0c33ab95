"""Anthropic Messages clients, OpenAI Chat Completions upstreams: requests out, responses back.

`request()` turns a Messages request into a Chat Completions body; `response()` turns a completion
into a Messages `Message`. Both are pure; every lossy step is a `Degradation`. What we give up:
signatures (thinking is replayed as plain `reasoning_content`), prompt-cache breakpoints (OpenAI
caches by itself), server tools, and the exact place of text between tool calls in a turn.

Request (Anthropic -> OpenAI)

| Anthropic                              | OpenAI Chat                                  | degradation code            |
|----------------------------------------|----------------------------------------------|-----------------------------|
| model                                  | model (options.map_model)                    |                             |
| system (string or text blocks)         | first system message, blocks joined "\\n\\n" |                             |
| role "system" / mid_conv_system block  | system message at that place                 |                             |
| cache_control (anywhere)               | dropped, recorded once per request           | cache_control_dropped       |
| citations (text/document/search)       | dropped, recorded once per request           | citations_dropped           |
| text block ("" dropped)                | text; all-text user turns become one string  |                             |
| image base64 / url                     | image_url data: URL / url                    |                             |
| image file id                          | text note                                    | image_degraded              |
| document PDF base64                    | file part (file_data data URL) if file_parts | document_degraded otherwise |
| document text / content / base64 text  | text (title and context as leading lines)    |                             |
| document url / file id                 | text note naming it                          | document_degraded           |
| search_result                          | text (title, source, content)                |                             |
| tool_use                               | assistant tool_calls, arguments=json.dumps   |                             |
| tool_result                            | tool message right after the assistant turn, | tool_result_missing,        |
|                                        | before the user's other content; is_error -> | orphan_tool_result          |
|                                        | "[tool error] " prefix; images and files go  |                             |
|                                        | to the following user message, with a note   |                             |
| tool ids not ^[A-Za-z0-9_-]{1,40}$     | sanitized[:29] + "_" + sha256[:10]           | tool_id_rewritten           |
| thinking                               | assistant[options.reasoning_field], joined   | thinking_dropped if None    |
| redacted_thinking                      | dropped                                      | redacted_thinking_dropped   |
| server_tool_use, *_tool_result,        | dropped                                      | server_tool_dropped         |
| container_upload                       |                                              |                             |
| unknown block                          | dropped                                      | unknown_block_dropped       |
| message left empty                     | dropped                                      | empty_message_dropped       |
| final assistant message (prefill)      | kept; Chat has no prefill                    | assistant_prefill_unsupported |
| consecutive user / assistant messages  | merged (some chat templates need alternation)|                             |
| max_tokens                             | max_tokens (max_completion_tokens when       | max_tokens_clamped          |
|                                        | reasoning_model), clamped to 1..max_output   |                             |
| temperature, top_p                     | same; dropped when reasoning_model           | temperature_dropped, top_p_dropped |
| stop_sequences                         | stop (first 4)                               | stop_sequences_truncated    |
| top_k                                  | dropped                                      | top_k_dropped               |
| custom tool                            | function tool; input_schema -> parameters,   |                             |
|                                        | "$schema" removed, type/properties ensured   |                             |
| bash_/text_editor_/memory_/computer_*  | function tool with a written-out schema      | anthropic_tool_schema_synthesized |
| web_search_/web_fetch_/code_execution_ | dropped                                      | server_tool_dropped         |
| tool_search_tool_*, mcp_toolset        |                                              |                             |
| other schema-less tool types           | dropped                                      | unknown_tool_dropped        |
| tool_choice auto / any / tool / none   | "auto" / "required" / {function:{name}} /    | tool_choice_dropped (named  |
|                                        | "none"; omitted when no tool is left         | tool was dropped)           |
| disable_parallel_tool_use              | parallel_tool_calls: false                   |                             |
| thinking enabled, budget_tokens        | reasoning_effort: <=4096 low, <=16384        | thinking_budget_mapped      |
|                                        | medium, else high (no budget: medium)        |                             |
| thinking adaptive + output_config.effort | reasoning_effort low/medium/high;          | effort_reduced              |
|                                        | xhigh/max -> high; no effort -> omitted      |                             |
| effort without thinking                | dropped                                      | effort_dropped              |
| output_config.format json_schema       | response_format json_schema, name "output"   | output_format_dropped (other) |
| metadata.user_id                       | user; over 64 chars -> its sha256 hex        | user_id_hashed              |
| (options.prompt_cache_key)             | prompt_cache_key                             |                             |
| stream                                 | stream + stream_options.include_usage        |                             |
| service_tier, context_management       | dropped                                      | service_tier_dropped,       |
|                                        |                                              | context_management_dropped  |
| other top-level fields                 | dropped                                      | unsupported_field_dropped   |
| (reasoning_model) system messages      | developer role                               |                             |

Response (OpenAI -> Anthropic)

| OpenAI Chat                            | Anthropic Message                            | degradation code            |
|----------------------------------------|----------------------------------------------|-----------------------------|
| id                                     | "msg_" + id (sha256 of the body if empty)    |                             |
| (requested_model argument)             | model                                        |                             |
| reasoning_content / reasoning /        | leading thinking block, signature "" (the    |                             |
| reasoning_details[].text               | SDK type needs a string; never a fake value) |                             |
| content                                | text block                                   |                             |
| refusal                                | text block, stop_reason "refusal"            |                             |
| tool_calls / function_call             | tool_use blocks, arguments parsed leniently  | tool_arguments_invalid      |
| tool call without id                   | "toolu_" + sha256(upstream id, index, call)  | tool_call_id_derived        |
| finish_reason                          | stop_reason via stop_reason()                |                             |
| usage                                  | usage via usage()                            | usage_missing               |
| no choices / extra choices             | empty content / first choice only            | no_choices, extra_choices_dropped |
| annotations, audio                     | dropped                                      | response_field_dropped      |
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
    Message,
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
from anyllm_cli.models.openai_chat import ChatResponse, ResponseMessage, ToolCall
from anyllm_cli.translate.degradation import Degradation, Translated


def _identity(name: str) -> str:
    return name


@dataclass(frozen=True, slots=True)
class ChatOptions:
    map_model: Callable[[str], str] = _identity
    file_parts: bool = True  # upstream accepts {"type":"file"} parts (PDF); else degrade
    max_output_tokens: int | None = None  # clamp max_tokens to this
    prompt_cache_key: str | None = None  # sent as prompt_cache_key
    include_usage: bool = True  # stream_options.include_usage when streaming
    reasoning_field: str | None = "reasoning_content"  # assistant field for thinking history
    reasoning_model: bool = False  # o-series: max_completion_tokens, no sampling, developer role


_DEFAULT_OPTIONS = ChatOptions()


@dataclass(slots=True)
class ChatContext:
    """What one translation carries along: options, the degradations so far, rewritten ids."""

    options: ChatOptions
    degradations: list[Degradation] = field(default_factory=list)
    recorded: set[str] = field(default_factory=set)
    rewritten: set[str] = field(default_factory=set)

    def note(self, code: str, detail: str, path: str = "") -> None:
        self.degradations.append(Degradation(code, detail, path))

    def once(self, code: str, detail: str, path: str = "") -> None:
        if code not in self.recorded:
            self.recorded.add(code)
            self.note(code, detail, path)

    def call_id(self, raw: str, path: str) -> str:
        new = chat_tool_id(raw)
        if new != raw and raw not in self.rewritten:
            self.rewritten.add(raw)
            self.note("tool_id_rewritten", f"{raw!r} -> {new!r} (OpenAI ids: <=40 chars)", path)
        return new


# -- request: the body ------------------------------------------------------------------------------


def request(
    req: MessagesRequest, options: ChatOptions = _DEFAULT_OPTIONS
) -> Translated[dict[str, Any]]:
    """An OpenAI Chat Completions request body for this Messages request."""
    ctx = ChatContext(options)
    _scan_request(req, ctx)
    body: dict[str, Any] = {"model": options.map_model(req.model), "messages": _messages(req, ctx)}
    body.update(_limits(req, ctx))
    body.update(_tools(req, ctx))
    body.update(_reasoning(req, ctx))
    body.update(_response_format(req, ctx))
    body.update(_identity_fields(req, ctx))
    if req.stream:
        body["stream"] = True
        if options.include_usage:
            body["stream_options"] = {"include_usage": True}
    _dropped_fields(req, ctx)
    return Translated(body, ctx.degradations)


def scan_marks(req: MessagesRequest) -> tuple[list[Any], int, bool]:
    """Every block of a request (system, messages, inside tool results), how many cache
    breakpoints it sets, and whether it asks for or replays citations. Shared by the routes to
    upstreams that have neither."""
    blocks: list[Any] = list(req.system) if isinstance(req.system, list) else []
    for msg in req.messages:
        if isinstance(msg.content, list):
            blocks += msg.content
    for block in blocks:
        if isinstance(block, ToolResultBlock) and isinstance(block.content, list):
            blocks += block.content  # the loop sees the appended blocks too
    marked = [b for b in [*blocks, *(req.tools or [])] if getattr(b, "cache_control", None)]
    count = len(marked) + bool((req.model_extra or {}).get("cache_control"))
    return blocks, count, any(_cites(b) for b in blocks)


def _scan_request(req: MessagesRequest, ctx: ChatContext) -> None:
    """Cache breakpoints and citations have no Chat equivalent: one record each per request."""
    _, count, cites = scan_marks(req)
    if count:
        ctx.once("cache_control_dropped", f"{count} cache breakpoint(s) dropped")
    if cites:
        ctx.once("citations_dropped", "citations cannot be requested from or replayed to Chat")


def _cites(block: Any) -> bool:
    citations = getattr(block, "citations", None)
    if isinstance(citations, dict):
        return bool(citations.get("enabled"))
    return bool(citations)


def _limits(req: MessagesRequest, ctx: ChatContext) -> dict[str, Any]:
    opts = ctx.options
    out: dict[str, Any] = {}
    if req.max_tokens < 0:
        raise InvalidInput("must be >= 0", "max_tokens")
    limit = req.max_tokens
    if opts.max_output_tokens is not None and limit > opts.max_output_tokens:
        limit = opts.max_output_tokens
    limit = max(limit, 1)
    if limit != req.max_tokens:
        ctx.note("max_tokens_clamped", f"{req.max_tokens} -> {limit}", "max_tokens")
    out["max_completion_tokens" if opts.reasoning_model else "max_tokens"] = limit
    for name in ("temperature", "top_p"):
        value = getattr(req, name)
        if value is None:
            continue
        if opts.reasoning_model:
            ctx.note(f"{name}_dropped", "reasoning models take no sampling parameters", name)
        else:
            out[name] = value
    if req.top_k is not None:
        ctx.note("top_k_dropped", "Chat Completions has no top_k", "top_k")
    stops = [s for s in req.stop_sequences or [] if s]
    if len(stops) > 4:
        ctx.note("stop_sequences_truncated", f"kept 4 of {len(stops)}", "stop_sequences")
    if stops:
        out["stop"] = stops[:4]
    return out


def _identity_fields(req: MessagesRequest, ctx: ChatContext) -> dict[str, Any]:
    out: dict[str, Any] = {}
    user_id = req.metadata.user_id if req.metadata else None
    if user_id:
        if len(user_id) > 64:
            ctx.note(
                "user_id_hashed", "user_id over 64 chars sent as its sha256", "metadata.user_id"
            )
            user_id = hashlib.sha256(user_id.encode()).hexdigest()
        out["user"] = user_id
    if ctx.options.prompt_cache_key:
        out["prompt_cache_key"] = ctx.options.prompt_cache_key
    return out


def _dropped_fields(req: MessagesRequest, ctx: ChatContext) -> None:
    if req.service_tier is not None:
        ctx.note("service_tier_dropped", "Anthropic service tiers do not apply", "service_tier")
    if req.context_management is not None:
        ctx.note(
            "context_management_dropped", "no Chat equivalent for context editing",
            "context_management",
        )  # fmt: skip
    extra = req.model_extra or {}
    if extra.get("mcp_servers"):
        ctx.note("server_tool_dropped", "MCP servers run at Anthropic only", "mcp_servers")
    handled = {"cache_control", "mcp_servers", "output_format"}
    rest = sorted(k for k, v in extra.items() if k not in handled and v is not None)
    if rest:
        ctx.note("unsupported_field_dropped", ", ".join(rest))


# -- request: reasoning, structured output ----------------------------------------------------------

_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}


def _reasoning(req: MessagesRequest, ctx: ChatContext) -> dict[str, Any]:
    thinking = req.thinking.type if req.thinking else None
    effort = req.output_config.effort if req.output_config else None
    if thinking == "enabled":
        budget = req.thinking.budget_tokens if req.thinking else None
        if budget is None:
            return {"reasoning_effort": "medium"}
        mapped = "low" if budget <= 4096 else "medium" if budget <= 16384 else "high"
        ctx.note("thinking_budget_mapped", f"budget {budget} -> effort {mapped}", "thinking")
        return {"reasoning_effort": mapped}
    if effort is None:
        return {}
    if thinking != "adaptive":
        ctx.note(
            "effort_dropped", "effort without thinking has no Chat equivalent", "output_config"
        )
        return {}
    level = _EFFORTS.get(effort)
    if level is None:
        ctx.note("effort_dropped", f"unknown effort {effort!r}", "output_config.effort")
        return {}
    if level != effort:
        ctx.note("effort_reduced", f"effort {effort} -> {level}", "output_config.effort")
    return {"reasoning_effort": level}


def _response_format(req: MessagesRequest, ctx: ChatContext) -> dict[str, Any]:
    fmt = req.output_config.format if req.output_config else None
    fmt = fmt or (req.model_extra or {}).get("output_format")  # the older beta location
    if not fmt:
        return {}
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = fmt.get("schema")
        if not isinstance(schema, dict):
            raise InvalidInput("json_schema format needs a schema object", "output_config.format")
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": schema},
            }
        }
    ctx.note("output_format_dropped", f"unsupported format {fmt!r}", "output_config.format")
    return {}


# -- request: tools ---------------------------------------------------------------------------------

SERVER_TOOLS = ("web_search_", "web_fetch_", "code_execution_", "tool_search_tool_", "mcp_toolset")
_STR = {"type": "string"}


def _enum(*values: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


_INT = {"type": "integer"}
_POINT = {"type": "array", "items": _INT, "minItems": 2, "maxItems": 2}
_FILE_EDIT = {
    "path": _STR,
    "file_text": _STR,
    "old_str": _STR,
    "new_str": _STR,
    "insert_line": _INT,
    "insert_text": _STR,
    "view_range": {"type": "array", "items": _INT},
}
# Anthropic-defined client tools carry no schema (Claude is trained on it). Written out here:
# prefix -> (description, properties, required).
DEFINED_TOOLS: dict[str, tuple[str, dict[str, Any], list[str]]] = {
    "bash_": (
        "Run a command in a persistent bash shell.",
        {"command": _STR, "restart": {"type": "boolean"}},
        [],
    ),
    "text_editor_": (
        "View, create and edit text files.",
        {
            "command": _enum("view", "create", "str_replace", "insert", "undo_edit"),
            **_FILE_EDIT,
        },
        ["command", "path"],
    ),
    "memory_": (
        "Store and read files under /memories that persist between conversations.",
        {
            "command": _enum("view", "create", "str_replace", "insert", "delete", "rename"),
            **_FILE_EDIT,
            "old_path": _STR,
            "new_path": _STR,
        },
        ["command"],
    ),
    "computer_": (
        "Use the mouse and keyboard and take screenshots of a computer screen.",
        {
            "action": _STR,
            "coordinate": _POINT,
            "start_coordinate": _POINT,
            "text": _STR,
            "scroll_direction": _enum("up", "down", "left", "right"),
            "scroll_amount": _INT,
            "duration": {"type": "number"},
            "region": {"type": "array", "items": _INT, "minItems": 4, "maxItems": 4},
        },
        ["action"],
    ),
}


def _tools(req: MessagesRequest, ctx: ChatContext) -> dict[str, Any]:
    tools: list[dict[str, Any]] = []
    for i, tool in enumerate(req.tools or []):
        function = chat_tool(tool, f"tools[{i}]", ctx)
        if function is not None:
            tools.append({"type": "function", "function": function})
    out: dict[str, Any] = {"tools": tools} if tools else {}
    choice = req.tool_choice
    if choice is None or not tools:
        return out
    names = {t["function"]["name"] for t in tools}
    if choice.type == "tool":
        if not choice.name:
            raise InvalidInput("a tool choice of type 'tool' needs a name", "tool_choice.name")
        if choice.name in names:
            out["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
        else:
            ctx.note("tool_choice_dropped", f"tool {choice.name!r} is not sent", "tool_choice")
    else:
        out["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[choice.type]
    if choice.disable_parallel_tool_use:
        out["parallel_tool_calls"] = False
    return out


def chat_tool(tool: Tool, path: str, ctx: ChatContext) -> dict[str, Any] | None:
    kind = tool.type or "custom"
    if kind.startswith(SERVER_TOOLS):
        ctx.note("server_tool_dropped", f"{kind} runs at Anthropic only", path)
        return None
    if kind == "custom" or tool.input_schema is not None:
        function: dict[str, Any] = {"name": tool.name}
        if tool.description:
            function["description"] = tool.description
        function["parameters"] = _schema(tool.input_schema or {})
        if tool.strict is not None:
            function["strict"] = tool.strict
        return function
    for prefix, (description, properties, required) in DEFINED_TOOLS.items():
        if kind.startswith(prefix):
            ctx.note(
                "anthropic_tool_schema_synthesized", f"{kind} sent with a written schema", path
            )
            schema: dict[str, Any] = {"type": "object", "properties": properties}
            if required:
                schema["required"] = required
            return {
                "name": tool.name,
                "description": _describe(description, tool),
                "parameters": schema,
            }
    ctx.note("unknown_tool_dropped", f"tool type {kind!r} has no schema", path)
    return None


def _describe(description: str, tool: Tool) -> str:
    extra = tool.model_extra or {}
    width, height = extra.get("display_width_px"), extra.get("display_height_px")
    if width and height:
        description += f" The screen is {width}x{height} pixels."
    return description


def _schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Anthropic input schemas are object schemas; make that explicit and drop the `$schema` hint."""
    out = {k: v for k, v in schema.items() if k != "$schema"}
    out.setdefault("type", "object")
    if out["type"] == "object":
        out.setdefault("properties", {})
    return out


# -- request: messages ------------------------------------------------------------------------------

Parts = list[dict[str, Any]]


def _messages(req: MessagesRequest, ctx: ChatContext) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    system = req.system
    if isinstance(system, list):
        system = _join(b.text for b in system)
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
        text = _join(_texts(blocks, path, ctx))
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


def _join(texts: Any) -> str:
    return "\n\n".join(t for t in texts if t)


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
    text = content if isinstance(content, str) else _join(b.text for b in content)
    return [_system_message(text, ctx)] if text else []


def _user_message(parts: Parts) -> list[dict[str, Any]]:
    if not parts:
        return []
    if all(p["type"] == "text" for p in parts):
        return [{"role": "user", "content": _join(p["text"] for p in parts)}]
    return [{"role": "user", "content": parts}]


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
    text = _join(texts)
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
    }


def _assistant_message(
    texts: list[str], reasoning: list[str], calls: list[dict[str, Any]], ctx: ChatContext
) -> list[dict[str, Any]]:
    field_name = ctx.options.reasoning_field
    thought = _join(reasoning)
    if thought and not field_name:
        ctx.once("thinking_dropped", "no reasoning field is configured for this upstream")
        thought = ""
    content = _join(texts)
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
        return _join([a, b])
    as_parts = [x if isinstance(x, list) else [{"type": "text", "text": x}] for x in (a, b)]
    return as_parts[0] + as_parts[1]


def _merge_assistant(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    merged = {**a, **b}
    merged["content"] = _join([a.get("content") or "", b.get("content") or ""]) or None
    calls = (a.get("tool_calls") or []) + (b.get("tool_calls") or [])
    if calls:
        merged["tool_calls"] = calls
    elif merged["content"] is None:
        merged["content"] = ""
    for key in set(a) & set(b) - {"role", "content", "tool_calls"}:
        merged[key] = _join([a[key], b[key]])
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


_LEGAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def chat_tool_id(raw: str) -> str:
    """A tool-call id OpenAI accepts (<=40 chars of [A-Za-z0-9_-]); legal ids are kept as they are.

    Others become their first 29 legal characters, "_", and 10 hex digits of their sha256: the
    same input always maps to the same id, so calls and results still pair up.
    """
    if _LEGAL_ID.match(raw):
        return raw
    clean = re.sub(r"[^A-Za-z0-9_-]", "_", raw)[:29]
    return f"{clean}_{hashlib.sha256(raw.encode()).hexdigest()[:10]}"


# -- response ---------------------------------------------------------------------------------------


def response(resp: ChatResponse, *, requested_model: str) -> Translated[dict[str, Any]]:
    """An Anthropic Message for this Chat completion (first choice)."""
    degradations: list[Degradation] = []
    content: list[dict[str, Any]] = []
    finish: str | None = None
    refused = False
    if not resp.choices:
        degradations.append(
            Degradation("no_choices", "the upstream returned no choices", "choices")
        )
    else:
        if len(resp.choices) > 1:
            detail = f"kept 1 of {len(resp.choices)} choices"
            degradations.append(Degradation("extra_choices_dropped", detail, "choices"))
        choice = resp.choices[0]
        finish = choice.finish_reason
        content, refused = _response_content(resp, choice.message, degradations)
    has_calls = any(block["type"] == "tool_use" for block in content)
    if resp.usage is None:
        degradations.append(Degradation("usage_missing", "the upstream reported no usage", "usage"))
    body = {
        "id": _message_id(resp),
        "type": "message",
        "role": "assistant",
        "model": requested_model,
        "content": content,
        "stop_reason": "refusal" if refused else stop_reason(finish, has_calls),
        "stop_sequence": None,
        "usage": usage(resp.usage.dump() if resp.usage else None),
    }
    return Translated(body, degradations)


def _message_id(resp: ChatResponse) -> str:
    if resp.id:
        return f"msg_{resp.id}"
    digest = hashlib.sha256(json.dumps(resp.dump(), sort_keys=True).encode()).hexdigest()
    return f"msg_{digest[:24]}"


def _response_content(
    resp: ChatResponse, message: ResponseMessage, degradations: list[Degradation]
) -> tuple[list[dict[str, Any]], bool]:
    """Content blocks (thinking, text, refusal text, tool uses) and whether the model refused."""
    blocks: list[dict[str, Any]] = []
    thought = message.reasoning_content or message.reasoning or _reasoning_details(message)
    if thought:
        blocks.append({"type": "thinking", "thinking": thought, "signature": ""})
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    if message.refusal:
        blocks.append({"type": "text", "text": message.refusal})
    calls = list(message.tool_calls or [])
    legacy = (message.model_extra or {}).get("function_call")
    if not calls and isinstance(legacy, dict) and isinstance(legacy.get("name"), str):
        legacy = {"name": legacy["name"], "arguments": str(legacy.get("arguments") or "")}
        calls.append(ToolCall.parse({"id": "", "function": legacy}))
    for index, call in enumerate(calls):
        blocks.append(_tool_use(resp, call, index, degradations))
    for key in ("annotations", "audio"):
        if (message.model_extra or {}).get(key):
            path = f"choices[0].message.{key}"
            degradations.append(Degradation("response_field_dropped", f"{key} dropped", path))
    return blocks, bool(message.refusal)


def _reasoning_details(message: ResponseMessage) -> str:
    details = (message.model_extra or {}).get("reasoning_details")
    if not isinstance(details, list):
        return ""
    texts = [d.get("text") for d in details if isinstance(d, dict)]
    return "".join(t for t in texts if isinstance(t, str))


def _tool_use(
    resp: ChatResponse, call: ToolCall, index: int, degradations: list[Degradation]
) -> dict[str, Any]:
    path = f"choices[0].message.tool_calls[{index}]"
    arguments, degraded = parse_arguments(call.function.arguments)
    if degraded:
        detail = "arguments are not a JSON object; kept under _raw"
        degradations.append(Degradation("tool_arguments_invalid", detail, path))
    call_id = call.id
    if not call_id:
        seed = f"{resp.id}|{resp.created}|{index}|{call.function.name}|{call.function.arguments}"
        call_id = "toolu_" + hashlib.sha256(seed.encode()).hexdigest()[:24]
        degradations.append(Degradation("tool_call_id_derived", f"id {call_id} derived", path))
    return {"type": "tool_use", "id": call_id, "name": call.function.name, "input": arguments}


# -- shared with the stream translator -------------------------------------------------------------

# OpenAI finish_reason -> Anthropic stop_reason
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def stop_reason(finish_reason: str | None, has_tool_calls: bool) -> str:
    """Tool calls win over any finish_reason (servers send "stop" with forced tool calls)."""
    if has_tool_calls and finish_reason != "length":
        return "tool_use"
    return _STOP_REASONS.get(finish_reason or "stop", "end_turn")


def usage(chat_usage: dict[str, Any] | None) -> dict[str, int]:
    """Anthropic usage from OpenAI usage: `input_tokens` excludes cached tokens, as Anthropic's does."""
    chat_usage = chat_usage or {}
    prompt = _int(chat_usage.get("prompt_tokens"))
    details = chat_usage.get("prompt_tokens_details") or {}
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    # DeepSeek reports its cache hits at the top level.
    cached = cached or _int(chat_usage.get("prompt_cache_hit_tokens"))
    cached = min(cached, prompt)
    return {
        "input_tokens": prompt - cached,
        "output_tokens": _int(chat_usage.get("completion_tokens")),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_arguments(text: str | None) -> tuple[dict[str, Any], bool]:
    """Tool-call arguments (a JSON string) as an object. Returns (input, degraded).

    Empty -> {}; a ```json fence is unwrapped; a non-object or invalid JSON is kept whole under
    `_raw` (never dropped) and flagged as degraded.
    """
    if text is None or not text.strip():
        return {}, False
    candidate = text
    match = _FENCE.match(text)
    if match:
        candidate = match.group(1)
    try:
        value = json.loads(candidate)
    except ValueError:
        return {"_raw": text}, True
    if isinstance(value, dict):
        return value, False
    return {"_raw": text}, True
