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

What it gives up, each time with a `Degradation`: system messages after the first turn move to the
top (`system_message_moved`: hoisting keeps their authority and can never break the tool_use /
tool_result pairing Anthropic insists on; inserting them as user text could); reasoning the client
echoes back (`reasoning_dropped`: it has no signature Anthropic would accept); audio, file ids,
message names, seed, penalties, logprobs, logit_bias. Thinking is switched off when Anthropic would
refuse it (forced tool use, a prefill, or a tool loop whose assistant turn has no signed thinking).
When the thinking budget does not fit under max_tokens, max_tokens grows to budget + 4096.
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
    MessagesResponse,
    RedactedThinkingBlock,
    ServerToolResultBlock,
    ServerToolUseBlock,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
)
from anyllm_cli.models.openai_chat import (
    AssistantMessage,
    ChatRequest,
    ContentPart,
    FilePart,
    FunctionMessage,
    ImagePart,
    InputAudioPart,
    RefusalPart,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
)
from anyllm_cli.translate.degradation import Degradation, Translated
from anyllm_cli.translate.messages_via_chat import parse_arguments


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
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
MAX_CACHE_BREAKPOINTS = 4
_DROPPED_PARAMS = ("seed", "presence_penalty", "frequency_penalty", "top_logprobs")
_DATA_URL = re.compile(r"data:([^;,]*)((?:;[^;,]*)*),(.*)", re.DOTALL)
_ID_OK = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_ID_BAD_CHARS = re.compile(r"[^a-zA-Z0-9_-]")


def tool_id(raw: str) -> str:
    """A tool-call id Anthropic accepts: kept when legal, else sanitised plus a hash of the original.

    A pure function of the id, so `tool_calls[].id` and `tool_call_id` map to the same value.
    """
    if _ID_OK.fullmatch(raw):
        return raw
    digest = hashlib.sha256(raw.encode()).hexdigest()[:12]
    stem = _ID_BAD_CHARS.sub("_", raw)[:48]
    return f"{stem}_{digest}" if stem else f"call_{digest}"


@dataclass(slots=True)
class _Ctx:
    degradations: list[Degradation] = field(default_factory=list)
    system: list[dict[str, Any]] = field(default_factory=list)
    breakpoints: int = 0
    where: dict[str, str] = field(default_factory=dict)  # tool id -> path of its call or result

    def note(self, code: str, detail: str, path: str = "") -> None:
        self.degradations.append(Degradation(code, detail, path))


@dataclass(slots=True)
class _Turn:
    role: str
    blocks: list[dict[str, Any]]
    path: str = "messages"  # the last message merged into it


# -- request ----------------------------------------------------------------------------------------


_DEFAULT_OPTIONS = MessagesOptions()


def request(
    req: ChatRequest, options: MessagesOptions = _DEFAULT_OPTIONS
) -> Translated[dict[str, Any]]:
    if req.n is not None and req.n != 1:
        raise InvalidInput("only n = 1 can be honoured by an Anthropic backend", "n")
    ctx = _Ctx()
    turns = _conversation(req, ctx)
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


def _sampling(req: ChatRequest, body: dict[str, Any], ctx: _Ctx) -> None:
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


def _dropped(req: ChatRequest, ctx: _Ctx) -> None:
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


# -- conversation -----------------------------------------------------------------------------------


def _conversation(req: ChatRequest, ctx: _Ctx) -> list[_Turn]:
    turns: list[_Turn] = []
    for i, msg in enumerate(req.messages):
        path = f"messages[{i}]"
        if isinstance(msg, SystemMessage):
            _system_message(msg, path, bool(turns), ctx)
            continue
        role, blocks = _message(msg, path, ctx)
        _extra_fields(msg, path, ctx)
        if not blocks:
            ctx.note("empty_message_dropped", "Anthropic refuses empty messages", path)
            continue
        if turns and turns[-1].role == role:
            turns[-1].blocks += blocks
            turns[-1].path = path
        else:
            turns.append(_Turn(role, blocks, path))
    for turn in turns:  # tool_result blocks must open their user turn
        if turn.role == "user":
            turn.blocks.sort(key=lambda b: b["type"] != "tool_result")
    _pair_tool_results(turns, ctx)
    if not turns or turns[0].role != "user":
        ctx.note("user_turn_inserted", "Anthropic conversations start with a user turn", "messages")
        turns.insert(0, _Turn("user", [{"type": "text", "text": "."}]))
    _strip_prefill(turns, ctx)
    return turns


def _system_message(msg: SystemMessage, path: str, late: bool, ctx: _Ctx) -> None:
    if late:
        ctx.note("system_message_moved", f"{msg.role} message hoisted into top-level system", path)
    if msg.name is not None:
        ctx.note("message_name_dropped", "Anthropic messages have no name", f"{path}.name")
    for block in _blocks(msg.content, path, ctx, allowed=frozenset({"text"})):
        ctx.system.append(block)


def _message(msg: Any, path: str, ctx: _Ctx) -> tuple[str, list[dict[str, Any]]]:
    if isinstance(msg, UserMessage):
        if msg.name is not None:
            ctx.note("message_name_dropped", "Anthropic messages have no name", f"{path}.name")
        return "user", _blocks(msg.content, path, ctx, frozenset({"text", "image", "document"}))
    if isinstance(msg, AssistantMessage):
        return "assistant", _assistant(msg, path, ctx)
    if isinstance(msg, ToolMessage):
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_id(msg.tool_call_id)}
        ctx.where["result:" + block["tool_use_id"]] = path
        content = _blocks(msg.content, path, ctx, frozenset({"text", "image", "document"}))
        if content:
            block["content"] = content
        return "user", [block]
    assert isinstance(msg, FunctionMessage)
    ctx.note("function_message_converted", "legacy function result sent as user text", path)
    return "user", [{"type": "text", "text": f"Result of {msg.name}: {msg.content or ''}"}]


def _assistant(msg: AssistantMessage, path: str, ctx: _Ctx) -> list[dict[str, Any]]:
    if msg.name is not None:
        ctx.note("message_name_dropped", "Anthropic messages have no name", f"{path}.name")
    for name in ("reasoning_content", "reasoning"):
        if getattr(msg, name):
            ctx.note("reasoning_dropped", "unsigned reasoning cannot be replayed", f"{path}.{name}")
    blocks = [] if msg.content is None else _blocks(msg.content, path, ctx, frozenset({"text"}))
    if msg.refusal and msg.refusal.strip():
        blocks.append({"type": "text", "text": msg.refusal})
    for k, call in enumerate(msg.tool_calls or []):
        args, degraded = parse_arguments(call.function.arguments)
        if degraded:
            where = f"{path}.tool_calls[{k}].function.arguments"
            ctx.note(
                "tool_arguments_invalid", "arguments are not a JSON object; kept as _raw", where
            )
        ctx.where["call:" + tool_id(call.id)] = f"{path}.tool_calls[{k}]"
        blocks.append(
            {"type": "tool_use", "id": tool_id(call.id), "name": call.function.name, "input": args}
        )
    return blocks


def _extra_fields(msg: Any, path: str, ctx: _Ctx) -> None:
    for name, value in (msg.model_extra or {}).items():
        if value is not None:
            ctx.note(
                "message_field_dropped", f"`{name}` has no Anthropic equivalent", f"{path}.{name}"
            )


def _pair_tool_results(turns: list[_Turn], ctx: _Ctx) -> None:
    """Every tool_use answered in the next user turn, every tool_result answering one (else 400).

    Runs after merging, so roles alternate and the turn after an assistant turn is a user turn.
    """
    open_ids: list[str] = []
    for turn in turns:
        if turn.role == "user":
            _check_results(turn, open_ids, ctx)
        open_ids = [b["id"] for b in turn.blocks if b["type"] == "tool_use"]
    if open_ids:
        turns.append(_Turn("user", []))
        _check_results(turns[-1], open_ids, ctx)


def _check_results(turn: _Turn, open_ids: list[str], ctx: _Ctx) -> None:
    results: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    answered: set[str] = set()
    for block in turn.blocks:
        tid = block.get("tool_use_id")
        if block["type"] != "tool_result":
            rest.append(block)
        elif tid in open_ids and tid not in answered:
            results.append(block)
            answered.add(tid)
        else:
            detail = f"no tool call {tid!r} is waiting for it; sent as text"
            ctx.note("orphan_tool_result", detail, ctx.where.get(f"result:{tid}", ""))
            rest += [{"type": "text", "text": f"Result of tool call {tid}:"}]
            rest += block.get("content") or []
    for missing in (i for i in open_ids if i not in answered):
        detail = f"tool call {missing!r} has no result; an error result stands in"
        ctx.note("tool_result_missing", detail, ctx.where.get(f"call:{missing}", ""))
        results.append(
            {
                "type": "tool_result",
                "tool_use_id": missing,
                "is_error": True,
                "content": [{"type": "text", "text": "tool result missing"}],
            }
        )
    turn.blocks = results + rest


def _strip_prefill(turns: list[_Turn], ctx: _Ctx) -> None:
    last = turns[-1]
    if last.role != "assistant" or last.blocks[-1]["type"] != "text":
        return
    text = last.blocks[-1]["text"]  # never blank: blank text blocks are not made
    if text != text.rstrip():
        detail = "a final assistant turn cannot end in whitespace"
        ctx.note("prefill_whitespace_stripped", detail, last.path)
        last.blocks[-1]["text"] = text.rstrip()


# -- content parts ----------------------------------------------------------------------------------


def _blocks(
    content: str | list[ContentPart], path: str, ctx: _Ctx, allowed: frozenset[str]
) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content.strip() else []
    out: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        where = f"{path}.content[{j}]"
        block = _part(part, where, ctx)
        if block is None:
            continue
        if block["type"] not in allowed:
            ctx.note("part_dropped", f"{block['type']} is not allowed here", where)
            continue
        _cache_control(part, block, where, ctx)
        out.append(block)
    return out


def _part(part: ContentPart, path: str, ctx: _Ctx) -> dict[str, Any] | None:
    if isinstance(part, TextPart | RefusalPart):
        text = part.text if isinstance(part, TextPart) else part.refusal
        return {"type": "text", "text": text} if text.strip() else None  # blank text is refused
    if isinstance(part, ImagePart):
        return _image(part, path, ctx)
    if isinstance(part, FilePart):
        return _file(part, path, ctx)
    if isinstance(part, InputAudioPart):
        ctx.note("audio_dropped", "Anthropic takes no audio input", path)
        return None
    ctx.note("unknown_part_dropped", f"unknown part type {part.type!r}", path)
    return None


def _cache_control(part: ContentPart, block: dict[str, Any], path: str, ctx: _Ctx) -> None:
    """Clients that know Anthropic (OpenRouter, LiteLLM style) put cache_control on parts."""
    value = (part.model_extra or {}).get("cache_control")
    if value is None:
        return
    if not isinstance(value, dict) or value.get("type") != "ephemeral":
        ctx.note("cache_control_dropped", "only ephemeral cache_control exists", path)
        return
    if ctx.breakpoints >= MAX_CACHE_BREAKPOINTS:
        ctx.note("cache_control_dropped", "Anthropic allows at most 4 breakpoints", path)
        return
    ctx.breakpoints += 1
    block["cache_control"] = value


def _data_url(url: str, path: str) -> tuple[str, str]:
    match = _DATA_URL.fullmatch(url)
    if match is None or ";base64" not in match.group(2).lower():
        raise InvalidInput("a data URL must be base64-encoded (data:<type>;base64,...)", path)
    media = match.group(1).lower() or "application/octet-stream"
    return media, match.group(3)


def _image(part: ImagePart, path: str, ctx: _Ctx) -> dict[str, Any] | None:
    url = part.image_url.url
    if part.image_url.detail not in (None, "auto"):
        ctx.note("image_detail_dropped", "Anthropic has no image detail level", path)
    if url.startswith("data:"):
        media, data = _data_url(url, f"{path}.image_url.url")
        media = "image/jpeg" if media == "image/jpg" else media
        if media not in IMAGE_TYPES:
            ctx.note("image_dropped", f"Anthropic takes no {media} images", path)
            return None
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    ctx.note("image_dropped", "only data: and http(s) image URLs can be sent", path)
    return None


def _file(part: FilePart, path: str, ctx: _Ctx) -> dict[str, Any] | None:
    file = part.file
    if file.file_data is None:
        if file.file_id is None:
            raise InvalidInput("a file part needs file_data or file_id", f"{path}.file")
        ctx.note("file_id_dropped", "OpenAI file ids mean nothing to Anthropic", path)
        return None
    if file.file_data.startswith("data:"):
        media, data = _data_url(file.file_data, f"{path}.file.file_data")
    elif (file.filename or "").lower().endswith(".pdf"):
        media, data = "application/pdf", file.file_data
    else:
        ctx.note("file_dropped", "file_data without a media type", path)
        return None
    block: dict[str, Any] = {"type": "document"}
    if media == "application/pdf":
        block["source"] = {"type": "base64", "media_type": media, "data": data}
    elif media.startswith("text/"):
        try:
            text = base64.b64decode(data, validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            raise InvalidInput("file_data is not valid base64", f"{path}.file.file_data") from None
        block["source"] = {"type": "text", "media_type": "text/plain", "data": text}
    else:
        ctx.note("file_dropped", f"Anthropic documents cannot be {media}", path)
        return None
    if file.filename:
        block["title"] = file.filename
    return block


def _system(ctx: _Ctx) -> str | list[dict[str, Any]]:
    """One string, unless a block carries cache_control (only blocks can)."""
    if any("cache_control" in b for b in ctx.system):
        return ctx.system
    return "\n\n".join(b["text"] for b in ctx.system)


# -- tools, thinking, output format -----------------------------------------------------------------


def _tools(req: ChatRequest, body: dict[str, Any], ctx: _Ctx) -> None:
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


def _tool_choice(choice: str | dict[str, Any] | None, ctx: _Ctx) -> dict[str, Any] | None:
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


def _thinking(req: ChatRequest, body: dict[str, Any], turns: list[_Turn], ctx: _Ctx) -> None:
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


def _response_format(req: ChatRequest, body: dict[str, Any], ctx: _Ctx) -> None:
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


# -- response ---------------------------------------------------------------------------------------

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: str | None, has_tool_calls: bool) -> tuple[str, str | None]:
    """OpenAI finish_reason for an Anthropic stop_reason, and a degradation code when lossy."""
    reason = _FINISH_REASONS.get(stop_reason or "end_turn")
    code = None
    if reason is None:
        reason, code = "stop", "unknown_stop_reason"
    elif stop_reason == "pause_turn":
        code = "pause_turn_as_stop"
    if has_tool_calls and reason == "stop":
        reason = "tool_calls"
    elif reason == "tool_calls" and not has_tool_calls:
        reason = "stop"
    return reason, code


def chat_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """OpenAI usage from Anthropic usage: `prompt_tokens` includes cache reads and writes."""
    fresh, read = _int(usage.get("input_tokens")), _int(usage.get("cache_read_input_tokens"))
    written, output = (
        _int(usage.get("cache_creation_input_tokens")),
        _int(usage.get("output_tokens")),
    )
    prompt = fresh + read + written
    details: dict[str, int] = {"cached_tokens": read}
    if written:
        details["cache_write_tokens"] = written
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
        "prompt_tokens_details": details,
    }
    output_details = usage.get("output_tokens_details")
    if isinstance(output_details, dict) and "thinking_tokens" in output_details:
        out["completion_tokens_details"] = {
            "reasoning_tokens": _int(output_details["thinking_tokens"])
        }
    return out


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def response(
    resp: MessagesResponse, *, requested_model: str, created: int
) -> Translated[dict[str, Any]]:
    notes: list[Degradation] = []
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for i, block in enumerate(resp.content):
        path = f"content[{i}]"
        if isinstance(block, TextBlock):
            texts.append(block.text)
            if block.citations:
                notes.append(Degradation("citations_dropped", "OpenAI has no citations", path))
        elif isinstance(block, ThinkingBlock):
            if block.thinking:
                thoughts.append(block.thinking)
            if block.signature:
                notes.append(Degradation("thinking_signature_dropped", "not replayable", path))
        elif isinstance(block, ToolUseBlock):
            arguments = json.dumps(block.input, ensure_ascii=False, separators=(",", ":"))
            function = {"name": block.name, "arguments": arguments}
            calls.append({"id": block.id, "type": "function", "function": function})
        else:
            notes.append(_dropped_block(block, path))
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if thoughts:
        message["reasoning_content"] = "\n\n".join(thoughts)
    if calls:
        message["tool_calls"] = calls
    reason, code = finish_reason(resp.stop_reason, bool(calls))
    if code:
        notes.append(Degradation(code, f"stop_reason {resp.stop_reason!r}", "stop_reason"))
    body = {
        "id": f"chatcmpl-{resp.id}",
        "object": "chat.completion",
        "created": created,
        "model": requested_model,
        "choices": [{"index": 0, "message": message, "finish_reason": reason, "logprobs": None}],
        "usage": chat_usage(resp.usage.dump()),
    }
    return Translated(body, notes)


def _dropped_block(block: Any, path: str) -> Degradation:
    if isinstance(block, RedactedThinkingBlock):
        return Degradation("redacted_thinking_dropped", "OpenAI clients cannot carry it", path)
    if isinstance(block, ServerToolUseBlock | ServerToolResultBlock):
        return Degradation("server_tool_dropped", f"{block.type} has no OpenAI form", path)
    return Degradation("block_dropped", f"{block.type} has no OpenAI form", path)
