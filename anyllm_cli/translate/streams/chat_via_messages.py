"""Anthropic stream events in, OpenAI `chat.completion.chunk`s out: a small state machine.

    (nothing) --message_start--> started --content blocks...--> message_delta --message_stop--> done
        any state --error event / fail()--> done (an OpenAI error chunk, and no [DONE] after it)
        any state --finish() before message_stop--> done (closed with finish_reason "stop")

`message_start` gives the first chunk (`role: assistant`). Each content block is routed by its
index: text deltas become `content`, thinking deltas `reasoning_content` (two thinking blocks are
joined with a blank line, as `response()` joins them), and a tool_use block becomes one entry of
`tool_calls` whose own `index` counts tool blocks only; its `input_json_delta`s are the argument
fragments (a call that streamed no arguments gets "{}", so clients can parse it). The first
`message_delta` with a stop_reason gives the finish chunk; `message_stop` gives the usage chunk
(`choices: []`, only with include_usage) and then None, the `[DONE]` sentinel.

A Gemini thought signature ("gemini:" on a thinking block, or in a tool_use id) goes on the next
tool call as `extra_content.google.thought_signature`, as Gemini's OpenAI-compatible endpoint sends
it. What it gives up, each time with a `Degradation`: other thinking signatures, redacted thinking, server
tool blocks and block types it does not know, citations. Pings produce nothing. Pure: the id and
the clock come in through the constructor.
"""

from __future__ import annotations

import json
from typing import Any

from anyllm_cli.errors import ErrorKind, InvalidInput, kind_from_error_type, openai_error
from anyllm_cli.models.anthropic import SERVER_TOOL_RESULT_TYPES
from anyllm_cli.translate._gemini_reply import SIGNATURE_PREFIX as GEMINI_PREFIX
from anyllm_cli.translate._messages_reply import gemini_call
from anyllm_cli.translate.chat_via_messages import chat_usage, finish_reason
from anyllm_cli.translate.streams._anthropic_reader import AnthropicEventReader

Chunk = dict[str, Any]
_SERVER_TOOL_BLOCKS = SERVER_TOOL_RESULT_TYPES | {"server_tool_use", "mcp_tool_use"}
_USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens_details",
)


class ChatViaMessagesStream(AnthropicEventReader):
    def __init__(
        self,
        *,
        requested_model: str,
        completion_id: str | None = None,
        created: int = 0,
        include_usage: bool = False,
    ) -> None:
        super().__init__()
        self.started = False
        self._model = requested_model
        self._id = completion_id
        self._created = created
        self._include_usage = include_usage
        self._done = False
        self._blocks: dict[int, str] = {}  # block index -> "text" | "thinking" | "tool" | "skip"
        self._pending_signature: str | None = None  # Gemini's, for the next tool call
        self._tool_index: dict[int, int] = {}  # block index -> tool_calls index
        self._tool_args: dict[int, bool] = {}  # block index -> any arguments streamed
        self._reasoning_started = False  # some reasoning text went out (for the joiner)
        self._block_spoke: set[int] = set()  # thinking blocks that emitted text
        self._finish: str | None = None
        self._usage: dict[str, Any] = {}

    # -- the protocol --------------------------------------------------------------------------------

    def feed(self, event: dict[str, Any]) -> list[Chunk | None]:
        self._count += 1
        if self._done:
            return []
        kind = event.get("type")
        if not isinstance(kind, str):
            raise InvalidInput("an event needs a string `type`", f"event {self._count}")
        handler = _HANDLERS.get(kind)
        if handler is None:
            self._note("unknown_event_dropped", f"unknown stream event {kind!r}")
            return []
        return handler(self, event)

    def finish(self) -> list[Chunk | None]:
        if self._done:
            return []
        out = self._start()
        if self._finish is None:
            self._note("stream_truncated", "the upstream stream ended before a stop reason")
            out.append(self._chunk({}, "stop"))
        return out + self._close()

    def fail(self, kind: ErrorKind, message: str) -> list[Chunk | None]:
        if self._done:
            return []
        self._done = True
        return [openai_error(kind, message)[1]]

    # -- events --------------------------------------------------------------------------------------

    def _message_start(self, event: dict[str, Any]) -> list[Chunk | None]:
        message = self._dict(event, "message")
        if self._id is None and isinstance(message.get("id"), str):
            self._id = f"chatcmpl-{message['id']}"
        self._take_usage(message.get("usage"))
        return list(self._start())

    def _block_start(self, event: dict[str, Any]) -> list[Chunk | None]:
        index = self._index(event)
        block = self._dict(event, "content_block")
        btype = block.get("type")
        out = self._start()
        if btype == "text":
            self._blocks[index] = "text"
            out += self._text(block.get("text"))
        elif btype == "thinking":
            self._blocks[index] = "thinking"
            self._gemini_signature(block.get("signature"))
            out += self._thinking(index, block.get("thinking"))
        elif btype == "tool_use":
            out.append(self._tool_start(index, block))
        else:
            self._blocks[index] = "skip"
            self._drop_block(btype)
        return out

    def _block_delta(self, event: dict[str, Any]) -> list[Chunk | None]:
        index = self._index(event)
        delta = self._dict(event, "delta")
        block = self._blocks.get(index)
        dtype = delta.get("type")
        if block is None:
            self._note("unknown_block_delta", f"delta for block {index} that never started")
            return []
        if block == "text" and dtype == "text_delta":
            return list(self._text(delta.get("text")))
        if block == "thinking" and dtype == "thinking_delta":
            return list(self._thinking(index, delta.get("thinking")))
        if block == "tool" and dtype == "input_json_delta":
            return list(self._arguments(index, delta.get("partial_json")))
        if dtype == "signature_delta":
            if not self._gemini_signature(delta.get("signature")):
                self._note("thinking_signature_dropped", "OpenAI clients cannot replay signatures")
        elif dtype == "citations_delta":
            self._note("citations_dropped", "OpenAI chunks carry no citations")
        elif block != "skip":
            self._note("unknown_delta_dropped", f"{dtype!r} delta in a {block} block")
        return []

    def _block_stop(self, event: dict[str, Any]) -> list[Chunk | None]:
        index = self._index(event)
        if self._blocks.get(index) == "tool" and not self._tool_args.get(index):
            return list(self._arguments(index, "{}"))
        return []

    def _message_delta(self, event: dict[str, Any]) -> list[Chunk | None]:
        delta = self._dict(event, "delta")
        self._take_usage(event.get("usage"))
        stop = delta.get("stop_reason")
        if stop is None or self._finish is not None:
            return []
        if not isinstance(stop, str):
            raise InvalidInput("stop_reason must be a string", f"event {self._count}.delta")
        reason, code = finish_reason(stop, bool(self._tool_index))
        if code:
            self._note(code, f"stop_reason {stop!r}")
        out = self._start()
        self._finish = reason
        out.append(self._chunk({}, reason))
        return out

    def _message_stop(self, event: dict[str, Any]) -> list[Chunk | None]:
        out = self._start()
        if self._finish is None:
            self._finish = "stop"
            out.append(self._chunk({}, "stop"))
        return out + self._close()

    def _ping(self, event: dict[str, Any]) -> list[Chunk | None]:
        return []

    def _error(self, event: dict[str, Any]) -> list[Chunk | None]:
        error = event.get("error")
        etype = error.get("type") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        kind = kind_from_error_type(etype if isinstance(etype, str) else None)
        return self.fail(kind, message if isinstance(message, str) else "upstream stream error")

    # -- pieces --------------------------------------------------------------------------------------

    def _start(self) -> list[Chunk | None]:
        if self.started:
            return []
        self.started = True
        return [self._chunk({"role": "assistant", "content": ""})]

    def _text(self, text: Any) -> list[Chunk | None]:
        if not isinstance(text, str):
            raise InvalidInput("text must be a string", f"event {self._count}")
        return [self._chunk({"content": text})] if text else []

    def _thinking(self, index: int, text: Any) -> list[Chunk | None]:
        if not isinstance(text, str):
            raise InvalidInput("thinking must be a string", f"event {self._count}")
        if not text:
            return []
        if self._reasoning_started and index not in self._block_spoke:
            text = "\n\n" + text
        self._reasoning_started = True
        self._block_spoke.add(index)
        return [self._chunk({"reasoning_content": text})]

    def _tool_start(self, index: int, block: dict[str, Any]) -> Chunk:
        call_id, name, given = block.get("id"), block.get("name"), block.get("input")
        if not isinstance(call_id, str) or not isinstance(name, str):
            raise InvalidInput("tool_use needs a string id and name", f"event {self._count}")
        self._blocks[index] = "tool"
        position = self._tool_index.setdefault(index, len(self._tool_index))
        arguments = ""
        if isinstance(given, dict) and given:  # some servers send the whole input up front
            arguments = json.dumps(given, ensure_ascii=False, separators=(",", ":"))
        self._tool_args[index] = bool(arguments)
        function = {"name": name, "arguments": arguments}
        call_id, extra = gemini_call(call_id, self._pending_signature)
        self._pending_signature = None
        call = {"index": position, "id": call_id, "type": "function", "function": function}
        return self._chunk({"tool_calls": [{**call, **extra}]})

    def _gemini_signature(self, signature: Any) -> bool:
        """Keep a Gemini thought signature for the next tool call (see `gemini_call`)."""
        if isinstance(signature, str) and signature.startswith(GEMINI_PREFIX):
            self._pending_signature = signature[len(GEMINI_PREFIX) :] or None
            return True
        return False

    def _arguments(self, index: int, fragment: Any) -> list[Chunk | None]:
        if not isinstance(fragment, str):
            raise InvalidInput("partial_json must be a string", f"event {self._count}")
        if not fragment:
            return []
        self._tool_args[index] = True
        call = {"index": self._tool_index[index], "function": {"arguments": fragment}}
        return [self._chunk({"tool_calls": [call]})]

    def _close(self) -> list[Chunk | None]:
        self._done = True
        out: list[Chunk | None] = []
        if self._include_usage:
            usage = {**self._envelope(), "choices": [], "usage": chat_usage(self._usage)}
            out.append(usage)
        out.append(None)
        return out

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> Chunk:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {**self._envelope(), "choices": [choice]}

    def _envelope(self) -> dict[str, Any]:
        return {
            "id": self._id or "chatcmpl-anyllm",
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
        }

    def _take_usage(self, usage: Any) -> None:
        """Anthropic usage is cumulative: the latest value of each count wins."""
        if isinstance(usage, dict):
            self._usage.update({k: usage[k] for k in _USAGE_KEYS if usage.get(k) is not None})

    def _drop_block(self, btype: Any) -> None:
        if btype == "redacted_thinking":
            self._note("redacted_thinking_dropped", "OpenAI clients cannot carry it")
        elif isinstance(btype, str) and btype in _SERVER_TOOL_BLOCKS:
            self._note("server_tool_dropped", f"{btype} has no OpenAI form")
        else:
            self._note("block_dropped", f"{btype!r} block has no OpenAI form")


_HANDLERS = {
    "message_start": ChatViaMessagesStream._message_start,
    "content_block_start": ChatViaMessagesStream._block_start,
    "content_block_delta": ChatViaMessagesStream._block_delta,
    "content_block_stop": ChatViaMessagesStream._block_stop,
    "message_delta": ChatViaMessagesStream._message_delta,
    "message_stop": ChatViaMessagesStream._message_stop,
    "ping": ChatViaMessagesStream._ping,
    "error": ChatViaMessagesStream._error,
}
