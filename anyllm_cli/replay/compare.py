"""Two replies to the same request, compared: what a migration or an upgrade changed.

Each reply (Anthropic Message, OpenAI chat.completion or Gemini response) is first read into an
`Answer`: its stop reason on one scale, its text, its tool calls (name and arguments), its usage.

| stop reason (any API)                          | as      |
| ---------------------------------------------- | ------- |
| end_turn, stop, STOP, stop_sequence            | end     |
| tool_use, tool_calls, function_call            | tool    |
| max_tokens, length, MAX_TOKENS                 | length  |
| anything else                                  | itself, lower-cased |

Differences: the stop reason changed; the tool calls changed (a name added or gone, an argument key
added or gone, an argument value changed, compared as JSON values); the text similarity; the usage
delta (tokens in and out, b minus a).

Text similarity: both texts lower-cased and split on whitespace into words, then difflib's
`SequenceMatcher.ratio()` over the two word lists (2·matches / total words): 1.0 for the same words
in the same order, 0.0 for nothing in common; two empty texts are 1.0. Only the first 2,000 words
of each are compared, which keeps it fast. Pure: no I/O.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

MAX_WORDS = 2000
_STOPS = {
    "end_turn": "end",
    "stop": "end",
    "stop_sequence": "end",
    "tool_use": "tool",
    "tool_calls": "tool",
    "function_call": "tool",
    "max_tokens": "length",
    "length": "length",
}


@dataclass(frozen=True, slots=True)
class Answer:
    stop: str | None = None
    text: str = ""
    tools: tuple[tuple[str, Any], ...] = ()  # (name, arguments) in order
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Diff:
    stop: tuple[str | None, str | None] | None = None  # (a, b) when changed
    tools: tuple[str, ...] = ()  # one line per change
    similarity: float = 1.0
    input_delta: int = 0
    output_delta: int = 0

    @property
    def changed(self) -> bool:
        return self.stop is not None or bool(self.tools)

    def to_json(self) -> dict[str, Any]:
        return {
            "stop_reason": list(self.stop) if self.stop else None,
            "tool_calls": list(self.tools),
            "text_similarity": round(self.similarity, 4),
            "usage_delta": {"input": self.input_delta, "output": self.output_delta},
        }


def answer(reply: dict[str, Any] | None) -> Answer:
    """Any API's reply body (or a folded stream) as an Answer; None or an unknown shape is empty."""
    if not reply:
        return Answer()
    if reply.get("type") == "message" or "stop_reason" in reply:
        return _anthropic(reply)
    if "choices" in reply:
        return _chat(reply)
    if "candidates" in reply:
        return _gemini(reply)
    return Answer()


def _stop(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return _STOPS.get(value.lower(), value.lower())


def _anthropic(reply: dict[str, Any]) -> Answer:
    text: list[str] = []
    tools: list[tuple[str, Any]] = []
    for block in reply.get("content") or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            text.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            tools.append((str(block.get("name", "")), block.get("input")))
    usage = reply.get("usage") or {}
    return Answer(
        _stop(reply.get("stop_reason")),
        "".join(text),
        tuple(tools),
        _int(usage.get("input_tokens"))
        + _int(usage.get("cache_read_input_tokens"))
        + _int(usage.get("cache_creation_input_tokens")),
        _int(usage.get("output_tokens")),
    )


def _chat(reply: dict[str, Any]) -> Answer:
    choices = reply.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    tools: list[tuple[str, Any]] = []
    for call in message.get("tool_calls") or []:
        function = (call or {}).get("function") or {}
        tools.append((str(function.get("name", "")), _arguments(function.get("arguments"))))
    usage = reply.get("usage") or {}
    content = message.get("content")
    return Answer(
        _stop(choice.get("finish_reason")),
        content if isinstance(content, str) else "",
        tuple(tools),
        _int(usage.get("prompt_tokens")),
        _int(usage.get("completion_tokens")),
    )


def _gemini(reply: dict[str, Any]) -> Answer:
    candidates = reply.get("candidates") or [{}]
    candidate = candidates[0] if isinstance(candidates[0], dict) else {}
    text: list[str] = []
    tools: list[tuple[str, Any]] = []
    for part in (candidate.get("content") or {}).get("parts") or []:
        if isinstance(part.get("text"), str) and not part.get("thought"):
            text.append(part["text"])
        call = part.get("functionCall")
        if isinstance(call, dict):
            tools.append((str(call.get("name", "")), call.get("args")))
    stop = _stop(candidate.get("finishReason"))
    if tools and stop == "end":  # Gemini says STOP after a function call
        stop = "tool"
    usage = reply.get("usageMetadata") or {}
    return Answer(
        stop,
        "".join(text),
        tuple(tools),
        _int(usage.get("promptTokenCount")),
        _int(usage.get("candidatesTokenCount")) + _int(usage.get("thoughtsTokenCount")),
    )


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError:
            return raw
    return raw


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def similarity(a: str, b: str) -> float:
    """See the module docstring: SequenceMatcher ratio over lower-cased words."""
    wa, wb = a.lower().split()[:MAX_WORDS], b.lower().split()[:MAX_WORDS]
    if not wa and not wb:
        return 1.0
    return difflib.SequenceMatcher(None, wa, wb, autojunk=False).ratio()


def compare(a: Answer, b: Answer) -> Diff:
    return Diff(
        stop=(a.stop, b.stop) if a.stop != b.stop else None,
        tools=tuple(tool_changes(a.tools, b.tools)),
        similarity=similarity(a.text, b.text),
        input_delta=b.input_tokens - a.input_tokens,
        output_delta=b.output_tokens - a.output_tokens,
    )


def tool_changes(a: tuple[tuple[str, Any], ...], b: tuple[tuple[str, Any], ...]) -> list[str]:
    """Lines naming what changed between two lists of tool calls, matched by position."""
    out: list[str] = []
    for index in range(max(len(a), len(b))):
        if index >= len(a):
            out.append(f"call {index}: {b[index][0]} added")
            continue
        if index >= len(b):
            out.append(f"call {index}: {a[index][0]} gone")
            continue
        (name_a, args_a), (name_b, args_b) = a[index], b[index]
        if name_a != name_b:
            out.append(f"call {index}: name {name_a} -> {name_b}")
            continue
        if not isinstance(args_a, dict) or not isinstance(args_b, dict):
            if args_a != args_b:
                out.append(f"call {index} {name_a}: arguments changed")
            continue
        for key in sorted(set(args_a) | set(args_b)):
            if key not in args_b:
                out.append(f"call {index} {name_a}: argument {key} gone")
            elif key not in args_a:
                out.append(f"call {index} {name_a}: argument {key} added")
            elif args_a[key] != args_b[key]:
                out.append(
                    f"call {index} {name_a}: {key} {_short(args_a[key])} -> {_short(args_b[key])}"
                )
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."
