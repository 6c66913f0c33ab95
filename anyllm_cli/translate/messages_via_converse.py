"""Anthropic Messages clients, Amazon Bedrock Converse upstreams: requests out, responses back.

`request()` turns a Messages request into a Converse input (`modelId` included, as botocore's input
shape has it: the backend moves it into the URL); `response()` turns a Converse output into a
Messages `Message`. Both are pure; every lossy step is a `Degradation`. Claude on Bedrock is better
served by InvokeModel (the Anthropic body itself); this route is for the other models, and for
Claude when the caller wants one API. What we give up: URL/file sources, server tools, citations,
Anthropic-defined tools, structured output, and (for non-Anthropic models) top_k and thinking.

Request (Anthropic -> Converse)

| Anthropic                              | Converse                                      | degradation code            |
|----------------------------------------|-----------------------------------------------|-----------------------------|
| model                                  | modelId (options.map_model)                   |                             |
| system string / text blocks            | system [{text}], cachePoint after marked ones |                             |
| role "system" msg, mid_conv_system     | appended to system                            | system_message_moved        |
| text ("" dropped)                      | {text}                                        |                             |
| cache_control on a block / tool        | {cachePoint: {type: default[, ttl]}} after it |                             |
| image base64 png/jpeg/gif/webp         | {image: {format, source: {bytes}}}            |                             |
| image url / file / other media type    | text note                                     | image_degraded              |
| document base64 pdf / text source      | {document: {format pdf|txt, name, source}}    |                             |
| document url / file / content          | text note / text                              | document_degraded           |
| search_result                          | text                                          | search_result_flattened     |
| citations                              | dropped                                       | citations_dropped           |
| tool_use                               | {toolUse: {toolUseId, name, input}}           |                             |
| tool_result (is_error)                 | {toolResult: {toolUseId, content, status}}    |                             |
| tool ids not [A-Za-z0-9_-]{1,64}       | sanitized[:53] + "_" + sha256[:10]            | tool_id_rewritten           |
| thinking with a signature              | {reasoningContent: {reasoningText: {text,     |                             |
|                                        | signature}}} (Anthropic models only)          |                             |
| thinking without signature / elsewhere | dropped                                       | thinking_dropped            |
| redacted_thinking                      | {reasoningContent: {redactedContent}}         | redacted_thinking_dropped   |
| server tool blocks, container_upload,  | dropped                                       | server_tool_dropped,        |
| tool_reference, unknown blocks         |                                               | unknown_block_dropped       |
| consecutive same-role messages         | merged (Converse wants alternation)           |                             |
| message left empty                     | dropped                                       | empty_message_dropped       |
| max_tokens                             | inferenceConfig.maxTokens, clamped            | max_tokens_clamped          |
| temperature, top_p, stop_sequences     | inferenceConfig temperature, topP, stopSeq... |                             |
| top_k                                  | additionalModelRequestFields.top_k (Claude)   | top_k_dropped otherwise     |
| thinking (enabled / adaptive)          | additionalModelRequestFields.thinking (Claude)| thinking_dropped otherwise  |
| output_config.effort                   | dropped                                       | effort_dropped              |
| options.anthropic_beta                 | additionalModelRequestFields.anthropic_beta   |                             |
| custom tools                           | toolConfig.tools[].toolSpec {inputSchema.json}|                             |
| server / Anthropic-defined tools       | dropped                                       | server_tool_dropped,        |
|                                        |                                               | unknown_tool_dropped        |
| tool_choice auto / any / tool          | toolChoice {auto} / {any} / {tool: {name}}    | tool_choice_dropped         |
| tool_choice none                       | toolConfig omitted (kept when history has     | tool_choice_none_unsupported|
|                                        | tool blocks: Converse requires it then)       |                             |
| history tool blocks, no tools          | toolSpecs synthesized from the names used     | tool_definitions_synthesized|
| disable_parallel_tool_use              | dropped                                       | parallel_tool_use_unsupported |
| output_config.format, metadata,        | dropped                                       | output_format_dropped,      |
| service_tier, context_management,      |                                               | metadata_dropped,           |
| other top-level fields                 |                                               | unsupported_field_dropped   |

Response (Converse -> Anthropic)

| Converse                               | Anthropic Message                             | degradation code            |
|----------------------------------------|-----------------------------------------------|-----------------------------|
| (no id)                                | "msg_bdrk_" + sha256 of the body              |                             |
| output.message.content text / toolUse  | text / tool_use                               |                             |
| reasoningContent text+signature        | thinking (signature "" when none)             |                             |
| reasoningContent redactedContent       | redacted_thinking                             |                             |
| other blocks (image, citations, ...)   | dropped (citationsContent: its text kept)     | response_block_dropped      |
| stopReason                             | stop_reason via STOP_REASONS                  | stop_reason_unmapped        |
| additionalModelResponseFields          | stop_sequence                                 |                             |
|   .stop_sequence                       |                                               |                             |
| usage inputTokens / outputTokens /     | input_tokens / output_tokens /                | usage_missing               |
| cacheRead/WriteInputTokens             | cache_read / cache_creation_input_tokens      |                             |
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from anyllm_cli.errors import ErrorKind, InvalidInput
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
    Tool,
    ToolResultBlock,
    ToolUseBlock,
)
from anyllm_cli.translate.degradation import Degradation, Translated


def _identity(name: str) -> str:
    return name


@dataclass(frozen=True, slots=True)
class ConverseOptions:
    map_model: Callable[[str], str] = _identity
    max_output_tokens: int | None = None  # clamp max_tokens to this
    anthropic_beta: tuple[str, ...] = ()  # sent in additionalModelRequestFields (Claude only)
    # None: decide by the model id ("anthropic." / "claude" in it)
    anthropic_model: bool | None = None


_DEFAULT_OPTIONS = ConverseOptions()
_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_LEGAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SERVER_TOOLS = ("web_search_", "web_fetch_", "code_execution_", "tool_search_tool_", "mcp_toolset")

# Bedrock error names (HTTP x-amzn-ErrorType, or a stream's exception member) -> (kind, status).
_BEDROCK_ERRORS: dict[str, tuple[ErrorKind, int]] = {
    "validationexception": (ErrorKind.INVALID_REQUEST, 400),
    "conflictexception": (ErrorKind.INVALID_REQUEST, 400),
    "servicequotaexceededexception": (ErrorKind.RATE_LIMIT, 429),
    "accessdeniedexception": (ErrorKind.PERMISSION, 403),
    "unrecognizedclientexception": (ErrorKind.AUTHENTICATION, 401),
    "invalidsignatureexception": (ErrorKind.AUTHENTICATION, 401),
    "expiredtokenexception": (ErrorKind.AUTHENTICATION, 401),
    "resourcenotfoundexception": (ErrorKind.NOT_FOUND, 404),
    "modeltimeoutexception": (ErrorKind.TIMEOUT, 504),
    "modelerrorexception": (ErrorKind.API_ERROR, 502),
    "modelstreamerrorexception": (ErrorKind.API_ERROR, 502),
    "throttlingexception": (ErrorKind.RATE_LIMIT, 429),
    "modelnotreadyexception": (ErrorKind.OVERLOADED, 529),
    "internalserverexception": (ErrorKind.API_ERROR, 500),
    "serviceunavailableexception": (ErrorKind.OVERLOADED, 529),
}


def bedrock_error(name: str) -> tuple[ErrorKind, int] | None:
    """Classify `ThrottlingException` / `throttlingException` (any case); None when unknown."""
    return _BEDROCK_ERRORS.get(name.split(":", maxsplit=1)[0].strip().lower())


def is_anthropic_model(model_id: str) -> bool:
    lowered = model_id.lower()
    return "anthropic." in lowered or "claude" in lowered


@dataclass(slots=True)
class _Ctx:
    options: ConverseOptions
    anthropic: bool
    degradations: list[Degradation] = field(default_factory=list)
    recorded: set[str] = field(default_factory=set)
    tool_names: dict[str, None] = field(default_factory=dict)  # names used in the history
    documents: int = 0
    rewritten: set[str] = field(default_factory=set)

    def note(self, code: str, detail: str, path: str = "") -> None:
        self.degradations.append(Degradation(code, detail, path))

    def once(self, code: str, detail: str, path: str = "") -> None:
        if code not in self.recorded:
            self.recorded.add(code)
            self.note(code, detail, path)

    def tool_id(self, raw: str, path: str) -> str:
        if _LEGAL_ID.match(raw):
            return raw
        clean = re.sub(r"[^A-Za-z0-9_-]", "_", raw)[:53]
        new = f"{clean}_{hashlib.sha256(raw.encode()).hexdigest()[:10]}"
        if raw not in self.rewritten:
            self.rewritten.add(raw)
            self.note("tool_id_rewritten", f"{raw!r} -> {new!r} (Converse ids)", path)
        return new


# -- request ----------------------------------------------------------------------------------------


def request(
    req: MessagesRequest, options: ConverseOptions = _DEFAULT_OPTIONS
) -> Translated[dict[str, Any]]:
    """A Converse input (`modelId` + the JSON body members) for this Messages request."""
    model_id = options.map_model(req.model)
    anthropic = options.anthropic_model
    ctx = _Ctx(options, is_anthropic_model(model_id) if anthropic is None else anthropic)
    system = _system(req, ctx)
    messages = _messages(req, system, ctx)
    body: dict[str, Any] = {"modelId": model_id, "messages": messages}
    if system:
        body["system"] = system
    body["inferenceConfig"] = _inference(req, ctx)
    tool_config = _tool_config(req, ctx)
    if tool_config:
        body["toolConfig"] = tool_config
    extra = _additional(req, ctx)
    if extra:
        body["additionalModelRequestFields"] = extra
        if ctx.anthropic:
            body["additionalModelResponseFieldPaths"] = ["/stop_sequence"]
    _dropped_fields(req, ctx)
    return Translated(body, ctx.degradations)


def _cache_point(marker: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not marker:
        return []
    point: dict[str, Any] = {"type": "default"}
    if marker.get("ttl") in ("5m", "1h"):
        point["ttl"] = marker["ttl"]
    return [{"cachePoint": point}]


def _system(req: MessagesRequest, ctx: _Ctx) -> list[dict[str, Any]]:
    if isinstance(req.system, str):
        return [{"text": req.system}] if req.system else []
    out: list[dict[str, Any]] = []
    for block in req.system or []:
        if block.text:
            out.append({"text": block.text})
        out += _cache_point(block.cache_control)
        if block.citations:
            ctx.once("citations_dropped", "Converse cannot replay citations")
    return out


def _messages(
    req: MessagesRequest, system: list[dict[str, Any]], ctx: _Ctx
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
    block: ContentBlock, role: str, path: str, system: list[dict[str, Any]], ctx: _Ctx
) -> list[dict[str, Any]]:
    if getattr(block, "citations", None):
        ctx.once("citations_dropped", "Converse cannot replay citations", path)
    marker = getattr(block, "cache_control", None)
    if isinstance(block, TextBlock):
        return ([{"text": block.text}] if block.text else []) + _cache_point(marker)
    if isinstance(block, ImageBlock):
        return _image(block, path, ctx) + _cache_point(marker)
    if isinstance(block, DocumentBlock):
        return _document(block, path, ctx) + _cache_point(marker)
    if isinstance(block, SearchResultBlock):
        ctx.note("search_result_flattened", "search result sent as text", path)
        text = "\n".join([block.title, block.source, *(t.text for t in block.content)])
        return [{"text": text}, *_cache_point(marker)]
    if isinstance(block, ToolUseBlock):
        ctx.tool_names[block.name] = None
        use = {"toolUseId": ctx.tool_id(block.id, path), "name": block.name, "input": block.input}
        return [{"toolUse": use}, *_cache_point(marker)]
    if isinstance(block, ToolResultBlock):
        return [_tool_result(block, path, ctx), *_cache_point(marker)]
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
    block: ThinkingBlock | RedactedThinkingBlock, role: str, path: str, ctx: _Ctx
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


def _image(block: ImageBlock, path: str, ctx: _Ctx) -> list[dict[str, Any]]:
    source = block.source
    if isinstance(source, Base64Source) and source.media_type in _IMAGE_FORMATS:
        fmt = _IMAGE_FORMATS[source.media_type]
        return [{"image": {"format": fmt, "source": {"bytes": source.data}}}]
    what = source.media_type if isinstance(source, Base64Source) else source.type
    note = f"an image ({what}) was not attached: Converse takes png/jpeg/gif/webp bytes only"
    ctx.note("image_degraded", note, path)
    return [{"text": f"[{note}]"}]


def _document(block: DocumentBlock, path: str, ctx: _Ctx) -> list[dict[str, Any]]:
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


def _tool_result(block: ToolResultBlock, path: str, ctx: _Ctx) -> dict[str, Any]:
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


def _inference(req: MessagesRequest, ctx: _Ctx) -> dict[str, Any]:
    max_tokens = req.max_tokens
    limit = ctx.options.max_output_tokens
    if max_tokens < 1 or (limit is not None and max_tokens > limit):
        clamped = max(1, min(max_tokens, limit or max_tokens))
        ctx.note("max_tokens_clamped", f"{max_tokens} -> {clamped}", "max_tokens")
        max_tokens = clamped
    out: dict[str, Any] = {"maxTokens": max_tokens}
    if req.temperature is not None:
        out["temperature"] = req.temperature
    if req.top_p is not None:
        out["topP"] = req.top_p
    stops = [s for s in req.stop_sequences or [] if s]
    if stops:
        out["stopSequences"] = stops
    return out


def _additional(req: MessagesRequest, ctx: _Ctx) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if req.top_k is not None:
        if ctx.anthropic:
            out["top_k"] = req.top_k
        else:
            ctx.note("top_k_dropped", "Converse has no top_k for this model", "top_k")
    if req.thinking is not None and req.thinking.type != "disabled":
        if ctx.anthropic:
            out["thinking"] = req.thinking.dump()
        else:
            ctx.note("thinking_dropped", "no portable reasoning switch in Converse", "thinking")
    if req.output_config is not None and req.output_config.effort is not None:
        ctx.note("effort_dropped", "effort is not sent through Converse", "output_config.effort")
    if ctx.options.anthropic_beta and ctx.anthropic:
        out["anthropic_beta"] = list(ctx.options.anthropic_beta)
    return out


def _tool_config(req: MessagesRequest, ctx: _Ctx) -> dict[str, Any]:
    tools: list[dict[str, Any]] = []
    for i, tool in enumerate(req.tools or []):
        spec = _tool(tool, f"tools[{i}]", ctx)
        if spec is not None:
            tools.append({"toolSpec": spec})
            tools += _cache_point(tool.cache_control)
    names = {t["toolSpec"]["name"] for t in tools if "toolSpec" in t}
    missing = [n for n in ctx.tool_names if n not in names]
    if missing:
        ctx.note(
            "tool_definitions_synthesized",
            f"Converse needs toolConfig for tool history; open schemas for {', '.join(missing)}",
            "tools",
        )
        open_schema = {"json": {"type": "object"}}
        tools += [{"toolSpec": {"name": n, "inputSchema": open_schema}} for n in missing]
    if not tools:
        return {}
    out: dict[str, Any] = {"tools": tools}
    choice = req.tool_choice
    if choice is None:
        return out
    if choice.type == "none":
        if ctx.tool_names:
            ctx.note(
                "tool_choice_none_unsupported",
                "Converse has no 'none'; tools kept (auto) because the history uses them",
                "tool_choice",
            )
            return out
        return {}
    if choice.type == "tool":
        if not choice.name:
            raise InvalidInput("a tool choice of type 'tool' needs a name", "tool_choice.name")
        if choice.name in names:
            out["toolChoice"] = {"tool": {"name": choice.name}}
        else:
            ctx.note("tool_choice_dropped", f"tool {choice.name!r} is not sent", "tool_choice")
    else:
        out["toolChoice"] = {choice.type: {}}
    if choice.disable_parallel_tool_use:
        ctx.note(
            "parallel_tool_use_unsupported",
            "Converse cannot forbid parallel tool calls",
            "tool_choice.disable_parallel_tool_use",
        )
    return out


def _tool(tool: Tool, path: str, ctx: _Ctx) -> dict[str, Any] | None:
    kind = tool.type or "custom"
    if kind.startswith(_SERVER_TOOLS):
        ctx.note("server_tool_dropped", f"{kind} runs at Anthropic only", path)
        return None
    if tool.input_schema is None and kind != "custom":
        ctx.note("unknown_tool_dropped", f"tool type {kind!r} has no schema", path)
        return None
    if not tool.name:
        raise InvalidInput("a custom tool needs a name", f"{path}.name")
    schema = {k: v for k, v in (tool.input_schema or {}).items() if k != "$schema"}
    schema.setdefault("type", "object")
    spec: dict[str, Any] = {"name": tool.name}
    if tool.description:
        spec["description"] = tool.description
    spec["inputSchema"] = {"json": schema}
    return spec


def _dropped_fields(req: MessagesRequest, ctx: _Ctx) -> None:
    fmt = req.output_config.format if req.output_config else None
    if fmt or (req.model_extra or {}).get("output_format"):
        ctx.note("output_format_dropped", "structured output is not sent", "output_config.format")
    if req.metadata is not None and req.metadata.user_id:
        ctx.note("metadata_dropped", "Converse has no user id", "metadata.user_id")
    if req.service_tier is not None:
        ctx.note("service_tier_dropped", "Anthropic service tiers do not apply", "service_tier")
    if req.context_management is not None:
        ctx.note("context_management_dropped", "no Converse equivalent", "context_management")
    extra = req.model_extra or {}
    rest = sorted(k for k, v in extra.items() if k not in ("output_format",) and v is not None)
    if rest:
        ctx.note("unsupported_field_dropped", ", ".join(rest))


# -- response ---------------------------------------------------------------------------------------

STOP_REASONS = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "guardrail_intervened": "refusal",
    "content_filtered": "refusal",
    "model_context_window_exceeded": "model_context_window_exceeded",
}


def stop_reason(reason: Any, degradations: list[Degradation]) -> str:
    """The Anthropic stop_reason; unknown values (malformed_*) become end_turn, and say so."""
    if isinstance(reason, str) and reason in STOP_REASONS:
        return STOP_REASONS[reason]
    detail = f"stopReason {reason!r} became end_turn"
    degradations.append(Degradation("stop_reason_unmapped", detail, "stopReason"))
    return "end_turn"


def usage(raw: Any) -> dict[str, int]:
    raw = raw if isinstance(raw, dict) else {}
    return {
        "input_tokens": _int(raw.get("inputTokens")),
        "output_tokens": _int(raw.get("outputTokens")),
        "cache_creation_input_tokens": _int(raw.get("cacheWriteInputTokens")),
        "cache_read_input_tokens": _int(raw.get("cacheReadInputTokens")),
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def response(body: dict[str, Any], *, requested_model: str) -> Translated[dict[str, Any]]:
    """An Anthropic Message for this Converse output."""
    if not isinstance(body, dict):
        raise InvalidInput("expected a JSON object", "")
    degradations: list[Degradation] = []
    output = body.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    blocks = message.get("content") if isinstance(message, dict) else None
    if not isinstance(blocks, list):
        raise InvalidInput("expected an array", "output.message.content")
    content = [b for i, raw in enumerate(blocks) for b in _response_block(raw, i, degradations)]
    if "usage" not in body:
        degradations.append(Degradation("usage_missing", "the upstream reported no usage", "usage"))
    extra = body.get("additionalModelResponseFields")
    stop_sequence = extra.get("stop_sequence") if isinstance(extra, dict) else None
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    anthropic = {
        "id": f"msg_bdrk_{digest[:24]}",
        "type": "message",
        "role": "assistant",
        "model": requested_model,
        "content": content,
        "stop_reason": stop_reason(body.get("stopReason"), degradations),
        "stop_sequence": stop_sequence if isinstance(stop_sequence, str) else None,
        "usage": usage(body.get("usage")),
    }
    return Translated(anthropic, degradations)


def _response_block(raw: Any, i: int, degradations: list[Degradation]) -> list[dict[str, Any]]:
    path = f"output.message.content[{i}]"
    if not isinstance(raw, dict):
        raise InvalidInput("expected an object", path)
    if isinstance(raw.get("text"), str):
        return [{"type": "text", "text": raw["text"]}] if raw["text"] else []
    use = raw.get("toolUse")
    if isinstance(use, dict):
        tool_input = use.get("input")
        if not isinstance(tool_input, dict):
            tool_input = {} if tool_input is None else {"_raw": tool_input}
        return [
            {"type": "tool_use", "id": str(use.get("toolUseId", "")), "name": str(use.get("name", "")),
             "input": tool_input}
        ]  # fmt: skip
    reasoning = raw.get("reasoningContent")
    if isinstance(reasoning, dict):
        if isinstance(reasoning.get("redactedContent"), str):
            return [{"type": "redacted_thinking", "data": reasoning["redactedContent"]}]
        text = reasoning.get("reasoningText") or {}
        return [
            {"type": "thinking", "thinking": str(text.get("text", "")),
             "signature": str(text.get("signature") or "")}
        ]  # fmt: skip
    cited = raw.get("citationsContent")
    if isinstance(cited, dict):
        degradations.append(Degradation("response_block_dropped", "citations dropped", path))
        parts = [c.get("text", "") for c in cited.get("content") or [] if isinstance(c, dict)]
        return [{"type": "text", "text": "".join(parts)}] if any(parts) else []
    kind = next(iter(raw), "empty")
    degradations.append(Degradation("response_block_dropped", f"{kind} block dropped", path))
    return []
