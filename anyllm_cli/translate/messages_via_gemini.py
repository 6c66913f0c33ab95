"""Anthropic Messages clients, Gemini `generateContent` upstreams: requests out, responses back.

`request()` turns a Messages request into a generateContent body; the model is not in the body but
in the URL: callers use `upstream_model(req, options)` (that is, `options.map_model(req.model)`) and
choose `:generateContent` or `:streamGenerateContent?alt=sse` from `req.stream`. `response()` turns
a GenerateContentResponse into a Messages `Message`. Both are pure; every lossy step is a
`Degradation`. What we give up: prompt-cache breakpoints, server tools, JSON-Schema keywords outside
Gemini's OpenAPI subset, the place of mid-conversation system text, and Anthropic signatures.

Thought signatures round-trip through the client, and replies keep the Anthropic block grammar
(thinking blocks first, never after a text or tool_use block). A Gemini `thoughtSignature` becomes
a thinking block's `signature`, written "gemini:<signature>": a thought part's on its own block; a
signature on any other part (a functionCall, a text part, an empty text part) that comes before any
text or tool_use on a thinking block with empty text placed right before that part's block (or
after the last block when the part had nothing else). Once text or a tool_use has been sent a
thinking block can no longer follow, so a later signature goes another way:
- on a functionCall (Gemini 3 validates these strictly: "Function call is missing a
  thought_signature"), it rides in the tool_use id, `<id>__gsig_<base64url(signature)>`; the id
  comes back unchanged from every client (the tool_result names it too), and on the way back the
  suffix is cut off (functionCall.id / functionResponse.id get `<id>`) and becomes the call's
  thoughtSignature;
- on a text part or the empty text part Gemini 3 ends a streamed text answer with, it is dropped
  (`text_signature_dropped`): Gemini does not validate text-part signatures, and a thinking block
  after the answer text makes Claude Code report an empty result.
On the way back a "gemini:" thinking block with text becomes its thought part again, and an empty
one hands its signature to the next part of the turn (or, at the end of the turn, to an empty text
part). Signatures without the prefix are Anthropic's and are dropped; none is ever made up
(`GeminiOptions.signature_fallback` opts into Google's documented placeholder instead).

The contents are built in `_gemini_contents` and the reply side lives in `_gemini_reply`; this
module re-exports the names callers use (`GeminiOptions`, `response`, `part_blocks`, ...).

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
|                                        | with options.call_ids); an id "<id>__gsig_<s>"|                            |
|                                        | sends <id> and thoughtSignature = s          |                             |
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
| the same after text or a tool_use      | functionCall: in the tool_use id (__gsig_);  | text_signature_dropped      |
|                                        | any other part: dropped                      |                             |
| text                                   | text block ("" dropped)                      |                             |
| functionCall                           | tool_use; id kept when legal, else derived   | tool_call_id_derived        |
| inlineData, executableCode, ...        | dropped                                      | response_part_dropped       |
| finishReason                           | stop_reason via stop_reason()                | finish_reason_unmapped      |
| promptFeedback.blockReason             | text explaining it, stop_reason "refusal"    |                             |
| usageMetadata                          | usage via usage()                            | usage_missing               |
| no / extra candidates                  | empty content / first candidate only         | no_candidates, extra_candidates_dropped |
"""

from __future__ import annotations

import re
from typing import Any

from anyllm_cli.errors import InvalidInput
from anyllm_cli.models.anthropic import MessagesRequest, Tool, ToolUseBlock
from anyllm_cli.translate._gemini_contents import Ctx, GeminiOptions, build_contents
from anyllm_cli.translate._gemini_reply import (
    FINISH_REASONS,
    SIGNATURE_PREFIX,
    block_text,
    late_signature,
    part_blocks,
    response,
    signature_block,
    signed_tool_id,
    split_tool_id,
    stop_reason,
    tool_id,
    usage,
)
from anyllm_cli.translate.degradation import Translated
from anyllm_cli.translate.gemini_schema import gemini_schema
from anyllm_cli.translate.messages_via_chat import DEFINED_TOOLS, SERVER_TOOLS, scan_marks

__all__ = [
    "FINISH_REASONS",
    "SIGNATURE_PREFIX",
    "GeminiOptions",
    "block_text",
    "count_tokens_body",
    "gemini_schema",
    "late_signature",
    "signed_tool_id",
    "split_tool_id",
    "part_blocks",
    "request",
    "response",
    "signature_block",
    "stop_reason",
    "tool_id",
    "upstream_model",
    "usage",
]

_DEFAULT_OPTIONS = GeminiOptions()


def upstream_model(req: MessagesRequest, options: GeminiOptions = _DEFAULT_OPTIONS) -> str:
    """The Gemini model id for the URL (`models/{model}:generateContent`)."""
    return options.map_model(req.model)


# -- request: the body ------------------------------------------------------------------------------


def request(
    req: MessagesRequest, options: GeminiOptions = _DEFAULT_OPTIONS
) -> Translated[dict[str, Any]]:
    """A generateContent body for this Messages request (the model goes in the URL)."""
    ctx = Ctx(options)
    _scan_request(req, ctx)
    contents = build_contents(req, ctx)
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


def _scan_request(req: MessagesRequest, ctx: Ctx) -> None:
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


def _generation(req: MessagesRequest, ctx: Ctx) -> dict[str, Any]:
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


def _thinking(req: MessagesRequest, ctx: Ctx) -> dict[str, Any]:
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


def _response_format(req: MessagesRequest, ctx: Ctx) -> dict[str, Any]:
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


def _dropped_fields(req: MessagesRequest, ctx: Ctx) -> None:
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


def _tools(req: MessagesRequest, ctx: Ctx) -> dict[str, Any]:
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


def _declaration(tool: Tool, path: str, ctx: Ctx) -> dict[str, Any] | None:
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


def count_tokens_body(content: dict[str, Any], model: str, *, vertex: bool) -> dict[str, Any]:
    """The `:countTokens` body for a translated generateContent body (`request().body`).

    The Gemini API wraps the whole request: `{"generateContentRequest": {"model": "models/<m>",
    ...}}`. Vertex AI takes `contents`, `systemInstruction` and `tools` at the top level (its
    CountTokensRequest has no generateContentRequest, toolConfig or safetySettings).
    """
    if vertex:
        return {k: content[k] for k in ("contents", "systemInstruction", "tools") if k in content}
    rest = {k: v for k, v in content.items() if k != "generationConfig"}
    return {"generateContentRequest": {"model": f"models/{model.removeprefix('models/')}", **rest}}
