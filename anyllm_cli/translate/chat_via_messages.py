"""OpenAI Chat clients, Anthropic Messages upstreams: requests out, responses back.

| OpenAI Chat (client)                       | Anthropic Messages (upstream)                             |
| ------------------------------------------ | --------------------------------------------------------- |
| model                                      | model, through `MessagesOptions.map_model`                |
| system / developer messages (anywhere)     | `system` (joined in order; text blocks if cache_control)  |
| user content parts text / image_url / file | text / image (base64 or url source) / document blocks     |
| assistant content + tool_calls             | text + tool_use blocks (arguments parsed to an object)    |
| tool messages (one per call)               | ONE user turn: tool_result blocks first, then user text   |
| tool_calls[].id, tool_call_id              | the same id, or a sanitised one matching ^[a-zA-Z0-9_-]+$ |
| max_completion_tokens / max_tokens         | max_tokens (default `MessagesOptions.default_max_tokens`) |
| temperature (0-2) / top_p / stop           | temperature clamped to 0-1 / top_p if alone / stop_seqs   |
| tools[].function.parameters                | tools[].input_schema                                      |
| tool_choice none/auto/required/{function}  | tool_choice none/auto/any/tool                            |
| parallel_tool_calls: false                 | tool_choice.disable_parallel_tool_use: true               |
| reasoning_effort low/medium/high/xhigh/max | thinking enabled, budget 2048/8192/16384/24576/27648      |
| response_format json_schema / json_object  | output_config.format / an instruction appended to system  |
| user (or safety_identifier)                | metadata.user_id                                          |
| stream                                     | stream (stream_options is for the stream translator)      |
| n > 1                                      | refused: InvalidInput naming `n`                          |

Back: text blocks joined into `content`; thinking into `reasoning_content` (a widely read extension);
tool_use into `tool_calls`; stop_reason into finish_reason; `prompt_tokens` counts cached tokens too.
A Gemini thought signature rides on the tool call as `extra_content.google.thought_signature` (as
Gemini's own OpenAI-compatible endpoint does) and, sent back, returns to the functionCall.

What it gives up, each time with a `Degradation`: system messages after the first turn move to the
top (`system_message_moved`: hoisting keeps their authority and can never break the tool_use /
tool_result pairing Anthropic insists on; inserting them as user text could); reasoning the client
echoes back (`reasoning_dropped`: it has no signature Anthropic would accept); audio, file ids,
message names, seed, penalties, logprobs, logit_bias. Thinking is switched off when Anthropic would
refuse it (forced tool use, a prefill, or a tool loop whose assistant turn has no signed thinking).
When the thinking budget does not fit under max_tokens, max_tokens grows to budget + 4096.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anyllm_cli.errors import InvalidInput
from anyllm_cli.models.openai_chat import ChatRequest
from anyllm_cli.translate._messages_content import IMAGE_TYPES, MAX_CACHE_BREAKPOINTS
from anyllm_cli.translate._messages_context import MessagesContext, Turn, tool_id
from anyllm_cli.translate._messages_reply import chat_usage, finish_reason, response
from anyllm_cli.translate._messages_turns import conversation
from anyllm_cli.translate.degradation import Translated

__all__ = [
    "EFFORT_BUDGETS",
    "IMAGE_TYPES",
    "JSON_OBJECT_INSTRUCTION",
    "MAX_CACHE_BREAKPOINTS",
    "NO_THINKING_EFFORTS",
    "THINKING_HEADROOM",
    "MessagesOptions",
    "chat_usage",
    "finish_reason",
    "request",
    "response",
    "tool_id",
]


def _identity(name: str) -> str:
    return name


@dataclass(frozen=True, slots=True)
class MessagesOptions:
    map_model: Callable[[str], str] = _identity
    default_max_tokens: int = 8192


EFFORT_BUDGETS = {"low": 2048, "medium": 8192, "high": 16384, "xhigh": 24576, "max": 27648}
NO_THINKING_EFFORTS = frozenset({"none", "minimal"})
THINKING_HEADROOM = 4096  # answer tokens kept above the budget when max_tokens had to grow
JSON_OBJECT_INSTRUCTION = "Respond with a single valid JSON object and nothing else."
_DROPPED_PARAMS = ("seed", "presence_penalty", "frequency_penalty", "top_logprobs")


# -- request ----------------------------------------------------------------------------------------


_DEFAULT_OPTIONS = MessagesOptions()


def request(
    req: ChatRequest, options: MessagesOptions = _DEFAULT_OPTIONS
) -> Translated[dict[str, Any]]:
    if req.n is not None and req.n != 1:
        raise InvalidInput("only n = 1 can be honoured by an Anthropic backend", "n")
    ctx = MessagesContext()
    turns = conversation(req, ctx)
    body: dict[str, Any] = {"max_tokens": _max_tokens(req, options)}
    _sampling(req, body, ctx)
    _tools(req, body, ctx)
    _thinking(req, body, turns, ctx)
    _response_format(req, body, ctx)
    user_id = req.user or _str_extra(req, "safety_identifier")
    if user_id:
        body["metadata"] = {"user_id": user_id}
    if req.stream is not None:
        body["stream"] = req.stream
    _dropped(req, ctx)
    head: dict[str, Any] = {"model": options.map_model(req.model)}
    if ctx.system:
        head["system"] = _system(ctx)
    head["messages"] = [{"role": t.role, "content": t.blocks} for t in turns]
    return Translated({**head, **body}, ctx.degradations)


def _max_tokens(req: ChatRequest, options: MessagesOptions) -> int:
    value = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    if value is None:
        return options.default_max_tokens
    if value < 0:
        name = "max_completion_tokens" if req.max_completion_tokens is not None else "max_tokens"
        raise InvalidInput("must not be negative", name)
    return value


def _sampling(req: ChatRequest, body: dict[str, Any], ctx: MessagesContext) -> None:
    if req.temperature is not None:
        clamped = min(max(req.temperature, 0.0), 1.0)
        if clamped != req.temperature:
            ctx.note("temperature_clamped", f"{req.temperature} -> {clamped}", "temperature")
        body["temperature"] = clamped
    if req.top_p is not None and req.temperature is None:
        body["top_p"] = req.top_p
    elif req.top_p not in (None, 1):  # newer models refuse both; temperature is the usual intent
        ctx.note("top_p_dropped", "Anthropic takes temperature or top_p, not both", "top_p")
    top_k = (req.model_extra or {}).get("top_k")
    if isinstance(top_k, int) and not isinstance(top_k, bool):
        body["top_k"] = top_k
    stops = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    kept = [s for s in stops if s.strip()]
    if len(kept) < len(stops):
        ctx.note(
            "stop_sequence_dropped", "Anthropic refuses whitespace-only stop sequences", "stop"
        )
    if kept:
        body["stop_sequences"] = kept


def _dropped(req: ChatRequest, ctx: MessagesContext) -> None:
    for name in _DROPPED_PARAMS:
        if getattr(req, name) not in (None, 0):
            ctx.note(f"{name}_dropped", f"Anthropic has no `{name}`", name)
    if req.logprobs:
        ctx.note("logprobs_dropped", "Anthropic returns no logprobs", "logprobs")
    if req.metadata:
        ctx.note("metadata_dropped", "Anthropic metadata holds only user_id", "metadata")
    if req.prompt_cache_key is not None:
        ctx.note(
            "prompt_cache_key_dropped", "Anthropic caches by cache_control", "prompt_cache_key"
        )
    for name, value in (req.model_extra or {}).items():
        if value is None or name in ("top_k", "safety_identifier"):
            continue
        code = "logit_bias_dropped" if name == "logit_bias" else "parameter_dropped"
        ctx.note(code, f"`{name}` has no Anthropic equivalent", name)


def _str_extra(model: Any, name: str) -> str | None:
    value = (model.model_extra or {}).get(name)
    return value if isinstance(value, str) and value else None


def _system(ctx: MessagesContext) -> str | list[dict[str, Any]]:
    """One string, unless a block carries cache_control (only blocks can)."""
    if any("cache_control" in b for b in ctx.system):
        return ctx.system
    return "\n\n".join(b["text"] for b in ctx.system)


# -- tools, thinking, output format -----------------------------------------------------------------


def _tools(req: ChatRequest, body: dict[str, Any], ctx: MessagesContext) -> None:
    if not req.tools:
        if req.tool_choice not in (None, "none", "auto"):
            ctx.note("tool_choice_dropped", "tool_choice without tools", "tool_choice")
        return
    tools = []
    for i, tool in enumerate(req.tools):
        fn = tool.function
        schema = dict(fn.parameters) if fn.parameters else {"type": "object", "properties": {}}
        schema.setdefault("type", "object")
        if schema["type"] != "object":
            raise InvalidInput("tool parameters must be an object schema", f"tools[{i}].function")
        out: dict[str, Any] = {"name": fn.name, "input_schema": schema}
        if fn.description:
            out["description"] = fn.description
        if fn.strict is not None:
            out["strict"] = fn.strict
        tools.append(out)
    body["tools"] = tools
    choice = _tool_choice(req.tool_choice, ctx)
    if req.parallel_tool_calls is False and (choice or {}).get("type") != "none":
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    if choice is not None:
        body["tool_choice"] = choice


def _tool_choice(
    choice: str | dict[str, Any] | None, ctx: MessagesContext
) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        mapped = {"none": "none", "auto": "auto", "required": "any"}.get(choice)
        if mapped is None:
            raise InvalidInput(f"unknown tool_choice {choice!r}", "tool_choice")
        return {"type": mapped}
    fn = choice.get("function")
    if (
        choice.get("type") == "function"
        and isinstance(fn, dict)
        and isinstance(fn.get("name"), str)
    ):
        return {"type": "tool", "name": fn["name"]}
    allowed = choice.get("allowed_tools")
    if choice.get("type") == "allowed_tools" and isinstance(allowed, dict):
        ctx.note("allowed_tools_ignored", "Anthropic cannot restrict the tool list", "tool_choice")
        return {"type": "any" if allowed.get("mode") == "required" else "auto"}
    raise InvalidInput("unsupported tool_choice object", "tool_choice")


def _thinking(
    req: ChatRequest, body: dict[str, Any], turns: list[Turn], ctx: MessagesContext
) -> None:
    effort = req.reasoning_effort
    if effort is None or effort in NO_THINKING_EFFORTS:
        return
    if effort not in EFFORT_BUDGETS:
        raise InvalidInput(f"unknown reasoning_effort {effort!r}", "reasoning_effort")
    why = None
    if body.get("tool_choice", {}).get("type") in ("any", "tool"):
        why = "Anthropic forbids forced tool use with thinking"
    elif turns[-1].role == "assistant":
        why = "Anthropic forbids a prefill with thinking"
    elif any(b["type"] == "tool_result" for b in turns[-1].blocks):
        why = "the assistant turn of this tool loop has no signed thinking block to replay"
    if why:
        ctx.note("thinking_disabled", why, "reasoning_effort")
        return
    budget = EFFORT_BUDGETS[effort]
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if body["max_tokens"] <= budget:
        if req.max_completion_tokens is not None or req.max_tokens is not None:
            ctx.note(
                "max_tokens_raised", f"raised above the thinking budget {budget}", "max_tokens"
            )
        body["max_tokens"] = budget + THINKING_HEADROOM
    if body.get("temperature", 1) != 1:
        ctx.note("temperature_dropped", "thinking requires the default temperature", "temperature")
        del body["temperature"]
    if body.get("top_p", 1) < 0.95:
        ctx.note("top_p_dropped", "thinking requires top_p >= 0.95", "top_p")
        del body["top_p"]
    if body.pop("top_k", None) is not None:
        ctx.note("top_k_dropped", "thinking forbids top_k", "top_k")


def _response_format(req: ChatRequest, body: dict[str, Any], ctx: MessagesContext) -> None:
    fmt = req.response_format
    if fmt is None or fmt.get("type") == "text":
        return
    if fmt.get("type") == "json_object":
        ctx.note("json_object_emulated", "asked for in the system prompt", "response_format")
        ctx.system.append({"type": "text", "text": JSON_OBJECT_INSTRUCTION})
        return
    spec = fmt.get("json_schema")
    if fmt.get("type") != "json_schema" or not isinstance(spec, dict):
        raise InvalidInput("unsupported response_format", "response_format")
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        raise InvalidInput("a JSON schema object is required", "response_format.json_schema.schema")
    body["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
