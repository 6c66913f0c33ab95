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

from typing import Any

from anyllm_cli.errors import ErrorKind, InvalidInput
from anyllm_cli.models.anthropic import MessagesRequest, Tool
from anyllm_cli.translate._converse_content import cache_point, converse_messages, converse_system
from anyllm_cli.translate._converse_context import ConverseContext, ConverseOptions
from anyllm_cli.translate._converse_reply import STOP_REASONS, response, stop_reason, usage
from anyllm_cli.translate.degradation import Translated, clamp_max_tokens

__all__ = [
    "STOP_REASONS",
    "ConverseOptions",
    "bedrock_error",
    "is_anthropic_model",
    "request",
    "response",
    "stop_reason",
    "usage",
]

_DEFAULT_OPTIONS = ConverseOptions()


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


# -- request ----------------------------------------------------------------------------------------


def request(
    req: MessagesRequest, options: ConverseOptions = _DEFAULT_OPTIONS
) -> Translated[dict[str, Any]]:
    """A Converse input (`modelId` + the JSON body members) for this Messages request."""
    model_id = options.map_model(req.model)
    anthropic = options.anthropic_model
    ctx = ConverseContext(options, is_anthropic_model(model_id) if anthropic is None else anthropic)
    system = converse_system(req, ctx)
    messages = converse_messages(req, system, ctx)
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


def _inference(req: MessagesRequest, ctx: ConverseContext) -> dict[str, Any]:
    max_tokens, clamped = clamp_max_tokens(req.max_tokens, ctx.options.max_output_tokens)
    if clamped is not None:
        ctx.degradations.append(clamped)
    out: dict[str, Any] = {"maxTokens": max_tokens}
    if req.temperature is not None:
        out["temperature"] = req.temperature
    if req.top_p is not None:
        out["topP"] = req.top_p
    stops = [s for s in req.stop_sequences or [] if s]
    if stops:
        out["stopSequences"] = stops
    return out


def _additional(req: MessagesRequest, ctx: ConverseContext) -> dict[str, Any]:
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


def _tool_config(req: MessagesRequest, ctx: ConverseContext) -> dict[str, Any]:
    tools: list[dict[str, Any]] = []
    for i, tool in enumerate(req.tools or []):
        spec = _tool(tool, f"tools[{i}]", ctx)
        if spec is not None:
            tools.append({"toolSpec": spec})
            tools += cache_point(tool.cache_control)
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


def _tool(tool: Tool, path: str, ctx: ConverseContext) -> dict[str, Any] | None:
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


def _dropped_fields(req: MessagesRequest, ctx: ConverseContext) -> None:
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
