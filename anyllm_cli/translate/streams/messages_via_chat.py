"""OpenAI `chat.completion.chunk` stream in, Anthropic Messages event stream out (route 3).

| OpenAI chunk                                    | Anthropic event                                        |
| ----------------------------------------------- | ------------------------------------------------------ |
| the first chunk, whatever it holds              | `message_start`: id `message_id` or `msg_<chunk id>`,  |
|                                                 | model = requested model, input_tokens = the estimate   |
| `delta.reasoning_content` / `delta.reasoning`   | `thinking` block (signature "", no `signature_delta`)  |
| `delta.reasoning_details[].text` (if alone)     | the same thinking block                                |
| `delta.content`, `delta.refusal`                | `text` block, `text_delta` (a refusal: stop `refusal`) |
| `delta.tool_calls[i]` id + `function.name`      | `tool_use` block start (id kept verbatim, or           |
|                                                 | `toolu_<chunk id>_<n>` when missing, empty or reused)  |
| `delta.tool_calls[i].function.arguments`        | `input_json_delta.partial_json`                        |
| `delta.function_call` (deprecated)              | as tool call 0                                         |
| `choices[0].finish_reason`                      | closes the blocks; `message_delta.delta.stop_reason`   |
| `usage` (the last one seen)                     | `message_delta.usage` (all four counts)                |
| `{"error": {...}}`                              | `error` event, and nothing after it                    |
| `[DONE]` or end of input (`finish()`)           | `message_delta` + `message_stop`                       |

The states and their transitions, all in this one class:

    IDLE ──first chunk──> STREAMING ──finish_reason──> FINISHING ──usage-only chunk──> DONE
    IDLE, STREAMING, FINISHING ──finish() ([DONE] or end of input)──> DONE
    IDLE, STREAMING, FINISHING ──error chunk or fail()──> FAILED

IDLE has emitted nothing. The first chunk that is not an error emits `message_start` at once (never
held back) and enters STREAMING. There a text, thinking or tool delta opens a block if the open one
is of another kind, closing that one first, so blocks never interleave and their indexes only grow.
A `finish_reason` closes every block and enters FINISHING, which waits for OpenAI's usage chunk
(empty `choices`, sent after the finish chunk) so that the final `message_delta` carries real
counts; content arriving there still opens blocks. That chunk, `[DONE]` or `finish()` emits
`message_delta` and `message_stop` and enters DONE. `finish()` from IDLE or STREAMING does the same
(from IDLE after a `message_start`), recording `stream_ended_without_finish_reason`.
An error chunk or `fail()` emits one `error` event and enters FAILED; DONE and FAILED are terminal.

Parallel tool calls: the open tool block streams its argument fragments as they come. A second call
waits (its fragments buffered) until the open call's arguments parse as complete JSON, then the open
block closes and the waiting one opens with its buffer as one delta; at `finish_reason` every
waiting call is flushed in order. Servers that interleave calls thus lose only incrementality.

Gives up: the matched stop sequence (OpenAI does not report it); upstream reasoning signatures
(OpenRouter `reasoning_details`), since a thinking block never gets a fabricated one; choices other
than index 0; argument text for a call whose block a later text block already closed. Each is
recorded as a `Degradation`, as are derived tool ids and missing usage (then estimated).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from anyllm_cli.errors import ErrorKind, InvalidInput, anthropic_error, parse_error_body
from anyllm_cli.translate._gemini_reply import openai_thought_signature, signed_tool_id
from anyllm_cli.translate.degradation import Degradation
from anyllm_cli.translate.messages_via_chat import stop_reason, usage

_IDLE, _STREAMING, _FINISHING, _DONE, _FAILED = range(5)
_KNOWN_FINISH = frozenset({"stop", "length", "tool_calls", "function_call", "content_filter"})
_NOT_ID = re.compile(r"[^A-Za-z0-9_-]")
_DELTA_TYPES = {"text": "text_delta", "thinking": "thinking_delta"}


@dataclass(slots=True)
class _ToolCall:
    """One upstream tool call; `block` is -1 while it waits for its Anthropic block."""

    ordinal: int
    id: str = ""
    name: str = ""
    args: list[str] = field(default_factory=list)
    block: int = -1
    closed: bool = False
    signature: str = ""  # extra_content.google.thought_signature (Gemini's OpenAI endpoint)


class MessagesViaChatStream:
    def __init__(
        self, *, requested_model: str, message_id: str | None = None, input_tokens: int = 0
    ) -> None:
        self.degradations: list[Degradation] = []
        self.started = False
        self._model = requested_model
        self._message_id = message_id
        self._input_tokens = input_tokens
        self._state = _IDLE
        self._upstream_id = ""
        self._next_index = 0
        self._index = -1  # the open block's index
        self._open: str | None = None  # "text" | "thinking" | "tool"
        self._call: _ToolCall | None = None  # the open tool_use block's call
        self._calls: list[_ToolCall] = []
        self._by_index: dict[int, _ToolCall] = {}
        self._ids: set[str] = set()
        self._finish_reason: str | None = None
        self._refused = False
        self._usage: dict[str, Any] | None = None
        self._chars = 0
        self._noted: set[tuple[str, str]] = set()

    # -- the public face -----------------------------------------------------------------------------

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        if self._state >= _DONE:
            return self._late()
        if not isinstance(chunk, dict):
            raise InvalidInput("expected a JSON object", "chunk")
        if chunk.get("error") is not None:
            return self._error(*parse_error_body(chunk))
        out = [] if self.started else [self._start(chunk)]
        if not self._upstream_id:  # Azure's first chunk (prompt filter results) has id ""
            upstream_id = chunk.get("id")
            self._upstream_id = upstream_id if isinstance(upstream_id, str) else ""
        chunk_usage = chunk.get("usage")
        if chunk_usage is not None:
            if not isinstance(chunk_usage, dict):
                raise InvalidInput("expected an object", "usage")
            self._usage = chunk_usage
        choices = chunk.get("choices")
        if choices:
            if not isinstance(choices, list):
                raise InvalidInput("expected an array", "choices")
            for n, choice in enumerate(choices):
                self._choice(choice, n, out)
        elif chunk_usage is not None and self._state == _FINISHING:
            out += self._end()
        return out

    def finish(self) -> list[dict[str, Any]]:
        if self._state >= _DONE:
            return []
        out = [] if self.started else [self._start({})]
        return out + self._end()

    def fail(self, kind: ErrorKind, message: str) -> list[dict[str, Any]]:
        if self._state >= _DONE:
            return []
        return self._error(kind, message)

    # -- chunk parts ---------------------------------------------------------------------------------

    def _choice(self, choice: Any, n: int, out: list[dict[str, Any]]) -> None:
        if not isinstance(choice, dict):
            raise InvalidInput("expected an object", f"choices[{n}]")
        if choice.get("index"):
            self._note("extra_choices_dropped", "only choice 0 is translated", f"choices[{n}]")
            return
        delta = choice.get("delta")
        if delta:
            if not isinstance(delta, dict):
                raise InvalidInput("expected an object", f"choices[{n}].delta")
            self._delta(delta, out)
        reason = choice.get("finish_reason")
        if reason:
            if not isinstance(reason, str):
                raise InvalidInput("expected a string", f"choices[{n}].finish_reason")
            self._finish_reason = reason
            out += self._close_all()
            self._state = _FINISHING

    def _delta(self, delta: dict[str, Any], out: list[dict[str, Any]]) -> None:
        thinking = delta.get("reasoning_content") or delta.get("reasoning")
        details = delta.get("reasoning_details")
        if details:
            thinking = thinking or self._reasoning_details(details)
        if thinking:
            self._text("thinking", thinking, "reasoning", out)
        text = delta.get("content")
        if text:
            self._text("text", text, "content", out)
        refusal = delta.get("refusal")
        if refusal:
            self._refused = True
            self._text("text", refusal, "refusal", out)
        calls = delta.get("tool_calls")
        if calls:
            if not isinstance(calls, list):
                raise InvalidInput("expected an array", "choices[0].delta.tool_calls")
            for n, call in enumerate(calls):
                self._tool_call(call, n, out)
        legacy = delta.get("function_call")
        if legacy:
            self._tool_call({"index": 0, "function": legacy}, 0, out)

    def _text(self, kind: str, text: Any, name: str, out: list[dict[str, Any]]) -> None:
        if not isinstance(text, str):
            raise InvalidInput("expected a string", f"choices[0].delta.{name}")
        if self._open != kind:
            self._close(out)
            self._index = self._next_index
            self._next_index += 1
            self._open = kind
            start = {"type": kind, kind: ""}
            if kind == "thinking":
                start["signature"] = ""
            out.append(
                {"type": "content_block_start", "index": self._index, "content_block": start}
            )
        self._chars += len(text)
        out.append(
            {
                "type": "content_block_delta",
                "index": self._index,
                "delta": {"type": _DELTA_TYPES[kind], kind: text},
            }
        )

    def _tool_call(self, delta: Any, n: int, out: list[dict[str, Any]]) -> None:
        path = f"choices[0].delta.tool_calls[{n}]"
        if not isinstance(delta, dict):
            raise InvalidInput("expected an object", path)
        call = self._call_for(delta, n, path)
        signature = openai_thought_signature(delta, path)
        if signature and not call.signature and call.block < 0:
            call.signature = signature
        function = delta.get("function") or {}
        if not isinstance(function, dict):
            raise InvalidInput("expected an object", f"{path}.function")
        name = function.get("name")
        if name:
            if not isinstance(name, str):
                raise InvalidInput("expected a string", f"{path}.function.name")
            if not call.name:
                call.name = name
        args = function.get("arguments")
        if args:
            if isinstance(args, dict):  # some local servers send the object itself
                args = json.dumps(args, ensure_ascii=False, separators=(",", ":"))
            elif not isinstance(args, str):
                raise InvalidInput("expected a string", f"{path}.function.arguments")
            self._arguments(call, args, out)
        if call.block < 0 and call.name:
            self._advance(out)

    def _call_for(self, delta: dict[str, Any], n: int, path: str) -> _ToolCall:
        key = delta.get("index")
        if key is None:
            key = -1 - n  # no index: calls come whole, keyed by their position
        elif not isinstance(key, int):
            raise InvalidInput("expected an integer", f"{path}.index")
        call_id = delta.get("id")
        if call_id is not None and not isinstance(call_id, str):
            raise InvalidInput("expected a string", f"{path}.id")
        call = self._by_index.get(key)
        if call is not None and (
            # a new id at a known index is a new call (some servers number every call 0) ...
            (call_id and call.id and call_id != call.id)
            # ... and so is a second name at an unindexed position with no ids at all
            or (key < 0 and not call_id and call.name and _has_name(delta))
        ):
            call = None
        if call is None:
            call = _ToolCall(len(self._calls))
            self._calls.append(call)
            self._by_index[key] = call
        if call_id and not call.id:
            call.id = call_id
        return call

    def _arguments(self, call: _ToolCall, args: str, out: list[dict[str, Any]]) -> None:
        call.args.append(args)
        self._chars += len(args)
        if call is self._call:
            out.append(_json_delta(call.block, args))
            if args.rstrip().endswith("}") and any(c.block < 0 for c in self._calls):
                self._advance(out)
        elif call.closed and args.strip():
            self._note(
                "tool_arguments_after_close",
                "argument text arrived after the tool_use block was closed; it is dropped",
                f"tool_calls[{call.ordinal}]",
            )

    def _advance(self, out: list[dict[str, Any]]) -> None:
        """Open the next waiting named call unless the open tool call may still grow."""
        for call in self._calls:
            if call.block >= 0 or not call.name:
                continue
            if self._call is not None and not _complete(self._call.args):
                return
            self._close(out)
            self._open_tool(call, out)

    def _open_tool(self, call: _ToolCall, out: list[dict[str, Any]]) -> None:
        call.block = self._index = self._next_index
        self._next_index += 1
        self._open = "tool"
        self._call = call
        tool_id = call.id
        if not tool_id or tool_id in self._ids:
            base = _NOT_ID.sub("_", self._upstream_id or self._message_id or "") or "call"
            tool_id = f"toolu_{base}_{call.ordinal}"
            detail = f"id {tool_id} derived (upstream id {call.id!r} missing or reused)"
            self._note("tool_call_id_derived", detail, f"tool_calls[{call.ordinal}]")
        self._ids.add(tool_id)
        if call.signature:  # Gemini's, from its OpenAI-compatible endpoint: back next turn
            tool_id = signed_tool_id(tool_id, call.signature)
        block = {"type": "tool_use", "id": tool_id, "name": call.name, "input": {}}
        out.append({"type": "content_block_start", "index": call.block, "content_block": block})
        buffered = "".join(call.args)
        if buffered:
            out.append(_json_delta(call.block, buffered))

    def _close(self, out: list[dict[str, Any]]) -> None:
        if self._open is None:
            return
        out.append({"type": "content_block_stop", "index": self._index})
        if self._call is not None:
            self._call.closed = True
            self._call = None
        self._open = None

    def _close_all(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        self._close(out)
        for call in self._calls:
            if call.block < 0:
                if not call.name:
                    self._note(
                        "tool_name_missing",
                        "a tool call never received a name",
                        f"tool_calls[{call.ordinal}]",
                    )
                self._open_tool(call, out)
                self._close(out)
        return out

    # -- the ends ------------------------------------------------------------------------------------

    def _start(self, chunk: dict[str, Any]) -> dict[str, Any]:
        self.started = True
        self._state = _STREAMING
        upstream_id = chunk.get("id")
        if not (upstream_id and isinstance(upstream_id, str)):
            upstream_id = "stream"
        message_id = self._message_id or f"msg_{upstream_id}"
        return message_start(message_id, self._model, self._input_tokens)

    def _end(self) -> list[dict[str, Any]]:
        out = self._close_all()
        self._state = _DONE
        reason = self._finish_reason
        if reason is None:
            self._note("stream_ended_without_finish_reason", "the upstream stream was cut short")
        elif reason not in _KNOWN_FINISH:
            self._note("finish_reason_unmapped", f"finish_reason {reason!r} became end_turn")
        counts = usage(self._usage)
        if self._usage is None:
            self._note(
                "usage_missing",
                "the upstream sent no usage: input_tokens is the caller's estimate, "
                "output_tokens one per four characters",
            )
            counts["input_tokens"] = self._input_tokens
            counts["output_tokens"] = (self._chars + 3) // 4
        stop = "refusal" if self._refused else stop_reason(reason, bool(self._calls))
        delta = {"stop_reason": stop, "stop_sequence": None}
        out.append({"type": "message_delta", "delta": delta, "usage": counts})
        out.append({"type": "message_stop"})
        return out

    def _error(self, kind: ErrorKind, message: str) -> list[dict[str, Any]]:
        self._state = _FAILED
        return [anthropic_error(kind, message)[1]]

    def _late(self) -> list[dict[str, Any]]:
        if self._state == _DONE:
            self._note("chunk_after_message_stop", "a chunk after the end of the stream is dropped")
        return []

    def _reasoning_details(self, details: Any) -> str:
        """OpenRouter's structured reasoning: its text, when no plain `reasoning` came with it."""
        texts: list[str] = []
        for item in details if isinstance(details, list) else [details]:
            if not isinstance(item, dict):
                continue
            if item.get("signature") or item.get("data"):
                self._note(
                    "reasoning_signature_dropped",
                    "upstream reasoning signatures and encrypted reasoning cannot be carried",
                )
            text = item.get("text") or item.get("summary")
            if isinstance(text, str):
                texts.append(text)
        return "".join(texts)

    def _note(self, code: str, detail: str, path: str = "") -> None:
        """Record a degradation once per code and path (one per tool call, one per stream)."""
        if (code, path) not in self._noted:
            self._noted.add((code, path))
            self.degradations.append(Degradation(code, detail, path))


def _json_delta(index: int, partial: str) -> dict[str, Any]:
    return {
        "type": "content_block_delta",
        "index": index,
        "delta": {"type": "input_json_delta", "partial_json": partial},
    }


def _has_name(delta: dict[str, Any]) -> bool:
    function = delta.get("function")
    return isinstance(function, dict) and bool(function.get("name"))


def _complete(parts: list[str]) -> bool:
    """Whether a call's argument text so far is one whole JSON object (so it cannot grow)."""
    text = "".join(parts).strip()
    if not text.endswith("}"):
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def message_start(message_id: str, model: str, input_tokens: int) -> dict[str, Any]:
    """The `message_start` event every Anthropic stream opens with (shared by the stream routes):
    the input figure is the best known so far (an estimate until the upstream reports usage)."""
    usage = {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 1,
    }
    message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    return {"type": "message_start", "message": message}
