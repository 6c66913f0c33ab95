"""What a piece of input is: JSON, JSON Lines or SSE; Anthropic or OpenAI; request, response or stream.

`sniff(head)` looks at the first bytes only (so a stream or a multi-GB JSONL file is never read
whole): SSE when the first line is an SSE field (`event:`, `data:`, a `:` comment), JSON Lines when
the first line is a complete JSON value and more follows, otherwise one JSON document. For SSE it
also names the API from the first telling event: an `event:` name or a `type` of Anthropic's, or an
OpenAI `chat.completion.chunk` / `[DONE]`.

`detect(body)` names the API and kind of one JSON body. Responses are plain: `type: "message"` is
Anthropic, `choices` / `object: "chat.completion"` is OpenAI. Requests are told apart by marks that
only one API has:

| Anthropic marks                                   | OpenAI marks                                        |
| ------------------------------------------------- | --------------------------------------------------- |
| top-level `system`, `stop_sequences`, `top_k`,    | top-level `max_completion_tokens`, `n`, `stop`,     |
| `thinking`, `output_config`, `container`, ...     | `stream_options`, `response_format`, `user`, ...    |
| blocks `tool_use`, `tool_result`, `image`,        | roles `developer`, `tool`, `function`; `tool_calls`,|
| `document`, `thinking`, `*_tool_result`, ...      | `tool_call_id`; parts `image_url`, `file`, ...      |
| `cache_control` / `citations` on a block          | tools `{"type":"function","function":{...}}`        |
| tools with `input_schema`; `tool_choice` object   | `tool_choice` string or `{"type":"function"}`       |
| `{"type":"auto"|"any"|"tool"|"none"}`             |                                                     |

With marks of one side only, that side wins. With none, a request without `max_tokens` is OpenAI
(Anthropic requires it) and so is one with a `system` role message; one with `max_tokens` (valid in
both APIs, the README's own example) is taken as Anthropic's, whose required field it is, unless
`--to anthropic` says the input is another API. Marks of both sides are refused with a message
asking for `--from`. Bedrock Converse bodies are told by `modelId`, `inferenceConfig`, `toolConfig`
or content blocks without a `type` (`{"text": ...}`), and their streams by `messageStart`-style
event keys.

`--to X` alone does not force the input's API: input that is already X's is routed X -> X, which
the route table answers by validating it and writing it back (never by parsing it with the wrong
API's schema).

Stdlib only (it is imported when the CLI starts); the event and block names repeat a few of
`models/anthropic.py`'s, and a test keeps them in step.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from anyllm_cli.errors import InvalidInput
from anyllm_cli.translate.streams.sse import SSEDecoder

Api = Literal["anthropic", "openai", "responses", "gemini", "bedrock"]
Kind = Literal["request", "response", "stream"]
Format = Literal["json", "jsonl", "sse"]

NAMES: dict[Api, str] = {
    "anthropic": "Anthropic",
    "openai": "OpenAI",
    "responses": "OpenAI Responses",
    "gemini": "Gemini",
    "bedrock": "Bedrock Converse",
}

ANTHROPIC_EVENTS = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
    }
)
_ANTHROPIC_KEYS = (
    "system",
    "stop_sequences",
    "top_k",
    "thinking",
    "output_config",
    "context_management",
    "container",
    "mcp_servers",
    "inference_geo",
    "output_format",
)
_OPENAI_KEYS = (
    "max_completion_tokens",
    "n",
    "stop",
    "stream_options",
    "response_format",
    "reasoning_effort",
    "parallel_tool_calls",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "seed",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "modalities",
    "audio",
    "prediction",
    "store",
    "verbosity",
    "web_search_options",
    "functions",
    "function_call",
)
ANTHROPIC_BLOCKS = frozenset(
    {
        "image",
        "document",
        "search_result",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
        "server_tool_use",
        "mcp_tool_use",
        "container_upload",
        "tool_reference",
        "mid_conv_system",
    }
)
_OPENAI_PARTS = frozenset({"image_url", "input_audio", "file", "refusal"})
_OPENAI_ROLES = frozenset({"developer", "tool", "function"})
_OPENAI_MESSAGE_KEYS = ("tool_calls", "tool_call_id", "function_call", "name")
_ANTHROPIC_CHOICES = frozenset({"auto", "any", "tool", "none"})
_SSE_FIELDS = (b"data:", b"event:", b":", b"id:", b"retry:")
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Detected:
    """A route: what the input is (`source`, `kind`) and what to turn it into (`target`)."""

    source: Api
    target: Api
    kind: Kind


def other(api: Api) -> Api:
    """The default other side: Anthropic's is OpenAI Chat; every other API's is Anthropic."""
    return "openai" if api == "anthropic" else "anthropic"


def pair(source: Api | None, target: Api | None) -> tuple[Api | None, Api | None]:
    """Fill in one side from the other (every route has Anthropic on one side). With only `--to X`
    the input is Anthropic's, unless detection finds it is already X's (see `detect`)."""
    if source is None and target is not None and target != "anthropic":
        return "anthropic", target
    if target is None and source is not None:
        return source, other(source)
    return source, target


# -- JSON bodies -------------------------------------------------------------------------------------


def parse_json(data: bytes | str, *, line: int | None = None) -> Any:
    """JSON text -> value; a syntax error names its line (`line`: the number of a one-line input)."""
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        where = f"line {line if line is not None else exc.lineno} column {exc.colno}"
        raise InvalidInput(f"invalid JSON: {exc.msg}", where) from None
    except UnicodeDecodeError as exc:
        where = f"line {line}" if line is not None else ""
        raise InvalidInput(f"not UTF-8 ({exc.reason} at byte {exc.start})", where) from None
    except RecursionError:
        raise InvalidInput("invalid JSON: nested too deeply") from None


def detect(
    body: Any, *, source: Api | None = None, target: Api | None = None, kind: Kind | None = None
) -> Detected:
    """The route for one JSON body; `source`, `target` and `kind` force what they name."""
    if not isinstance(body, dict):
        raise InvalidInput(f"expected a JSON object, got {type(body).__name__}")
    if kind == "stream":
        raise InvalidInput("--kind stream expects SSE text (`event:` / `data:` lines), not JSON")
    kind = kind or body_kind(body)
    if source is None:
        source = _source(body, kind, target)
    return Detected(source, target or other(source), kind)


def _source(body: dict[str, Any], kind: Kind, target: Api | None) -> Api:
    """The input's API. Under `--to X` (X not Anthropic) it is X's when it clearly is, else
    Anthropic's (every route has Anthropic on one side)."""
    if target is None or target == "anthropic":
        not_anthropic = target == "anthropic"  # `--to anthropic`: a Chat request when unsure
        return request_api(body, not_anthropic) if kind == "request" else response_api(body)
    try:
        found = request_api(body) if kind == "request" else response_api(body)
    except InvalidInput:
        return "anthropic"
    return found if found == target else "anthropic"


def body_kind(body: dict[str, Any]) -> Kind:
    if body.get("object") == "chat.completion.chunk" or _str(body.get("type")) in ANTHROPIC_EVENTS:
        raise InvalidInput("this is one stream event: pass the whole SSE stream (`data:` lines)")
    if (_str(body.get("type")) or "").startswith("response."):  # a Responses stream event
        raise InvalidInput("this is one stream event: pass the whole SSE stream (`data:` lines)")
    if "messages" in body or "contents" in body or ("input" in body and "model" in body):
        return "request"
    if (
        body.get("type") == "message"
        or "choices" in body
        or body.get("object") in ("chat.completion", "response")
        or "candidates" in body
        or "promptFeedback" in body
        or ("output" in body and "stopReason" in body)
    ):
        return "response"
    if "error" in body:
        raise InvalidInput("this is an error body: translate requests, responses and streams")
    raise InvalidInput(
        "cannot tell what this is: expected a request (with `messages`) or a response "
        '(`"type": "message"` or `choices`)'
    )


def response_api(body: dict[str, Any]) -> Api:
    found: list[Api] = []
    if body.get("type") == "message":
        found.append("anthropic")
    if "choices" in body or body.get("object") == "chat.completion":
        found.append("openai")
    if body.get("object") == "response":
        found.append("responses")
    if "candidates" in body or "promptFeedback" in body:
        found.append("gemini")
    if "output" in body and "stopReason" in body:
        found.append("bedrock")
    if len(found) == 1:
        return found[0]
    raise InvalidInput(
        "cannot tell whether this is an Anthropic or an OpenAI response (or another API's); "
        "use --from or --to"
    )


def request_api(body: dict[str, Any], not_anthropic: bool = False) -> Api:
    """The API of a request; `not_anthropic` (from `--to anthropic`) settles a body valid in both
    as OpenAI's, while one with Anthropic marks only is Anthropic's (translated to itself)."""
    if "contents" in body and "messages" not in body:
        return "gemini"
    if "input" in body and "messages" not in body:
        return "responses"
    if _is_converse(body):
        return "bedrock"
    found: dict[Api, str] = {}
    for api, mark in marks(body):
        found.setdefault(api, mark)
        if len(found) == 2:
            if not_anthropic:
                return "openai"
            raise InvalidInput(
                "cannot tell whether this is an Anthropic or an OpenAI request: "
                f"{found['anthropic']} is Anthropic's, {found['openai']} is OpenAI's; use --from"
            )
    if found:
        return next(iter(found))
    messages = body.get("messages")
    roles = (
        [m.get("role") for m in messages if isinstance(m, dict)]
        if isinstance(messages, list)
        else []
    )
    if not_anthropic or "max_tokens" not in body or "system" in roles:
        return "openai"
    return "anthropic"  # valid in both: `max_tokens` is required by Anthropic only


_CONVERSE_KEYS = (
    "modelId",
    "inferenceConfig",
    "toolConfig",
    "additionalModelRequestFields",
    "guardrailConfig",
    "performanceConfig",
)
_CONVERSE_BLOCKS = frozenset(
    {"text", "image", "document", "toolUse", "toolResult", "reasoningContent", "cachePoint"}
)
CONVERSE_EVENTS = frozenset(
    {
        "messageStart",
        "contentBlockStart",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    }
)


def _is_converse(body: dict[str, Any]) -> bool:
    """A Converse request: its own top-level keys, or blocks keyed by kind with no `type`."""
    if any(key in body for key in _CONVERSE_KEYS):
        return True
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and "type" not in block and block.keys() & _CONVERSE_BLOCKS:
                return True
    return False


def marks(body: dict[str, Any]) -> Iterator[tuple[Api, str]]:
    """Every sign of one API in a request, as (api, where) pairs, top level first."""
    for key in _ANTHROPIC_KEYS:
        if key in body:
            yield "anthropic", f"`{key}`"
    for key in _OPENAI_KEYS:
        if key in body:
            yield "openai", f"`{key}`"
    choice = body.get("tool_choice")
    if isinstance(choice, str) or (isinstance(choice, dict) and choice.get("type") == "function"):
        yield "openai", "`tool_choice`"
    elif isinstance(choice, dict) and _str(choice.get("type")) in _ANTHROPIC_CHOICES:
        yield "anthropic", "`tool_choice`"
    tools = body.get("tools")
    for i, tool in enumerate(tools if isinstance(tools, list) else []):
        if isinstance(tool, dict) and ("function" in tool or "custom" in tool):
            yield "openai", f"tools[{i}]"
        elif isinstance(tool, dict) and ("input_schema" in tool or "name" in tool):
            yield "anthropic", f"tools[{i}]"
    messages = body.get("messages")
    for i, message in enumerate(messages if isinstance(messages, list) else []):
        if isinstance(message, dict):
            yield from _message_marks(message, f"messages[{i}]")


def _message_marks(message: dict[str, Any], where: str) -> Iterator[tuple[Api, str]]:
    if _str(message.get("role")) in _OPENAI_ROLES:
        yield "openai", f"{where}.role"
    for key in _OPENAI_MESSAGE_KEYS:
        if key in message:
            yield "openai", f"{where}.{key}"
    content = message.get("content")
    for j, block in enumerate(content if isinstance(content, list) else []):
        if not isinstance(block, dict):
            continue
        btype = _str(block.get("type"))
        if btype in _OPENAI_PARTS:
            yield "openai", f"{where}.content[{j}]"
        elif _anthropic_block(btype, block):
            yield "anthropic", f"{where}.content[{j}]"


def _anthropic_block(btype: str | None, block: dict[str, Any]) -> bool:
    if btype is not None and (btype in ANTHROPIC_BLOCKS or btype.endswith("_tool_result")):
        return True
    return "cache_control" in block or "citations" in block


def _str(value: Any) -> str | None:
    """A JSON value as a set-lookup key: only strings (a list is not hashable)."""
    return value if isinstance(value, str) else None


# -- the first bytes ---------------------------------------------------------------------------------


def sniff(
    head: bytes, *, at_eof: bool, source: Api | None = None
) -> tuple[Format, Api | None] | None:
    """The input's format from its first bytes, and for SSE the API of its events.

    None means "read more": it never returns None when `at_eof`. The API of an SSE stream is looked
    for only when `source` is not known already.
    """
    text = head.removeprefix(_BOM).lstrip()
    if not text:
        if at_eof:
            raise InvalidInput("no input")
        return None
    if text[:1] in (b"{", b"["):
        fmt = _json_format(text, at_eof)
        return None if fmt is None else (fmt, source)
    newline = text.find(b"\n")
    if newline < 0 and not at_eof:
        return None
    if not text.startswith(_SSE_FIELDS):
        return "json", source  # the JSON parser will say what is wrong with it
    if source is not None:
        return "sse", source
    found = stream_api(text, at_eof=at_eof)
    return None if found is None else ("sse", found)


def _json_format(text: bytes, at_eof: bool) -> Format | None:
    newline = text.find(b"\n")
    if newline < 0:
        return "json" if at_eof else None
    try:
        json.loads(text[:newline])
    except ValueError:
        return "json"  # the first line is not a whole value: one (indented) document
    if text[newline:].strip():
        return "jsonl"
    return "json" if at_eof else None


def stream_api(text: bytes, *, at_eof: bool) -> Api | None:
    """Whose events these are, from the first event that tells; None: not told yet."""
    decoder = SSEDecoder()
    events = decoder.decode(text) + (decoder.flush() if at_eof else [])
    for event in events:
        if event.event in ANTHROPIC_EVENTS:
            return "anthropic"
        if event.data.strip() == "[DONE]":
            return "openai"
        try:
            data = json.loads(event.data)
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        if _str(data.get("type")) in ANTHROPIC_EVENTS:
            return "anthropic"
        if (_str(data.get("type")) or "").startswith("response."):
            return "responses"
        if "candidates" in data or "usageMetadata" in data:
            return "gemini"
        if len(data) == 1 and next(iter(data)) in CONVERSE_EVENTS:
            return "bedrock"
        if data.get("object") == "chat.completion.chunk" or "choices" in data or "error" in data:
            return "openai"
    if at_eof:
        raise InvalidInput(
            "cannot tell whose stream this is (no Anthropic, OpenAI, Responses, Gemini or Bedrock "
            "event); use --from"
        )
    return None
