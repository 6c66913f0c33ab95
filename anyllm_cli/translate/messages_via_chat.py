"""Anthropic Messages clients, OpenAI Chat Completions upstreams: requests out, responses back.

`request()` turns a Messages request into a Chat Completions body; `response()` turns a completion
into a Messages `Message`. Both are pure; every lossy step is a `Degradation`. What we give up:
signatures (thinking is replayed as plain `reasoning_content`), prompt-cache breakpoints (OpenAI
caches by itself), server tools, and the exact place of text between tool calls in a turn.

One signature does survive: a tool call's `extra_content.google.thought_signature` (Gemini's
OpenAI-compatible endpoint; Gemini 3 refuses the next turn without it) rides in the tool_use id
as `<id>__gsig_<base64url>` (see `messages_via_gemini`) and goes back on that call.

This module builds the body's top-level fields; its private siblings do the rest and it re-exports
their public names: `_chat_context` (ChatOptions, ChatContext), `_chat_tools`, `_chat_content`
(user blocks as parts), `_chat_messages` (the message list) and `_chat_reply` (the response side).

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

import hashlib
from typing import Any

from anyllm_cli.errors import InvalidInput
from anyllm_cli.models.anthropic import MessagesRequest, ToolResultBlock
from anyllm_cli.translate._chat_content import tool_result_message, user_parts
from anyllm_cli.translate._chat_context import ChatContext, ChatOptions, chat_tool_id
from anyllm_cli.translate._chat_messages import messages
from anyllm_cli.translate._chat_reply import parse_arguments, response, stop_reason, usage
from anyllm_cli.translate._chat_tools import DEFINED_TOOLS, SERVER_TOOLS, chat_tool, tools
from anyllm_cli.translate.degradation import Translated

__all__ = [
    "DEFINED_TOOLS",
    "SERVER_TOOLS",
    "ChatContext",
    "ChatOptions",
    "chat_tool",
    "chat_tool_id",
    "parse_arguments",
    "request",
    "response",
    "scan_marks",
    "stop_reason",
    "tool_result_message",
    "usage",
    "user_parts",
]

_DEFAULT_OPTIONS = ChatOptions()


# -- request: the body ------------------------------------------------------------------------------


def request(
    req: MessagesRequest, options: ChatOptions = _DEFAULT_OPTIONS
) -> Translated[dict[str, Any]]:
    """An OpenAI Chat Completions request body for this Messages request."""
    ctx = ChatContext(options)
    _scan_request(req, ctx)
    body: dict[str, Any] = {"model": options.map_model(req.model), "messages": messages(req, ctx)}
    body.update(_limits(req, ctx))
    body.update(tools(req, ctx))
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
