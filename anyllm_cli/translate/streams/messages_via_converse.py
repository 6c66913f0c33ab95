"""Bedrock ConverseStream events in, Anthropic Messages event stream out.

Input: one dict per decoded event-stream message, in botocore's shape: a single key naming the
event (its `:event-type`, or `:exception-type` for exceptions) holding the JSON payload, e.g.
`{"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "Hi"}}}`. The Bedrock backend
yields them as SSE `data:` lines, so `SSEPump` drives this class unchanged. A `type` key added by
the SSE decoder is ignored.

| Converse event                                  | Anthropic event                                      |
| ----------------------------------------------- | ---------------------------------------------------- |
| the first event (normally `messageStart`)       | `message_start`: id `message_id` or "msg_bdrk_stream",|
|                                                 | model = requested model, input_tokens = the estimate |
| `contentBlockStart.start.toolUse`               | `tool_use` block start (toolUseId, name)             |
| `contentBlockDelta.delta.text`                  | `text` block (opened on a new index), `text_delta`   |
| `contentBlockDelta.delta.toolUse.input`         | `input_json_delta`                                   |
| `contentBlockDelta.delta.reasoningContent.text` | `thinking` block, `thinking_delta`                   |
| `... reasoningContent.signature`                | `signature_delta`                                    |
| `... reasoningContent.redactedContent`          | a `redacted_thinking` block                          |
| `contentBlockStop`                              | `content_block_stop`                                 |
| `messageStop.stopReason`                        | closes the blocks; `message_delta.stop_reason`       |
| `metadata.usage`                                | `message_delta.usage`, then `message_stop`           |
| `throttlingException`, `...Exception`           | `error` event of the matching kind, nothing after it |

States, all in this class:

    IDLE ──first event──> STREAMING ──messageStop──> FINISHING ──metadata──> DONE
    FINISHING ──finish()──> DONE;  IDLE, STREAMING ──finish()──> FAILED (no messageStop: cut short)
    any but DONE/FAILED ──exception event or fail()──> FAILED

A delta for an upstream block index other than the open one closes the open block and opens a new
one, so Anthropic indexes only grow and blocks never interleave. Usage comes after `messageStop`
in `metadata`, so FINISHING waits for it; `finish()` there ends the message with what is known
(recording `usage_missing`); earlier, the stream was cut short: an `error` event, never `end_turn`.

Gives up: citations and image deltas (dropped, recorded), guardrail traces, latency metrics.
"""

from __future__ import annotations

from typing import Any

from anyllm_cli.errors import UNFINISHED, ErrorKind, InvalidInput, anthropic_error
from anyllm_cli.translate.degradation import Degradation
from anyllm_cli.translate.messages_via_converse import bedrock_error, stop_reason, usage
from anyllm_cli.translate.streams._anthropic_writer import AnthropicEventWriter, message_start

_IDLE, _STREAMING, _FINISHING, _DONE, _FAILED = range(5)
_HANDLERS = {
    "messageStart": "_message_start",
    "contentBlockStart": "_block_start",
    "contentBlockDelta": "_block_delta",
    "contentBlockStop": "_block_stop",
    "messageStop": "_message_stop",
    "metadata": "_metadata",
}


class MessagesViaConverseStream(AnthropicEventWriter):
    def __init__(
        self, *, requested_model: str, message_id: str | None = None, input_tokens: int = 0
    ) -> None:
        self.degradations: list[Degradation] = []
        self.started = False
        self._model = requested_model
        self._message_id = message_id or "msg_bdrk_stream"
        self._input_tokens = input_tokens
        self._state = _IDLE
        super().__init__()  # the block index counter
        self._index = -1  # the open Anthropic block
        self._upstream: Any = None  # the open block's contentBlockIndex
        self._open: str | None = None  # "text" | "thinking" | "tool" | "redacted"
        self._stop: str | None = None
        self._stop_sequence: str | None = None
        self._usage: dict[str, Any] | None = None
        self._tools = False
        self._chars = 0
        self._noted: set[str] = set()

    # -- the public face -----------------------------------------------------------------------------

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        if self._state >= _DONE:
            if self._state == _DONE:
                self._note("event_after_message_stop", "an event after the end is dropped")
            return []
        if not isinstance(event, dict):
            raise InvalidInput("expected a JSON object", "event")
        names = [k for k in event if k != "type"]
        if len(names) != 1 or not isinstance(event[names[0]], dict):
            raise InvalidInput("expected one event name holding an object", "event")
        name = names[0]
        payload: dict[str, Any] = event[name]
        if name not in _HANDLERS:
            if name.lower().endswith("exception") or bedrock_error(name):
                kind = (bedrock_error(name) or (ErrorKind.API_ERROR, 500))[0]
                return self._error(kind, _exception_message(name, payload))
            self._note(f"unknown_event:{name}", f"event {name!r} dropped")
            return []
        out = [] if self.started else [self._start()]
        getattr(self, _HANDLERS[name])(payload, out)
        return out

    failure: tuple[ErrorKind, str] | None = None  # what the error event said, once one went out

    @property
    def done(self) -> bool:
        return self._state >= _DONE

    def finish(self) -> list[dict[str, Any]]:
        if self._state >= _DONE:
            return []
        if self._state != _FINISHING:  # no messageStop: cut short, however cleanly it ended
            self._note("stream_ended_without_stop", "the upstream stream was cut short")
            return self._error(ErrorKind.API_ERROR, UNFINISHED)
        return self._end()

    def fail(self, kind: ErrorKind, message: str) -> list[dict[str, Any]]:
        if self._state >= _DONE:
            return []
        return self._error(kind, message)

    # -- events --------------------------------------------------------------------------------------

    def _message_start(self, payload: dict[str, Any], out: list[dict[str, Any]]) -> None:
        return

    def _block_start(self, payload: dict[str, Any], out: list[dict[str, Any]]) -> None:
        start = payload.get("start")
        tool = start.get("toolUse") if isinstance(start, dict) else None
        if not isinstance(tool, dict):
            self._note("block_start_dropped", "a non-tool block start is dropped")
            return
        tool_id, name = tool.get("toolUseId"), tool.get("name")
        if not isinstance(tool_id, str) or not isinstance(name, str):
            raise InvalidInput("toolUseId and name must be strings", "contentBlockStart.start")
        block = {"type": "tool_use", "id": tool_id, "name": name, "input": {}}
        self._open_block("tool", payload.get("contentBlockIndex"), block, out)
        self._tools = True

    def _block_delta(self, payload: dict[str, Any], out: list[dict[str, Any]]) -> None:
        delta = payload.get("delta")
        if not isinstance(delta, dict):
            raise InvalidInput("expected an object", "contentBlockDelta.delta")
        at = payload.get("contentBlockIndex")
        if isinstance(delta.get("text"), str):
            self._chars += len(delta["text"])
            self._ensure("text", at, {"type": "text", "text": ""}, out)
            out.append(_delta(self._index, {"type": "text_delta", "text": delta["text"]}))
        elif isinstance(delta.get("toolUse"), dict):
            partial = delta["toolUse"].get("input")
            if not isinstance(partial, str):
                raise InvalidInput("expected a string", "contentBlockDelta.delta.toolUse.input")
            self._chars += len(partial)
            if self._open != "tool" or at != self._upstream:
                self._note("tool_delta_without_start", "tool input with no open tool block dropped")
                return
            out.append(_delta(self._index, {"type": "input_json_delta", "partial_json": partial}))
        elif isinstance(delta.get("reasoningContent"), dict):
            self._reasoning(delta["reasoningContent"], at, out)
        else:
            kind = next(iter(delta), "empty")
            self._note(f"delta_dropped:{kind}", f"{kind} delta has no Anthropic equivalent")

    def _reasoning(self, delta: dict[str, Any], at: Any, out: list[dict[str, Any]]) -> None:
        redacted = delta.get("redactedContent")
        if isinstance(redacted, str):
            self._open_block("redacted", at, {"type": "redacted_thinking", "data": redacted}, out)
            return
        self._ensure("thinking", at, {"type": "thinking", "thinking": "", "signature": ""}, out)
        if isinstance(delta.get("text"), str):
            self._chars += len(delta["text"])
            out.append(_delta(self._index, {"type": "thinking_delta", "thinking": delta["text"]}))
        if isinstance(delta.get("signature"), str):
            sig = {"type": "signature_delta", "signature": delta["signature"]}
            out.append(_delta(self._index, sig))

    def _block_stop(self, payload: dict[str, Any], out: list[dict[str, Any]]) -> None:
        if self._open is not None and payload.get("contentBlockIndex") == self._upstream:
            self._close(out)

    def _message_stop(self, payload: dict[str, Any], out: list[dict[str, Any]]) -> None:
        self._close(out)
        reason = payload.get("stopReason")
        self._stop = stop_reason(reason, self.degradations)
        extra = payload.get("additionalModelResponseFields")
        sequence = extra.get("stop_sequence") if isinstance(extra, dict) else None
        self._stop_sequence = sequence if isinstance(sequence, str) else None
        self._state = _FINISHING

    def _metadata(self, payload: dict[str, Any], out: list[dict[str, Any]]) -> None:
        if isinstance(payload.get("usage"), dict):
            self._usage = payload["usage"]
        if self._state == _FINISHING:
            out += self._end()

    # -- blocks --------------------------------------------------------------------------------------

    def _ensure(self, kind: str, at: Any, block: dict[str, Any], out: list[dict[str, Any]]) -> None:
        if self._open != kind or at != self._upstream:
            self._open_block(kind, at, block, out)

    def _open_block(
        self, kind: str, at: Any, block: dict[str, Any], out: list[dict[str, Any]]
    ) -> None:
        self._close(out)
        self._open, self._upstream = kind, at
        self._index = self._start_block(block, out)

    def _close(self, out: list[dict[str, Any]]) -> None:
        if self._open is not None:
            self._stop_block(self._index, out)
            self._open = self._upstream = None

    # -- the ends ------------------------------------------------------------------------------------

    def _start(self) -> dict[str, Any]:
        self.started = True
        self._state = _STREAMING
        return message_start(self._message_id, self._model, self._input_tokens)

    def _end(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        self._close(out)
        self._state = _DONE
        stop = self._stop
        if stop is None:
            self._note("stream_ended_without_stop", "the upstream stream was cut short")
            stop = "tool_use" if self._tools else "end_turn"
        counts = usage(self._usage)
        if self._usage is None:
            self._note(
                "usage_missing",
                "the upstream sent no usage: input_tokens is the caller's estimate, "
                "output_tokens one per four characters",
            )
            counts["input_tokens"] = self._input_tokens
            counts["output_tokens"] = (self._chars + 3) // 4
        delta = {"stop_reason": stop, "stop_sequence": self._stop_sequence}
        return self._end_message(delta, counts, out)

    def _error(self, kind: ErrorKind, message: str) -> list[dict[str, Any]]:
        self._state = _FAILED
        self.failure = (kind, message)
        return [anthropic_error(kind, message)[1]]

    def _note(self, code: str, detail: str) -> None:
        """Record a degradation once per code (the part before ':' names it)."""
        if code not in self._noted:
            self._noted.add(code)
            self.degradations.append(Degradation(code.split(":", maxsplit=1)[0], detail))


def _delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def _exception_message(name: str, payload: dict[str, Any]) -> str:
    message = payload.get("message") or payload.get("Message") or name
    original = payload.get("originalMessage")
    if isinstance(original, str) and original:
        message = f"{message} ({original})"
    return f"{name}: {message}"
