"""Anthropic Messages clients, OpenAI Responses upstreams: requests out, responses back.

`request()` turns a Messages request into a stateless (`store: false`) Responses body; `response()`
turns a Responses object into a Messages `Message`. Both are pure; every lossy step is a
`Degradation`. User content, documents, tool schemas and tool ids go through the Chat route's
helpers (`messages_via_chat`), so both routes treat them alike. What we give up: stop sequences and
top_k (Responses has neither), prompt-cache breakpoints, server tools, thinking signed by any other
provider, and the boundaries between reasoning summary parts (joined with a blank line).

Reasoning state survives a round trip through the client: a reasoning item's `id` and
`encrypted_content` travel in the thinking block's `signature` as `"resp:<id>:<encrypted_content>"`,
and only signatures with that prefix are ever sent back, as reasoning items with both (the API
requires `id` on an input reasoning item, `ResponseReasoningItemParam`, even with `store: false`).
Signatures written before the id was carried (`"resp:<encrypted_content>"`) still read; having no
id, their reasoning item is left out (`reasoning_id_missing`) rather than draw a 400. Real
Anthropic signatures never reach Responses.

The input items are built in `_responses_input` and the reply side lives in `_responses_reply`;
this module re-exports the names callers use (`ResponsesOptions`, `response`, `stop_reason`, ...).

Request (Anthropic -> Responses)

| Anthropic                              | OpenAI Responses                             | degradation code            |
|----------------------------------------|----------------------------------------------|-----------------------------|
| model                                  | model (options.map_model)                    |                             |
| system (string or text blocks)         | instructions, blocks joined "\\n\\n"         |                             |
| role "system" / mid_conv_system block  | system (developer) message at that place     |                             |
| cache_control, citations               | dropped, recorded once per request           | cache_control_dropped,      |
|                                        |                                              | citations_dropped           |
| consecutive same-role messages         | one turn (as Anthropic treats them)          |                             |
| user text / image / document / search  | message with input_text / input_image        | as the Chat route:          |
| result / tool_reference                | (detail "auto") / input_file (PDF) parts     | image_degraded,             |
|                                        | as the Chat route builds them                | document_degraded, ...      |
| document url (outside tool results)    | input_file with file_url                     |                             |
| assistant text                         | assistant message (string content), in order |                             |
| tool_use                               | function_call: call_id, arguments=json.dumps |                             |
| tool_result                            | function_call_output first in the turn;      | tool_result_missing,        |
|                                        | is_error -> "[tool error] " prefix; images   | orphan_tool_result          |
|                                        | and files -> a user message right after      |                             |
| tool ids not ^[A-Za-z0-9_-]{1,40}$     | rewritten as the Chat route does             | tool_id_rewritten           |
| thinking, signature "resp:<id>:<enc>"  | reasoning item: id, summary_text = thinking, | reasoning_without_output_   |
|                                        | encrypted_content = <enc>; dropped when      | dropped                     |
|                                        | nothing follows it in its turn               |                             |
| thinking, signature "resp:<enc>" (old) | dropped: no id to send                       | reasoning_id_missing        |
| thinking with any other signature      | dropped                                      | thinking_dropped            |
| redacted_thinking                      | dropped                                      | redacted_thinking_dropped   |
| server_tool_use, *_tool_result, ...    | dropped                                      | server_tool_dropped         |
| unknown block / message left empty     | dropped                                      | unknown_block_dropped,      |
|                                        |                                              | empty_message_dropped       |
| final assistant message (prefill)      | kept; Responses has no prefill               | assistant_prefill_unsupported |
| max_tokens                             | max_output_tokens, clamped to 16..max_output | max_tokens_clamped          |
| temperature, top_p                     | same; dropped when reasoning_model           | temperature_dropped, top_p_dropped |
| stop_sequences, top_k                  | dropped                                      | stop_sequences_dropped, top_k_dropped |
| custom / Anthropic-defined tools       | function tools (Chat route's schemas),       | anthropic_tool_schema_synthesized, |
|                                        | strict: tool.strict or options.strict_tools  | server_tool_dropped, unknown_tool_dropped |
| tool_choice auto / any / tool / none   | "auto" / "required" / {type:function,name} / | tool_choice_dropped         |
|                                        | "none"; omitted when no tool is left         |                             |
| disable_parallel_tool_use              | parallel_tool_calls: false                   |                             |
| thinking enabled, budget_tokens        | reasoning.effort <=4096 low, <=16384 medium, | thinking_budget_mapped      |
|                                        | else high (no budget: medium)                |                             |
| thinking adaptive + output_config.effort | reasoning.effort, capped at options.max_effort | effort_reduced           |
| thinking display "omitted"             | no reasoning.summary (else summary "auto")   |                             |
| effort without thinking                | reasoning.effort if reasoning_model          | effort_dropped otherwise    |
| (reasoning used or reasoning_model)    | include ["reasoning.encrypted_content"]      |                             |
| output_config.format json_schema       | text.format json_schema, name "output"       | output_format_dropped (other) |
| metadata.user_id                       | options.user_field (safety_identifier), its  | user_id_hashed              |
|                                        | sha256 when too long (64 user / 128 safety)  |                             |
| (options.prompt_cache_key)             | prompt_cache_key                             |                             |
| (always)                               | store: false                                 |                             |
| stream                                 | stream                                       |                             |
| service_tier, context_management,      | dropped                                      | service_tier_dropped,       |
| other top-level fields                 |                                              | context_management_dropped, |
|                                        |                                              | unsupported_field_dropped   |

Response (Responses -> Anthropic)

| Responses                              | Anthropic Message                            | degradation code            |
|----------------------------------------|----------------------------------------------|-----------------------------|
| id                                     | "msg_" + id (sha256 of the body if empty)    |                             |
| (requested_model argument)             | model                                        |                             |
| reasoning item                         | thinking: summary texts (else reasoning_text)|                             |
|                                        | joined "\\n\\n"; signature "resp:<id>:<enc>" |                             |
|                                        | from its encrypted_content, or "" (never     |                             |
|                                        | fabricated)                                  |                             |
| message output_text / refusal          | text block each; a refusal -> stop "refusal" | response_field_dropped      |
|                                        | (annotations dropped)                        |                             |
| function_call                          | tool_use (id = call_id), arguments parsed    | tool_arguments_invalid,     |
|                                        | leniently; no call_id -> derived id          | tool_call_id_derived        |
| other output items (web_search_call..) | dropped                                      | output_item_dropped         |
| status + incomplete_details.reason     | stop_reason via stop_reason()                | incomplete_reason_unmapped  |
| status failed / cancelled / in_progress| raises UpstreamError                         |                             |
| usage                                  | usage via usage() (input excludes cache)     | usage_missing               |
"""

from __future__ import annotations

import hashlib
from typing import Any

from anyllm_cli.errors import InvalidInput
from anyllm_cli.models.anthropic import MessagesRequest
from anyllm_cli.translate._responses_input import (
    RespCtx,
    ResponsesOptions,
    input_items,
    join,
)
from anyllm_cli.translate._responses_reply import (
    SIGNATURE_PREFIX,
    error_kind,
    read_signature,
    response,
    signature,
    stop_reason,
    usage,
)
from anyllm_cli.translate.degradation import Translated
from anyllm_cli.translate.messages_via_chat import ChatOptions, chat_tool, scan_marks

__all__ = [
    "ENCRYPTED_REASONING",
    "SIGNATURE_PREFIX",
    "ResponsesOptions",
    "error_kind",
    "read_signature",
    "request",
    "response",
    "signature",
    "stop_reason",
    "usage",
]

ENCRYPTED_REASONING = "reasoning.encrypted_content"
_EFFORT_ORDER = ("none", "minimal", "low", "medium", "high", "xhigh", "max")

_DEFAULT_OPTIONS = ResponsesOptions()
_CHAT_OPTIONS = ChatOptions()  # what the shared Chat helpers read: PDFs as file parts

# -- request: the body ------------------------------------------------------------------------------


def request(
    req: MessagesRequest, options: ResponsesOptions = _DEFAULT_OPTIONS
) -> Translated[dict[str, Any]]:
    """An OpenAI Responses request body for this Messages request."""
    ctx = RespCtx(_CHAT_OPTIONS, responses=options)
    _scan_request(req, ctx)
    body: dict[str, Any] = {"model": options.map_model(req.model)}
    system = req.system
    if isinstance(system, list):
        system = join(b.text for b in system)
    if system:
        body["instructions"] = system
    body["input"] = input_items(req, ctx)
    body.update(_limits(req, ctx))
    body.update(_tools(req, ctx))
    body.update(_reasoning(req, ctx))
    body.update(_text_format(req, ctx))
    body.update(_identity_fields(req, ctx))
    body["store"] = False
    if req.stream:
        body["stream"] = True
    _dropped_fields(req, ctx)
    return Translated(body, ctx.degradations)


def _scan_request(req: MessagesRequest, ctx: RespCtx) -> None:
    """Cache breakpoints and citations have no Responses equivalent: one record each per request."""
    _, count, cites = scan_marks(req)
    if count:
        ctx.once("cache_control_dropped", f"{count} cache breakpoint(s) dropped")
    if cites:
        ctx.once("citations_dropped", "citations cannot be requested from or replayed to Responses")


def _limits(req: MessagesRequest, ctx: RespCtx) -> dict[str, Any]:
    opts = ctx.responses
    if req.max_tokens < 0:
        raise InvalidInput("must be >= 0", "max_tokens")
    limit = req.max_tokens
    if opts.max_output_tokens is not None and limit > opts.max_output_tokens:
        limit = opts.max_output_tokens
    limit = max(limit, 16)  # the Responses API refuses less
    if limit != req.max_tokens:
        ctx.note("max_tokens_clamped", f"{req.max_tokens} -> {limit}", "max_tokens")
    out: dict[str, Any] = {"max_output_tokens": limit}
    for name in ("temperature", "top_p"):
        value = getattr(req, name)
        if value is None:
            continue
        if opts.reasoning_model:
            ctx.note(f"{name}_dropped", "reasoning models take no sampling parameters", name)
        else:
            out[name] = value
    if req.top_k is not None:
        ctx.note("top_k_dropped", "Responses has no top_k", "top_k")
    if any(req.stop_sequences or []):
        ctx.note("stop_sequences_dropped", "Responses has no stop sequences", "stop_sequences")
    return out


def _identity_fields(req: MessagesRequest, ctx: RespCtx) -> dict[str, Any]:
    out: dict[str, Any] = {}
    name = ctx.responses.user_field
    user_id = req.metadata.user_id if req.metadata else None
    if user_id:
        limit = 64 if name == "user" else 128
        if len(user_id) > limit:
            detail = f"user_id over {limit} chars sent as its sha256"
            ctx.note("user_id_hashed", detail, "metadata.user_id")
            user_id = hashlib.sha256(user_id.encode()).hexdigest()
        out[name] = user_id
    if ctx.responses.prompt_cache_key:
        out["prompt_cache_key"] = ctx.responses.prompt_cache_key
    return out


def _dropped_fields(req: MessagesRequest, ctx: RespCtx) -> None:
    if req.service_tier is not None:
        ctx.note("service_tier_dropped", "Anthropic service tiers do not apply", "service_tier")
    if req.context_management is not None:
        detail = "Anthropic context editing is not sent"
        ctx.note("context_management_dropped", detail, "context_management")
    extra = req.model_extra or {}
    if extra.get("mcp_servers"):
        ctx.note("server_tool_dropped", "MCP servers run at Anthropic only", "mcp_servers")
    handled = {"cache_control", "mcp_servers", "output_format"}
    rest = sorted(k for k, v in extra.items() if k not in handled and v is not None)
    if rest:
        ctx.note("unsupported_field_dropped", ", ".join(rest))


# -- request: reasoning, structured output ----------------------------------------------------------


def _effort(req: MessagesRequest, ctx: RespCtx) -> str | None:
    thinking = req.thinking.type if req.thinking else None
    effort = req.output_config.effort if req.output_config else None
    if thinking == "enabled":
        budget = req.thinking.budget_tokens if req.thinking else None
        if budget is None:
            return "medium"
        mapped = "low" if budget <= 4096 else "medium" if budget <= 16384 else "high"
        ctx.note("thinking_budget_mapped", f"budget {budget} -> effort {mapped}", "thinking")
        return mapped
    if effort is None:
        return None
    if thinking != "adaptive" and not ctx.responses.reasoning_model:
        detail = "effort without thinking needs a reasoning model"
        ctx.note("effort_dropped", detail, "output_config")
        return None
    if effort not in _EFFORT_ORDER:
        ctx.note("effort_dropped", f"unknown effort {effort!r}", "output_config.effort")
        return None
    top = ctx.responses.max_effort
    if top in _EFFORT_ORDER and _EFFORT_ORDER.index(effort) > _EFFORT_ORDER.index(top):
        ctx.note("effort_reduced", f"effort {effort} -> {top}", "output_config.effort")
        return top
    return effort


def _reasoning(req: MessagesRequest, ctx: RespCtx) -> dict[str, Any]:
    thinking = req.thinking.type if req.thinking else None
    reasoning: dict[str, Any] = {}
    effort = _effort(req, ctx)
    if effort is not None:
        reasoning["effort"] = effort
    wants_summary = thinking == "enabled" or (
        thinking == "adaptive" and (effort is not None or ctx.responses.reasoning_model)
    )
    display = req.thinking.display if req.thinking else None
    if wants_summary and display != "omitted":
        reasoning["summary"] = "auto"
    out: dict[str, Any] = {"reasoning": reasoning} if reasoning else {}
    if reasoning or ctx.responses.reasoning_model or ctx.reasoning_items:
        out["include"] = [ENCRYPTED_REASONING]
    return out


def _text_format(req: MessagesRequest, ctx: RespCtx) -> dict[str, Any]:
    fmt = req.output_config.format if req.output_config else None
    fmt = fmt or (req.model_extra or {}).get("output_format")  # the older beta location
    if not fmt:
        return {}
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = fmt.get("schema")
        if not isinstance(schema, dict):
            raise InvalidInput("json_schema format needs a schema object", "output_config.format")
        return {"text": {"format": {"type": "json_schema", "name": "output", "schema": schema}}}
    ctx.note("output_format_dropped", f"unsupported format {fmt!r}", "output_config.format")
    return {}


# -- request: tools ---------------------------------------------------------------------------------


def _tools(req: MessagesRequest, ctx: RespCtx) -> dict[str, Any]:
    tools: list[dict[str, Any]] = []
    for i, tool in enumerate(req.tools or []):
        path = f"tools[{i}]"
        function = chat_tool(tool, path, ctx)
        if function is not None:
            if not isinstance(function["name"], str):
                raise InvalidInput("a tool needs a name", f"{path}.name")
            strict = function.pop("strict", ctx.responses.strict_tools)
            tools.append({"type": "function", **function, "strict": strict})
    out: dict[str, Any] = {"tools": tools} if tools else {}
    choice = req.tool_choice
    if choice is None or not tools:
        return out
    if choice.type == "tool":
        if not choice.name:
            raise InvalidInput("a tool choice of type 'tool' needs a name", "tool_choice.name")
        if choice.name in {t["name"] for t in tools}:
            out["tool_choice"] = {"type": "function", "name": choice.name}
        else:
            ctx.note("tool_choice_dropped", f"tool {choice.name!r} is not sent", "tool_choice")
    else:
        out["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[choice.type]
    if choice.disable_parallel_tool_use:
        out["parallel_tool_calls"] = False
    return out
