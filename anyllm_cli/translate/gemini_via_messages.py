"""Gemini `generateContent` clients, Anthropic Messages upstreams: requests out, responses back.

For google-genai and Gemini CLI. `request()` takes the body and the model of the URL path
(`models/{model}:generateContent`, or `:streamGenerateContent` with `stream=True`); `response()`
turns a Messages response into a GenerateContentResponse. Contents and parts: `_gemini_parts`.

| Gemini (client)                            | Anthropic Messages (upstream)                           |
| ------------------------------------------ | ------------------------------------------------------- |
| URL model ("models/" prefix optional)      | model, through `GeminiClientOptions.map_model`          |
| systemInstruction text parts               | system (joined with blank lines)                        |
| contents                                   | messages (see `_gemini_parts`)                          |
| generationConfig.maxOutputTokens           | max_tokens (default `options.default_max_tokens`)       |
| temperature (0-2) / topP / topK            | temperature clamped to 0-1 / top_p if no temperature /  |
|                                            | top_k                                                   |
| stopSequences                              | stop_sequences (blank ones dropped)                     |
| thinkingConfig.thinkingBudget n / -1 / 0   | thinking enabled max(n, 1024) / 8192 / disabled         |
| thinkingLevel LOW/MEDIUM/HIGH / MINIMAL    | budget 2048/8192/16384 / disabled                       |
| responseMimeType json + responseSchema or  | output_config.format json_schema (objects closed with   |
| responseJsonSchema (object root)           | additionalProperties false); else a system instruction |
| tools[].functionDeclarations               | tools (parameters -> JSON Schema; parametersJsonSchema  |
|                                            | as is)                                                  |
| tools[].googleSearch(Retrieval)            | the web_search server tool                              |
| functionCallingConfig AUTO/ANY/NONE        | tool_choice auto/any/none; ANY with one allowed name -> |
|                                            | {"type": "tool", name}                                  |
| candidateCount > 1                         | refused: InvalidInput                                   |

Back: text -> text parts, thinking -> `thought: true` parts, tool_use -> functionCall {name, args,
id}. A thinking signature "gemini:<s>" (made by `messages_via_gemini` from a Gemini upstream)
goes back as `thoughtSignature` s: on its thought part, or, for a thinking block with no text, on
the next part (an empty text part at the end), the inverse of what `messages_via_gemini` does.
Anthropic's own signatures cannot be carried and are omitted. stop_reason -> finishReason (STOP,
MAX_TOKENS, SAFETY for refusal); usage -> usageMetadata with the prompt counting cache reads and
writes and the thoughts split out when `output_tokens_details.thinking_tokens` is known.

Given up, each with a `Degradation`: safetySettings, cachedContent, labels, penalties, seed,
logprobs, other modalities, code execution and other Google tools, media Anthropic cannot take,
Files-API URIs, unsigned thoughts, multi-name allowedFunctionNames. Thinking is switched off where
Anthropic refuses it (forced tool use, a prefill, a tool loop whose model turn has no signed
thought); `includeThoughts: false` is not honoured (thoughts come back flagged `thought: true`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anyllm_cli.errors import InvalidInput
from anyllm_cli.models._base import load_json
from anyllm_cli.models.anthropic import (
    MessagesResponse,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
)
from anyllm_cli.models.gemini import FunctionDeclaration, GenerateContentRequest, GenerationConfig
from anyllm_cli.translate._gemini_parts import Ctx, camel_case, closed, json_schema, messages
from anyllm_cli.translate.chat_via_messages import (
    EFFORT_BUDGETS,
    JSON_OBJECT_INSTRUCTION,
    THINKING_HEADROOM,
)
from anyllm_cli.translate.degradation import Degradation, Translated
from anyllm_cli.translate.messages_via_gemini import SIGNATURE_PREFIX


def _identity(name: str) -> str:
    return name


@dataclass(frozen=True, slots=True)
class GeminiClientOptions:
    map_model: Callable[[str], str] = _identity
    default_max_tokens: int = 8192  # Gemini needs no maxOutputTokens; Anthropic needs max_tokens


_DEFAULT_OPTIONS = GeminiClientOptions()
MIN_THINKING_BUDGET = 1024
DYNAMIC_THINKING_BUDGET = 8192  # for thinkingBudget -1 ("the model decides")
_LEVELS = {"LOW": EFFORT_BUDGETS["low"], "MEDIUM": EFFORT_BUDGETS["medium"]}
_LEVELS["HIGH"] = EFFORT_BUDGETS["high"]
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,128}")
_SEARCH_TOOLS = ("googleSearch", "googleSearchRetrieval", "google_search")
_HANDLED_CONFIG = set(GenerationConfig.model_fields) | {"responseModalities"}
_QUIET_TOP_LEVEL = {"model"}  # countTokens' generateContentRequest names it; the URL wins


# -- request ----------------------------------------------------------------------------------------


def parse_request(body: Any) -> GenerateContentRequest:
    """Parse a generateContent body, snake_case keys (as google-genai sends them) included."""
    if isinstance(body, str | bytes):
        body = load_json(body)
    return GenerateContentRequest.parse(camel_case(body))


def request(
    req: GenerateContentRequest,
    *,
    model: str,
    stream: bool,
    options: GeminiClientOptions = _DEFAULT_OPTIONS,
) -> Translated[dict[str, Any]]:
    """A Messages request for this generateContent body and the model named in the URL."""
    name = model.removeprefix("models/")
    if not name:
        raise InvalidInput("a model is required", "model")
    ctx = Ctx()
    config = req.generationConfig or GenerationConfig()
    if config.candidateCount is not None and config.candidateCount > 1:
        raise InvalidInput("only one candidate can be produced", "generationConfig.candidateCount")
    turns = messages(req.contents, ctx)
    system = _system(req, ctx)
    body: dict[str, Any] = {"max_tokens": _max_tokens(config, options)}
    _sampling(config, body, ctx)
    _tools(req, body, ctx)
    _output_format(config, body, system, ctx)
    _thinking(config, body, turns, ctx)
    _dropped(req, config, ctx)
    head: dict[str, Any] = {"model": options.map_model(name)}
    if system:
        head["system"] = "\n\n".join(system)
    head["messages"] = turns
    return Translated({**head, **body, "stream": stream}, ctx.degradations)


def _system(req: GenerateContentRequest, ctx: Ctx) -> list[str]:
    texts: list[str] = []
    for j, part in enumerate((req.systemInstruction and req.systemInstruction.parts) or []):
        if part.text is not None:
            if part.text.strip():
                texts.append(part.text)
        else:
            path = f"systemInstruction.parts[{j}]"
            ctx.note("system_part_dropped", "only text can go into the system prompt", path)
    return texts


def _max_tokens(config: GenerationConfig, options: GeminiClientOptions) -> int:
    value = config.maxOutputTokens
    if value is not None and value < 0:
        raise InvalidInput("must not be negative", "generationConfig.maxOutputTokens")
    return value or options.default_max_tokens


def _sampling(config: GenerationConfig, body: dict[str, Any], ctx: Ctx) -> None:
    path = "generationConfig"
    if config.temperature is not None:
        clamped = min(max(config.temperature, 0.0), 1.0)
        if clamped != config.temperature:
            detail = f"{config.temperature} -> {clamped}"
            ctx.note("temperature_clamped", detail, f"{path}.temperature")
        body["temperature"] = clamped
    if config.topP is not None and config.temperature is None:
        body["top_p"] = config.topP
    elif config.topP not in (None, 1):
        detail = "Anthropic takes temperature or top_p, not both"
        ctx.note("top_p_dropped", detail, f"{path}.topP")
    if config.topK is not None:
        if config.topK > 0:
            body["top_k"] = config.topK
        else:
            ctx.note("top_k_dropped", "top_k must be positive", f"{path}.topK")
    stops = config.stopSequences or []
    kept = [s for s in stops if s.strip()]
    if len(kept) < len(stops):
        detail = "Anthropic refuses blank stop sequences"
        ctx.note("stop_sequence_dropped", detail, f"{path}.stopSequences")
    if kept:
        body["stop_sequences"] = kept


def _thinking(
    config: GenerationConfig, body: dict[str, Any], turns: list[dict[str, Any]], ctx: Ctx
) -> None:
    thinking = config.thinkingConfig
    if thinking is None:
        return
    path = "generationConfig.thinkingConfig"
    budget, level = thinking.thinkingBudget, (thinking.thinkingLevel or "").upper()
    if budget == 0 or level == "MINIMAL" or (level == "" and budget is None):
        if budget == 0 or level == "MINIMAL":
            body["thinking"] = {"type": "disabled"}
        elif thinking.includeThoughts:
            ctx.note("thinking_not_enabled", "includeThoughts without a budget or level", path)
        return
    if level:
        if level not in _LEVELS:
            raise InvalidInput(f"unknown thinkingLevel {thinking.thinkingLevel!r}", path)
        budget = _LEVELS[level]
    elif budget is not None and budget < 0:
        budget = DYNAMIC_THINKING_BUDGET
        ctx.note("thinking_budget_chosen", f"dynamic thinking -> {budget} tokens", path)
    assert budget is not None
    if budget < MIN_THINKING_BUDGET:
        ctx.note("thinking_budget_raised", f"{budget} -> {MIN_THINKING_BUDGET}", path)
        budget = MIN_THINKING_BUDGET
    why = _why_no_thinking(body, turns)
    if why:
        ctx.note("thinking_disabled", why, path)
        return
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if body["max_tokens"] <= budget:
        if config.maxOutputTokens:
            detail = f"raised above the thinking budget {budget}"
            ctx.note("max_tokens_raised", detail, "generationConfig.maxOutputTokens")
        body["max_tokens"] = budget + THINKING_HEADROOM
    if body.get("temperature", 1) != 1:
        detail = "thinking requires the default temperature"
        ctx.note("temperature_dropped", detail, "generationConfig.temperature")
        del body["temperature"]
    if body.get("top_p", 1) < 0.95:
        ctx.note("top_p_dropped", "thinking requires top_p >= 0.95", "generationConfig.topP")
        del body["top_p"]
    if body.pop("top_k", None) is not None:
        ctx.note("top_k_dropped", "thinking forbids top_k", "generationConfig.topK")


def _why_no_thinking(body: dict[str, Any], turns: list[dict[str, Any]]) -> str | None:
    if body.get("tool_choice", {}).get("type") in ("any", "tool"):
        return "Anthropic forbids forced tool use with thinking"
    last = turns[-1]
    if last["role"] == "assistant":
        return "Anthropic forbids a prefill with thinking"
    if any(b["type"] == "tool_result" for b in last["content"]):
        before = turns[-2]["content"] if len(turns) > 1 else []
        if not before or before[0]["type"] != "thinking":
            return "the model turn of this tool loop has no signed thought to replay"
    return None


def _output_format(
    config: GenerationConfig, body: dict[str, Any], system: list[str], ctx: Ctx
) -> None:
    path = "generationConfig"
    mime = (config.responseMimeType or "").lower()
    schema: Any = config.responseJsonSchema
    if schema is None and config.responseSchema is not None:
        schema = json_schema(config.responseSchema, f"{path}.responseSchema")
    if mime in ("", "text/plain"):
        if schema is not None:
            detail = "a schema without responseMimeType application/json"
            ctx.note("response_schema_dropped", detail, path)
        return
    if mime != "application/json":
        ctx.note("response_mime_type_dropped", f"Anthropic cannot answer as {mime}", path)
        return
    if schema is None:
        ctx.note("json_object_emulated", "asked for in the system prompt", path)
        system.append(JSON_OBJECT_INSTRUCTION)
        return
    if not isinstance(schema, dict):
        raise InvalidInput("a schema must be an object", f"{path}.responseJsonSchema")
    if schema.get("type") == "object":
        format_ = {"type": "json_schema", "schema": closed(schema, path)}
        body["output_config"] = {"format": format_}
        return
    ctx.note("response_schema_emulated", "Anthropic wants an object at the root", path)
    text = json.dumps(schema, ensure_ascii=False)
    system.append(f"Respond with JSON only, matching this JSON Schema: {text}")


def _tools(req: GenerateContentRequest, body: dict[str, Any], ctx: Ctx) -> None:
    tools: list[dict[str, Any]] = []
    for i, tool in enumerate(req.tools or []):
        for j, declaration in enumerate(tool.functionDeclarations or []):
            tools.append(_declaration(declaration, f"tools[{i}].functionDeclarations[{j}]", ctx))
        for key, value in (tool.model_extra or {}).items():
            if value is None:
                continue
            if key in _SEARCH_TOOLS:
                if not any(t.get("name") == "web_search" for t in tools):
                    tools.append({"type": "web_search_20250305", "name": "web_search"})
                ctx.note("google_search_as_web_search", "Anthropic's web search", f"tools[{i}]")
            else:
                ctx.note("server_tool_dropped", f"{key} runs at Google only", f"tools[{i}]")
    if tools:
        body["tools"] = tools
    calling = req.toolConfig.functionCallingConfig if req.toolConfig else None
    if calling is None:
        return
    path = "toolConfig.functionCallingConfig"
    names = [t["name"] for t in tools if "input_schema" in t]
    if not names:
        if (calling.mode or "AUTO").upper() not in ("AUTO", "NONE"):
            ctx.note("tool_choice_dropped", "a calling mode without functions", path)
        return
    body["tool_choice"] = _tool_choice(calling.mode, calling.allowedFunctionNames, names, ctx)


def _tool_choice(
    mode: str | None, allowed: list[str] | None, names: list[str], ctx: Ctx
) -> dict[str, Any]:
    path = "toolConfig.functionCallingConfig"
    mode = (mode or "AUTO").upper()
    if mode == "NONE":
        return {"type": "none"}
    if mode not in ("AUTO", "ANY", "VALIDATED", "MODE_UNSPECIFIED"):
        raise InvalidInput(f"unknown mode {mode!r}", f"{path}.mode")
    if mode == "VALIDATED":
        ctx.note("validated_mode_as_auto", "Anthropic validates no calls", f"{path}.mode")
    if mode == "ANY" and allowed and len(allowed) == 1 and allowed[0] in names:
        return {"type": "tool", "name": allowed[0]}
    if allowed and sorted(set(allowed)) != sorted(set(names)):
        detail = "Anthropic cannot restrict the tool list"
        ctx.note("allowed_function_names_ignored", detail, f"{path}.allowedFunctionNames")
    return {"type": "any" if mode == "ANY" else "auto"}


def _declaration(declaration: FunctionDeclaration, path: str, ctx: Ctx) -> dict[str, Any]:
    schema: Any
    if declaration.parametersJsonSchema is not None:
        schema = declaration.parametersJsonSchema
        if not isinstance(schema, dict):
            raise InvalidInput("a schema must be an object", f"{path}.parametersJsonSchema")
    elif declaration.parameters is not None:
        schema = json_schema(declaration.parameters, f"{path}.parameters")
    else:
        schema = {"type": "object", "properties": {}}
    schema = {"type": "object", **schema}
    if schema["type"] != "object":
        raise InvalidInput("function parameters must be an object schema", path)
    if not _TOOL_NAME.fullmatch(declaration.name):
        detail = f"{declaration.name!r} is not a legal Anthropic tool name"
        ctx.note("tool_name_invalid", detail, f"{path}.name")
    out: dict[str, Any] = {"name": declaration.name}
    if declaration.description:
        out["description"] = declaration.description
    out["input_schema"] = schema
    extra = sorted(k for k, v in (declaration.model_extra or {}).items() if v is not None)
    if extra:
        ctx.note("declaration_field_dropped", ", ".join(extra), path)
    return out


def _dropped(req: GenerateContentRequest, config: GenerationConfig, ctx: Ctx) -> None:
    if req.safetySettings:
        ctx.note("safety_settings_dropped", "Anthropic has no safety settings", "safetySettings")
    if req.cachedContent:
        detail = "Gemini context caches mean nothing to Anthropic"
        ctx.note("cached_content_dropped", detail, "cachedContent")
    for key, value in (req.model_extra or {}).items():
        if value is not None and key not in _QUIET_TOP_LEVEL:
            code = "labels_dropped" if key == "labels" else "unsupported_field_dropped"
            ctx.note(code, f"`{key}` has no Anthropic equivalent", key)
    for key, value in (config.model_extra or {}).items():
        if value is not None and value is not False:
            where = f"generationConfig.{key}"
            ctx.note("parameter_dropped", f"`{key}` has no Anthropic equivalent", where)
    modalities = (config.model_extra or {}).get("responseModalities")
    if isinstance(modalities, list) and any(str(m).upper() != "TEXT" for m in modalities):
        detail = "Anthropic answers in text only"
        ctx.note("modality_dropped", detail, "generationConfig.responseModalities")


# -- response ---------------------------------------------------------------------------------------

# Anthropic stop_reason -> Gemini finishReason
FINISH_REASONS = {
    "end_turn": "STOP",
    "stop_sequence": "STOP",
    "tool_use": "STOP",
    "pause_turn": "STOP",
    "max_tokens": "MAX_TOKENS",
    "model_context_window_exceeded": "MAX_TOKENS",
    "refusal": "SAFETY",
}


def finish_reason(stop_reason: str | None) -> tuple[str, str | None]:
    """Gemini finishReason for an Anthropic stop_reason, and a degradation code when lossy."""
    reason = FINISH_REASONS.get(stop_reason or "end_turn")
    if reason is None:
        return "STOP", "stop_reason_unmapped"
    return reason, "pause_turn_as_stop" if stop_reason == "pause_turn" else None


def usage_metadata(usage: dict[str, Any]) -> dict[str, int]:
    """Gemini usage: the prompt counts cache reads and writes; thoughts split out when known."""
    read = _int(usage.get("cache_read_input_tokens"))
    prompt = _int(usage.get("input_tokens")) + read + _int(usage.get("cache_creation_input_tokens"))
    output = _int(usage.get("output_tokens"))
    details = usage.get("output_tokens_details")
    thoughts = None
    if isinstance(details, dict) and details.get("thinking_tokens") is not None:
        thoughts = min(_int(details["thinking_tokens"]), output)
    out = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": output - (thoughts or 0),
        "totalTokenCount": prompt + output,
    }
    if read:
        out["cachedContentTokenCount"] = read
    if thoughts is not None:
        out["thoughtsTokenCount"] = thoughts
    return out


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


_BASE64 = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")


def our_signature(signature: str | None) -> str | None:
    """The Gemini signature inside a "gemini:" thinking signature; None for any other (Gemini's
    are base64: anything else was not made by Gemini and would be refused)."""
    if not signature or not signature.startswith(SIGNATURE_PREFIX):
        return None
    inner = signature[len(SIGNATURE_PREFIX) :]
    if not _BASE64.match(inner) or len(inner.rstrip("=")) % 4 == 1:
        return None
    return inner


def response(resp: MessagesResponse, *, model: str) -> Translated[dict[str, Any]]:
    """A GenerateContentResponse (one candidate) for this Messages response."""
    notes: list[Degradation] = []
    parts: list[dict[str, Any]] = []
    pending: str | None = None  # a signature for the next part
    for i, block in enumerate(resp.content):
        path = f"content[{i}]"
        part: dict[str, Any] | None = None
        if isinstance(block, ThinkingBlock):
            signature = our_signature(block.signature)
            if block.signature and signature is None:
                notes.append(Degradation("thinking_signature_dropped", "not Gemini's", path))
            if block.thinking or signature is None:
                if block.thinking:
                    part = {"text": block.thinking, "thought": True}
                    if signature:
                        part["thoughtSignature"] = signature
            else:
                if pending is not None:
                    parts.append({"text": "", "thoughtSignature": pending})
                pending = signature
                continue
        elif isinstance(block, TextBlock):
            if block.citations:
                notes.append(Degradation("citations_dropped", "Gemini parts carry none", path))
            part = {"text": block.text} if block.text or pending else None
        elif isinstance(block, ToolUseBlock):
            part = {"functionCall": {"name": block.name, "args": block.input, "id": block.id}}
        elif isinstance(block, RedactedThinkingBlock):
            notes.append(Degradation("redacted_thinking_dropped", "no Gemini form", path))
        else:
            notes.append(Degradation("block_dropped", f"{block.type} has no Gemini form", path))
        if part is None:
            continue
        if pending is not None and not part.get("thought"):
            part["thoughtSignature"] = pending
            pending = None
        elif pending is not None:
            parts.append({"text": "", "thoughtSignature": pending})
            pending = None
        parts.append(part)
    if pending is not None:
        parts.append({"text": "", "thoughtSignature": pending})
    reason, code = finish_reason(resp.stop_reason)
    if code:
        notes.append(Degradation(code, f"stop_reason {resp.stop_reason!r}", "stop_reason"))
    content: dict[str, Any] = {"role": "model"}
    if parts:
        content["parts"] = parts
    body = {
        "candidates": [{"content": content, "finishReason": reason, "index": 0}],
        "usageMetadata": usage_metadata(resp.usage.dump()),
        "modelVersion": model,
        "responseId": resp.id,
    }
    return Translated(body, notes)
