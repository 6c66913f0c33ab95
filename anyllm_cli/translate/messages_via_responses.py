"""Anthropic Messages clients, OpenAI Responses upstreams: requests out, responses back.

`request()` turns a Messages request into a stateless (`store: false`) Responses body; `response()`
turns a Responses object into a Messages `Message`. Both are pure; every lossy step is a
`Degradation`. User content, documents, tool schemas and tool ids go through the Chat route's
helpers (`messages_via_chat`), so both routes treat them alike. What we give up: stop sequences and
top_k (Responses has neither), prompt-cache breakpoints, server tools, thinking signed by any other
provider, and the boundaries between reasoning summary parts (joined with a blank line).

Reasoning state survives a round trip through the client: a reasoning item's `encrypted_content`
travels in the thinking block's `signature` as `"resp:" + encrypted_content`, and only signatures
with that prefix are ever sent back (as reasoning items without `id`: with `store: false` the
upstream would look the id up and fail). Real Anthropic signatures never reach Responses.

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
| thinking, signature "resp:<enc>"       | reasoning item: summary_text = thinking,     | reasoning_without_output_   |
|                                        | encrypted_content = <enc> (no id); dropped   | dropped                     |
|                                        | when nothing follows it in its turn          |                             |
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
|                                        | joined "\\n\\n"; signature "resp:" + its     |                             |
|                                        | encrypted_content, or "" (never fabricated)  |                             |
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
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from anyllm_cli.errors import ErrorKind, InvalidInput, UpstreamError
from anyllm_cli.models.anthropic import (
    ContainerUploadBlock,
    ContentBlock,
    DocumentBlock,
    MessagesRequest,
    MidConvSystemBlock,
    RedactedThinkingBlock,
    ServerToolResultBlock,
    ServerToolUseBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    URLSource,
)
from anyllm_cli.models.openai_responses import (
    FunctionCallItem,
    OutputMessage,
    OutputText,
    ReasoningItem,
    Refusal,
    ResponsesResponse,
)
from anyllm_cli.translate.degradation import Degradation, Translated
from anyllm_cli.translate.messages_via_chat import (
    ChatContext,
    ChatOptions,
    chat_tool,
    parse_arguments,
    scan_marks,
    tool_result_message,
    user_parts,
)

SIGNATURE_PREFIX = "resp:"
ENCRYPTED_REASONING = "reasoning.encrypted_content"
_EFFORT_ORDER = ("none", "minimal", "low", "medium", "high", "xhigh", "max")


def _identity(name: str) -> str:
    return name


@dataclass(frozen=True, slots=True)
class ResponsesOptions:
    map_model: Callable[[str], str] = _identity
    max_output_tokens: int | None = None  # clamp max_tokens to this
    prompt_cache_key: str | None = None  # sent as prompt_cache_key
    reasoning_model: bool = False  # always reasons: encrypted reasoning, no sampling parameters
    strict_tools: bool = False  # `strict` for tools that do not say (Responses defaults to true)
    max_effort: str = "high"  # the highest reasoning.effort this upstream accepts
    user_field: Literal["safety_identifier", "user"] = "safety_identifier"


_DEFAULT_OPTIONS = ResponsesOptions()
_CHAT_OPTIONS = ChatOptions()  # what the shared Chat helpers read: PDFs as file parts


@dataclass(slots=True)
class _RespCtx(ChatContext):
    """The Chat route's context (degradations, rewritten ids) plus this route's state."""

    responses: ResponsesOptions = _DEFAULT_OPTIONS
    pending: dict[str, None] = field(default_factory=dict)  # call ids awaiting their output
    reasoning_items: int = 0


Item = dict[str, Any]
Parts = list[dict[str, Any]]

# -- request: the body ------------------------------------------------------------------------------


def request(
    req: MessagesRequest, options: ResponsesOptions = _DEFAULT_OPTIONS
) -> Translated[dict[str, Any]]:
    """An OpenAI Responses request body for this Messages request."""
    ctx = _RespCtx(_CHAT_OPTIONS, responses=options)
    _scan_request(req, ctx)
    body: dict[str, Any] = {"model": options.map_model(req.model)}
    system = req.system
    if isinstance(system, list):
        system = _join(b.text for b in system)
    if system:
        body["instructions"] = system
    body["input"] = _input(req, ctx)
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


def _scan_request(req: MessagesRequest, ctx: _RespCtx) -> None:
    """Cache breakpoints and citations have no Responses equivalent: one record each per request."""
    _, count, cites = scan_marks(req)
    if count:
        ctx.once("cache_control_dropped", f"{count} cache breakpoint(s) dropped")
    if cites:
        ctx.once("citations_dropped", "citations cannot be requested from or replayed to Responses")


def _join(texts: Any) -> str:
    return "\n\n".join(t for t in texts if t)


def _limits(req: MessagesRequest, ctx: _RespCtx) -> dict[str, Any]:
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


def _identity_fields(req: MessagesRequest, ctx: _RespCtx) -> dict[str, Any]:
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


def _dropped_fields(req: MessagesRequest, ctx: _RespCtx) -> None:
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


def _effort(req: MessagesRequest, ctx: _RespCtx) -> str | None:
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


def _reasoning(req: MessagesRequest, ctx: _RespCtx) -> dict[str, Any]:
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


def _text_format(req: MessagesRequest, ctx: _RespCtx) -> dict[str, Any]:
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


def _tools(req: MessagesRequest, ctx: _RespCtx) -> dict[str, Any]:
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


# -- request: input items ---------------------------------------------------------------------------


def _input(req: MessagesRequest, ctx: _RespCtx) -> list[Item]:
    items: list[Item] = []
    for role, blocks, path in _turns(req):
        if role == "system":
            texts = [b.text for b, _ in blocks if isinstance(b, TextBlock)]
            for block, where in blocks:
                if not isinstance(block, TextBlock):
                    ctx.note("unknown_block_dropped", f"{block.type} in a system message", where)
            out = _system_item(_join(texts), ctx)
        elif role == "assistant":
            out = _assistant_turn(blocks, ctx)
        else:
            out = _user_turn(blocks, ctx)
        if not out:
            ctx.note("empty_message_dropped", "nothing sendable was left", path)
        items += out
    items += _missing_outputs(ctx)
    last = items[-1] if items else None
    if last is not None and last.get("role") == "assistant":
        where = f"messages[{len(req.messages) - 1}]"
        ctx.note("assistant_prefill_unsupported", "Responses answers after it, not from it", where)
    return items


Turn = tuple[str, list[tuple[ContentBlock, str]], str]


def _turns(req: MessagesRequest) -> list[Turn]:
    """Consecutive messages of one role joined into one turn, each block with its JSON path."""
    turns: list[Turn] = []
    for i, msg in enumerate(req.messages):
        path = f"messages[{i}]"
        content = msg.content
        if isinstance(content, str):
            blocks: list[tuple[ContentBlock, str]] = []
            if content:
                blocks.append((TextBlock(type="text", text=content), f"{path}.content"))
        else:
            blocks = [(b, f"{path}.content[{j}]") for j, b in enumerate(content)]
        if turns and turns[-1][0] == msg.role != "system":
            turns[-1][1].extend(blocks)
        else:
            turns.append((msg.role, blocks, path))
    return turns


def _system_item(text: str, ctx: _RespCtx) -> list[Item]:
    if not text:
        return []
    role = "developer" if ctx.responses.reasoning_model else "system"
    return [{"type": "message", "role": role, "content": text}]


def _user_turn(blocks: list[tuple[ContentBlock, str]], ctx: _RespCtx) -> list[Item]:
    """Tool outputs first (with attachments right after), then the rest of the user's content."""
    out: list[Item] = []
    parts: Parts = []
    for block, path in blocks:
        if not isinstance(block, ToolResultBlock):
            continue
        message, moved = tool_result_message(block, path, ctx)
        call_id = message["tool_call_id"]
        if call_id in ctx.pending:
            del ctx.pending[call_id]
            out.append(
                {"type": "function_call_output", "call_id": call_id, "output": message["content"]}
            )
        else:
            ctx.note("orphan_tool_result", f"{call_id} answers no preceding call", path)
            parts.append(_text(f"[result of tool call {call_id}]\n{message['content']}"))
        parts += [_input_part(p) for p in moved]
    out += _missing_outputs(ctx)
    for block, path in blocks:
        if isinstance(block, MidConvSystemBlock):
            out += _user_message(parts)
            parts = []
            out += _mid_conv(block, ctx)
        elif not isinstance(block, ToolResultBlock):
            parts += _user_parts(block, path, ctx)
    return out + _user_message(parts)


def _user_parts(block: ContentBlock, path: str, ctx: _RespCtx) -> Parts:
    """As the Chat route sends it, except that Responses fetches documents by URL itself."""
    if isinstance(block, DocumentBlock) and isinstance(block.source, URLSource):
        head = [t for t in (block.title and f"Document: {block.title}", block.context) if t]
        url_file = {"type": "input_file", "file_url": block.source.url}
        return [_text("\n".join(head)), url_file] if head else [url_file]
    return [_input_part(p) for p in user_parts(block, path, ctx)]


def _missing_outputs(ctx: _RespCtx) -> list[Item]:
    out = []
    for call_id in ctx.pending:
        ctx.note("tool_result_missing", f"{call_id} had no tool_result; one was written")
        out.append(
            {"type": "function_call_output", "call_id": call_id, "output": "[tool result missing]"}
        )
    ctx.pending.clear()
    return out


def _text(text: str) -> dict[str, Any]:
    return {"type": "input_text", "text": text}


def _input_part(part: dict[str, Any]) -> dict[str, Any]:
    """A Chat content part (what the shared helpers build) as a Responses input part."""
    if part["type"] == "image_url":
        return {"type": "input_image", "image_url": part["image_url"]["url"], "detail": "auto"}
    if part["type"] == "file":
        return {"type": "input_file", **part["file"]}
    return _text(part["text"])


def _user_message(parts: Parts) -> list[Item]:
    if not parts:
        return []
    if all(p["type"] == "input_text" for p in parts):
        return [{"type": "message", "role": "user", "content": _join(p["text"] for p in parts)}]
    return [{"type": "message", "role": "user", "content": parts}]


def _mid_conv(block: MidConvSystemBlock, ctx: _RespCtx) -> list[Item]:
    content = block.content
    return _system_item(
        content if isinstance(content, str) else _join(b.text for b in content), ctx
    )


def _assistant_turn(blocks: list[tuple[ContentBlock, str]], ctx: _RespCtx) -> list[Item]:
    """Items in the order of the blocks: text runs become messages, tool uses function calls."""
    out: list[Item] = []
    texts: list[str] = []
    for block, path in blocks:
        if isinstance(block, TextBlock):
            texts.append(block.text)
            continue
        out += _assistant_message(texts)
        texts = []
        if isinstance(block, ToolUseBlock):
            call_id = ctx.call_id(block.id, f"{path}.id")
            ctx.pending[call_id] = None
            arguments = json.dumps(block.input, ensure_ascii=False)
            out.append(
                {
                    "type": "function_call",
                    "call_id": call_id,
                    "name": block.name,
                    "arguments": arguments,
                }
            )
        elif isinstance(block, ThinkingBlock):
            out += _reasoning_item(block, path, ctx)
        elif isinstance(block, RedactedThinkingBlock):
            ctx.note("redacted_thinking_dropped", "encrypted thinking is Anthropic's only", path)
        elif isinstance(block, MidConvSystemBlock):
            out += _mid_conv(block, ctx)
        elif isinstance(block, ServerToolUseBlock | ServerToolResultBlock | ContainerUploadBlock):
            ctx.note(
                "server_tool_dropped", f"{block.type} belongs to an Anthropic server tool", path
            )
        else:
            ctx.note("unknown_block_dropped", f"{block.type} block in an assistant turn", path)
    out += _assistant_message(texts)
    return _drop_trailing_reasoning(out, ctx)


def _assistant_message(texts: list[str]) -> list[Item]:
    text = _join(texts)
    return [{"type": "message", "role": "assistant", "content": text}] if text else []


def _reasoning_item(block: ThinkingBlock, path: str, ctx: _RespCtx) -> list[Item]:
    signature = block.signature or ""
    encrypted = signature.removeprefix(SIGNATURE_PREFIX)
    if not signature.startswith(SIGNATURE_PREFIX) or not encrypted:
        detail = "thinking not signed by a Responses upstream cannot be replayed to one"
        ctx.once("thinking_dropped", detail, path)
        return []
    summary = [{"type": "summary_text", "text": block.thinking}] if block.thinking else []
    ctx.reasoning_items += 1
    return [{"type": "reasoning", "summary": summary, "encrypted_content": encrypted}]


def _drop_trailing_reasoning(items: list[Item], ctx: _RespCtx) -> list[Item]:
    """Responses refuses a reasoning item that no message or function call follows."""
    while items and items[-1]["type"] == "reasoning":
        items.pop()
        ctx.reasoning_items -= 1
        detail = "a reasoning item with no output after it in its turn cannot be sent"
        ctx.note("reasoning_without_output_dropped", detail)
    return items


# -- response ---------------------------------------------------------------------------------------


def response(resp: ResponsesResponse, *, requested_model: str) -> Translated[dict[str, Any]]:
    """An Anthropic Message for this Responses object. A failed response raises UpstreamError."""
    if resp.status not in (None, "completed", "incomplete"):
        error = resp.error
        kind = error_kind(error.code if error else None)
        message = (error.message if error else "") or f"the response has status {resp.status!r}"
        raise UpstreamError(kind, message)
    degradations: list[Degradation] = []
    content: list[dict[str, Any]] = []
    refused = False
    for i, item in enumerate(resp.output):
        path = f"output[{i}]"
        if isinstance(item, ReasoningItem):
            content += _thinking(item)
        elif isinstance(item, OutputMessage):
            blocks, item_refused = _message_content(item, path, degradations)
            content += blocks
            refused = refused or item_refused
        elif isinstance(item, FunctionCallItem):
            content.append(_tool_use(resp, item, i, degradations))
        else:
            detail = f"{item.type} items have no Anthropic equivalent"
            degradations.append(Degradation("output_item_dropped", detail, path))
    reason = resp.incomplete_details.reason if resp.incomplete_details else None
    has_calls = any(block["type"] == "tool_use" for block in content)
    stop = stop_reason(resp.status, reason, has_calls=has_calls, refused=refused)
    if resp.status == "incomplete" and reason not in _INCOMPLETE_REASONS:
        detail = f"incomplete reason {reason!r} became {stop}"
        degradations.append(Degradation("incomplete_reason_unmapped", detail, "incomplete_details"))
    if resp.usage is None:
        degradations.append(Degradation("usage_missing", "the upstream reported no usage", "usage"))
    body = {
        "id": _message_id(resp),
        "type": "message",
        "role": "assistant",
        "model": requested_model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage(resp.usage.dump() if resp.usage else None),
    }
    return Translated(body, degradations)


def _message_id(resp: ResponsesResponse) -> str:
    if resp.id:
        return f"msg_{resp.id}"
    digest = hashlib.sha256(json.dumps(resp.dump(), sort_keys=True).encode()).hexdigest()
    return f"msg_{digest[:24]}"


def _thinking(item: ReasoningItem) -> list[dict[str, Any]]:
    texts = [s.text for s in item.summary] or [c.text for c in item.content or []]
    thought = _join(texts)
    encrypted = item.encrypted_content or ""
    if not (thought or encrypted):
        return []
    signature = SIGNATURE_PREFIX + encrypted if encrypted else ""
    return [{"type": "thinking", "thinking": thought, "signature": signature}]


def _message_content(
    item: OutputMessage, path: str, degradations: list[Degradation]
) -> tuple[list[dict[str, Any]], bool]:
    blocks: list[dict[str, Any]] = []
    refused = False
    for j, part in enumerate(item.content):
        where = f"{path}.content[{j}]"
        if isinstance(part, OutputText):
            if part.text:
                blocks.append({"type": "text", "text": part.text})
            if part.annotations:
                detail = f"{len(part.annotations)} annotation(s) dropped"
                degradations.append(Degradation("response_field_dropped", detail, where))
        elif isinstance(part, Refusal):
            refused = True
            if part.refusal:
                blocks.append({"type": "text", "text": part.refusal})
        else:
            detail = f"{part.type} content has no Anthropic equivalent"
            degradations.append(Degradation("output_item_dropped", detail, where))
    return blocks, refused


def _tool_use(
    resp: ResponsesResponse, item: FunctionCallItem, index: int, degradations: list[Degradation]
) -> dict[str, Any]:
    path = f"output[{index}]"
    arguments, degraded = parse_arguments(item.arguments)
    if degraded:
        detail = "arguments are not a JSON object; kept under _raw"
        degradations.append(Degradation("tool_arguments_invalid", detail, path))
    call_id = item.call_id
    if not call_id:
        seed = f"{resp.id}|{index}|{item.id}|{item.name}|{item.arguments}"
        call_id = "toolu_" + hashlib.sha256(seed.encode()).hexdigest()[:24]
        degradations.append(Degradation("tool_call_id_derived", f"id {call_id} derived", path))
    return {"type": "tool_use", "id": call_id, "name": item.name, "input": arguments}


# -- shared with the stream translator -------------------------------------------------------------

_INCOMPLETE_REASONS = frozenset({"max_output_tokens", "content_filter"})


def stop_reason(
    status: str | None, incomplete_reason: str | None, *, has_calls: bool, refused: bool
) -> str:
    """Function calls always mean tool_use (Responses has no finish_reason to say otherwise)."""
    if has_calls:
        return "tool_use"
    if refused or incomplete_reason == "content_filter":
        return "refusal"
    if status == "incomplete":
        return "max_tokens"  # max_output_tokens, and the context window (no better Anthropic word)
    return "end_turn"


def usage(responses_usage: dict[str, Any] | None) -> dict[str, int]:
    """Anthropic usage: `input_tokens` excludes cache reads and writes, as Anthropic's does."""
    found = responses_usage or {}
    total = _int(found.get("input_tokens"))
    details = found.get("input_tokens_details")
    details = details if isinstance(details, dict) else {}
    cached = min(_int(details.get("cached_tokens")), total)
    written = min(_int(details.get("cache_write_tokens")), total - cached)
    return {
        "input_tokens": total - cached - written,
        "output_tokens": _int(found.get("output_tokens")),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


# Responses `error.code` -> kind; anything else is an API error.
_ERROR_CODES = {
    "rate_limit_exceeded": ErrorKind.RATE_LIMIT,
    "insufficient_quota": ErrorKind.BILLING,
    "server_error": ErrorKind.API_ERROR,
    "vector_store_timeout": ErrorKind.TIMEOUT,
    "invalid_prompt": ErrorKind.INVALID_REQUEST,
    "context_length_exceeded": ErrorKind.INVALID_REQUEST,
}


def error_kind(code: str | None) -> ErrorKind:
    if code in _ERROR_CODES:
        return _ERROR_CODES[code]
    if code and code.startswith(("invalid_", "image_")):
        return ErrorKind.INVALID_REQUEST
    return ErrorKind.API_ERROR
