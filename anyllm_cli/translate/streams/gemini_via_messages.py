"""Anthropic stream events in, Gemini `streamGenerateContent?alt=sse` chunks out.

Every chunk is a partial GenerateContentResponse holding only the new parts, with `modelVersion`,
`responseId` (the message id) and `usageMetadata` (prompt counts from `message_start`; complete on
the final chunk), as Gemini sends them. Gemini streams have no end sentinel.

| Anthropic event                          | Gemini chunk                                            |
| ---------------------------------------- | ------------------------------------------------------- |
| `message_start`                          | nothing (its id and usage are kept)                     |
| text block / `text_delta`                | a `text` part per piece                                 |
| thinking block / `thinking_delta`        | a `text` part with `thought: true` per piece            |
| `signature_delta` "gemini:<s>"           | a thought part with empty text carrying `thoughtSignature` |
|                                          | s; on a thinking block with no text, s waits for the    |
|                                          | next part (an empty text part on the final chunk)       |
| other signatures                         | omitted (`thinking_signature_dropped`, once)            |
| tool_use block                           | ONE `functionCall` part {name, args, id} at its         |
|                                          | `content_block_stop`, the input JSON parsed whole       |
| `message_delta` with a stop_reason       | the final chunk: finishReason + full usageMetadata      |
| `message_stop`                           | nothing (a final chunk with STOP if none went out)      |
| `error` event / `fail()`                 | `{"error": {code, message, status}}`, nothing after it  |
| end without a stop reason (`finish()`)   | an error chunk (never a silent end)                     |

    OPEN ──message_delta(stop_reason)──> FINISHED ──message_stop──> DONE
    OPEN, FINISHED ──error / fail()──> DONE;  OPEN ──finish()──> DONE (an error chunk)

Gives up, with a `Degradation`: redacted thinking, server tool blocks, citations, Anthropic
signatures. Pure: no clock, no ids made up (a message without an id gives `responseId` "").
"""

from __future__ import annotations

import json
from typing import Any

from anyllm_cli.errors import (
    UNFINISHED,
    ErrorKind,
    InvalidInput,
    gemini_error,
    kind_from_error_type,
)
from anyllm_cli.translate.gemini_via_messages import finish_reason, our_signature, usage_metadata
from anyllm_cli.translate.messages_via_chat import parse_arguments
from anyllm_cli.translate.streams._anthropic_reader import AnthropicEventReader

Chunk = dict[str, Any]
_OPEN, _FINISHED, _DONE = range(3)
_USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens_details",
)


class GeminiViaMessagesStream(AnthropicEventReader):
    def __init__(self, *, model: str) -> None:
        super().__init__()
        self._model = model
        self._id = ""
        self._state = _OPEN
        self._blocks: dict[int, str] = {}  # index -> "text" | "thinking" | "tool" | "skip"
        self._spoke: set[int] = set()  # thinking blocks that sent text
        self._tools: dict[int, tuple[str, str, list[str]]] = {}  # index -> (id, name, json)
        self._given: dict[int, str] = {}  # index -> input JSON a tool_use block started with
        self._pending: str | None = None  # a signature for the next part
        self._usage: dict[str, Any] = {}

    # -- the protocol --------------------------------------------------------------------------------

    def feed(self, event: dict[str, Any]) -> list[Chunk]:
        self._count += 1
        if self._state == _DONE:
            return []
        kind = event.get("type")
        if not isinstance(kind, str):
            raise InvalidInput("an event needs a string `type`", f"event {self._count}")
        handler = _HANDLERS.get(kind)
        if handler is None:
            self._note("unknown_event_dropped", f"unknown stream event {kind!r}")
            return []
        return handler(self, event)

    failure: tuple[ErrorKind, str] | None = None  # what the error chunk said, once one went out

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def finish(self) -> list[Chunk]:
        if self._state == _FINISHED:
            self._state = _DONE
        if self._state == _DONE:
            return []
        self._note("stream_truncated", "the upstream stream ended before a stop reason")
        return self.fail(ErrorKind.API_ERROR, UNFINISHED)

    def fail(self, kind: ErrorKind, message: str) -> list[Chunk]:
        if self._state == _DONE:
            return []
        self._state = _DONE
        self.failure = (kind, message)
        return [gemini_error(kind, message)[1]]

    # -- events --------------------------------------------------------------------------------------

    def _message_start(self, event: dict[str, Any]) -> list[Chunk]:
        message = self._dict(event, "message")
        if isinstance(message.get("id"), str):
            self._id = message["id"]
        self._take_usage(message.get("usage"))
        return []

    def _block_start(self, event: dict[str, Any]) -> list[Chunk]:
        index = self._index(event)
        block = self._dict(event, "content_block")
        btype = block.get("type")
        if btype == "text":
            self._blocks[index] = "text"
            return self._text(block.get("text"))
        if btype == "thinking":
            self._blocks[index] = "thinking"
            out = self._thought(index, block.get("thinking"))
            signature = block.get("signature")
            return out + (self._signature(index, signature) if signature else [])
        if btype == "tool_use":
            call_id, name, given = block.get("id"), block.get("name"), block.get("input")
            if not isinstance(call_id, str) or not isinstance(name, str):
                raise InvalidInput("tool_use needs a string id and name", f"event {self._count}")
            self._blocks[index] = "tool"
            self._tools[index] = (call_id, name, [])
            if isinstance(given, dict) and given:  # some servers send the whole input up front
                self._given[index] = json.dumps(given, ensure_ascii=False)
            return []
        self._blocks[index] = "skip"
        if btype == "redacted_thinking":
            self._note("redacted_thinking_dropped", "Gemini clients cannot carry it")
        else:
            self._note("block_dropped", f"{btype!r} block has no Gemini form")
        return []

    def _block_delta(self, event: dict[str, Any]) -> list[Chunk]:
        index = self._index(event)
        delta = self._dict(event, "delta")
        block, dtype = self._blocks.get(index), delta.get("type")
        if block is None:
            self._note("unknown_block_delta", f"delta for block {index} that never started")
        elif block == "text" and dtype == "text_delta":
            return self._text(delta.get("text"))
        elif block == "thinking" and dtype == "thinking_delta":
            return self._thought(index, delta.get("thinking"))
        elif block == "thinking" and dtype == "signature_delta":
            return self._signature(index, delta.get("signature"))
        elif block == "tool" and dtype == "input_json_delta":
            fragment = delta.get("partial_json")
            if not isinstance(fragment, str):
                raise InvalidInput("partial_json must be a string", f"event {self._count}")
            if index not in self._tools:  # the block was stopped already: its call went out
                raise InvalidInput(
                    f"input_json_delta after block {index} stopped", f"event {self._count}"
                )
            self._tools[index][2].append(fragment)
        elif dtype == "citations_delta":
            self._note("citations_dropped", "Gemini parts carry no citations")
        elif block != "skip":
            self._note("unknown_delta_dropped", f"{dtype!r} delta in a {block} block")
        return []

    def _block_stop(self, event: dict[str, Any]) -> list[Chunk]:
        index = self._index(event)
        if self._blocks.get(index) != "tool" or index not in self._tools:
            return []
        call_id, name, pieces = self._tools.pop(index)
        given = self._given.pop(index, "")
        args, degraded = parse_arguments("".join(pieces) or given)
        if degraded:
            self._note("tool_arguments_invalid", "input is not a JSON object; kept as _raw")
        return self._parts([{"functionCall": {"name": name, "args": args, "id": call_id}}])

    def _message_delta(self, event: dict[str, Any]) -> list[Chunk]:
        delta = self._dict(event, "delta")
        self._take_usage(event.get("usage"))
        stop = delta.get("stop_reason")
        if stop is None or self._state != _OPEN:
            return []
        if not isinstance(stop, str):
            raise InvalidInput("stop_reason must be a string", f"event {self._count}.delta")
        return self._final(stop)

    def _message_stop(self, event: dict[str, Any]) -> list[Chunk]:
        out = self._final("end_turn") if self._state == _OPEN else []
        self._state = _DONE
        return out

    def _ping(self, event: dict[str, Any]) -> list[Chunk]:
        return []

    def _error(self, event: dict[str, Any]) -> list[Chunk]:
        error = event.get("error")
        etype = error.get("type") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        kind = kind_from_error_type(etype if isinstance(etype, str) else None)
        return self.fail(kind, message if isinstance(message, str) else "upstream stream error")

    # -- pieces --------------------------------------------------------------------------------------

    def _text(self, text: Any) -> list[Chunk]:
        if not isinstance(text, str):
            raise InvalidInput("text must be a string", f"event {self._count}")
        return self._parts([{"text": text}]) if text else []

    def _thought(self, index: int, text: Any) -> list[Chunk]:
        if not isinstance(text, str):
            raise InvalidInput("thinking must be a string", f"event {self._count}")
        if not text:
            return []
        self._spoke.add(index)
        return self._parts([{"text": text, "thought": True}])

    def _signature(self, index: int, signature: Any) -> list[Chunk]:
        if not isinstance(signature, str):
            raise InvalidInput("signature must be a string", f"event {self._count}")
        ours = our_signature(signature)
        if ours is None:
            if signature:
                self._note("thinking_signature_dropped", "only Gemini's signatures are carried")
            return []
        if index not in self._spoke:  # a thinking block with no text signs the next part
            out = self._flush_pending()
            self._pending = ours
            return out
        return self._parts([{"text": "", "thought": True, "thoughtSignature": ours}])

    def _flush_pending(self) -> list[Chunk]:
        if self._pending is None:
            return []
        part = {"text": "", "thoughtSignature": self._pending}
        self._pending = None
        return [self._chunk([part])]

    def _parts(self, parts: list[dict[str, Any]]) -> list[Chunk]:
        if self._pending is not None:
            if parts[0].get("thought"):
                return [*self._flush_pending(), self._chunk(parts)]
            parts[0]["thoughtSignature"] = self._pending
            self._pending = None
        return [self._chunk(parts)]

    def _final(self, stop: str) -> list[Chunk]:
        self._state = _FINISHED
        reason, code = finish_reason(stop)
        if code:
            self._note(code, f"stop_reason {stop!r}")
        parts = []
        if self._pending is not None:
            parts.append({"text": "", "thoughtSignature": self._pending})
            self._pending = None
        return [self._chunk(parts, reason)]

    def _chunk(self, parts: list[dict[str, Any]], finish: str | None = None) -> Chunk:
        content: dict[str, Any] = {"role": "model"}
        if parts:
            content["parts"] = parts
        candidate: dict[str, Any] = {"content": content}
        if finish is not None:
            candidate["finishReason"] = finish
        candidate["index"] = 0
        usage = usage_metadata(self._usage)
        if finish is None:  # mid-stream Gemini reports the prompt only
            usage = {"promptTokenCount": usage["promptTokenCount"]}
            usage["totalTokenCount"] = usage["promptTokenCount"]
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": self._model,
            "responseId": self._id,
        }

    def _take_usage(self, usage: Any) -> None:
        """Anthropic usage is cumulative: the latest value of each count wins."""
        if isinstance(usage, dict):
            self._usage.update({k: usage[k] for k in _USAGE_KEYS if usage.get(k) is not None})


_HANDLERS = {
    "message_start": GeminiViaMessagesStream._message_start,
    "content_block_start": GeminiViaMessagesStream._block_start,
    "content_block_delta": GeminiViaMessagesStream._block_delta,
    "content_block_stop": GeminiViaMessagesStream._block_stop,
    "message_delta": GeminiViaMessagesStream._message_delta,
    "message_stop": GeminiViaMessagesStream._message_stop,
    "ping": GeminiViaMessagesStream._ping,
    "error": GeminiViaMessagesStream._error,
}
