"""Gemini `streamGenerateContent?alt=sse` chunks in, Anthropic Messages event stream out.

Each data chunk is one partial GenerateContentResponse holding only the *new* parts.

| Gemini chunk                                  | Anthropic event                                         |
| --------------------------------------------- | ------------------------------------------------------- |
| the first chunk, whatever it holds            | `message_start`: id `message_id`, `msg_<responseId>` or |
|                                               | the injected `fallback_id` (each stream its own),       |
|                                               | input tokens from its usageMetadata (else the estimate) |
| part `thought: true`                          | `thinking` block, `thinking_delta`                      |
| its `thoughtSignature`                        | `signature_delta` "gemini:<sig>" on that block          |
| `thoughtSignature` on any other part          | a thinking block with no text carrying the signature,   |
|                                               | before the part's block (an empty text part's signature |
|                                               | goes on the open thinking block when it has none)       |
| the same once text or a tool_use was sent     | a functionCall's: in the tool_use id (`__gsig_`); any   |
|                                               | other: dropped (`text_signature_dropped`)               |
| part `text`                                   | `text` block, `text_delta`                              |
| part `functionCall` (always whole)            | `tool_use` block + one `input_json_delta`; id Gemini's, |
|                                               | or `toolu_<responseId>_<n>`; held until the next part,  |
|                                               | whose bare signature (empty text) is the call's own     |
| other parts (inlineData, executableCode, ...) | dropped (`response_part_dropped`)                       |
| `promptFeedback.blockReason`                  | a text block explaining it; stop_reason `refusal`; end  |
| `finishReason`                                | closes the open block; the end waits for `finish()`     |
| `usageMetadata` (repeated; the last wins)     | `message_delta.usage`                                   |
| `{"error": {...}}`                            | `error` event, and nothing after it                     |
| end of input (`finish()`)                     | `message_delta` + `message_stop`; with no finishReason  |
|                                               | seen, an `error` event instead (never a silent end)     |

    IDLE ──first chunk──> STREAMING ──finishReason──> FINISHING ──finish()──> DONE
    IDLE, STREAMING ──finish() without a finishReason──> FAILED
    STREAMING ──blockReason──> DONE
    any but DONE, FAILED ──error chunk or fail()──> FAILED

Blocks never interleave: a part of another kind closes the open block first. Consecutive thought
parts extend one thinking block until it has a signature. Content after a finishReason still opens
blocks (Gemini may send a last chunk with only usage, or with more parts). The signature scheme and
its way back are described in `translate/messages_via_gemini.py`; `part_blocks` there is the
non-streaming twin of `_part` here.

Gives up: candidates other than the first, non-text output parts, the matched stop sequence.
"""

from __future__ import annotations

import json
import re
from typing import Any

from anyllm_cli.errors import ErrorKind, InvalidInput, anthropic_error, kind_from_status
from anyllm_cli.translate.degradation import Degradation
from anyllm_cli.translate.messages_via_gemini import (
    FINISH_REASONS,
    SIGNATURE_PREFIX,
    block_text,
    late_signature,
    signed_tool_id,
    stop_reason,
    tool_id,
    usage,
)

_IDLE, _STREAMING, _FINISHING, _DONE, _FAILED = range(5)
_NOT_ID = re.compile(r"[^A-Za-z0-9_-]")
_DELTA_TYPES = {"text": "text_delta", "thinking": "thinking_delta"}
# google.rpc status -> kind, for error objects without a usable HTTP code
_STATUS_KINDS = {
    "INVALID_ARGUMENT": ErrorKind.INVALID_REQUEST,
    "FAILED_PRECONDITION": ErrorKind.INVALID_REQUEST,
    "UNAUTHENTICATED": ErrorKind.AUTHENTICATION,
    "PERMISSION_DENIED": ErrorKind.PERMISSION,
    "NOT_FOUND": ErrorKind.NOT_FOUND,
    "RESOURCE_EXHAUSTED": ErrorKind.RATE_LIMIT,
    "UNAVAILABLE": ErrorKind.OVERLOADED,
    "DEADLINE_EXCEEDED": ErrorKind.TIMEOUT,
    "INTERNAL": ErrorKind.API_ERROR,
}


class MessagesViaGeminiStream:
    def __init__(
        self,
        *,
        requested_model: str,
        message_id: str | None = None,
        input_tokens: int = 0,
        fallback_id: str | None = None,
    ) -> None:
        self.degradations: list[Degradation] = []
        self.started = False
        self._model = requested_model
        self._message_id = message_id
        self._fallback_id = fallback_id  # the id when the stream has no responseId (injected)
        self._input_tokens = input_tokens
        self._state = _IDLE
        self._base = ""  # tool ids derive from it: the responseId, else the message id
        self._next_index = 0
        self._index = -1
        self._open: str | None = None  # "text" | "thinking"; tool_use blocks never stay open
        self._signed = False  # the open thinking block has its signature
        self._late = False  # a text or tool_use block was sent: no thinking block may follow
        self._held: tuple[Any, str | None, str] | None = None  # a functionCall, its signature, path
        self._calls = 0
        self._ids: set[str] = set()
        self._finish_reason: str | None = None
        self._blocked = False
        self._usage: dict[str, Any] | None = None
        self._chars = 0
        self._noted: set[tuple[str, str]] = set()

    # -- the public face -----------------------------------------------------------------------------

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        if self._state >= _DONE:
            if self._state == _DONE:
                self._note("chunk_after_end", "a chunk after the end of the stream is dropped")
            return []
        if not isinstance(chunk, dict):
            raise InvalidInput("expected a JSON object", "chunk")
        if chunk.get("error") is not None:
            return self._error(*_error_of(chunk["error"]))
        meta = chunk.get("usageMetadata")
        if meta is not None:
            if not isinstance(meta, dict):
                raise InvalidInput("expected an object", "usageMetadata")
            self._usage = meta
        out = [] if self.started else [self._start(chunk)]
        feedback = chunk.get("promptFeedback")
        if feedback is not None:
            if not isinstance(feedback, dict):
                raise InvalidInput("expected an object", "promptFeedback")
            reason = feedback.get("blockReason")
            if reason:
                return out + self._block(reason)
        candidates = chunk.get("candidates")
        if candidates is not None:
            if not isinstance(candidates, list):
                raise InvalidInput("expected an array", "candidates")
            for n, candidate in enumerate(candidates):
                self._candidate(candidate, n, out)
        return out

    def finish(self) -> list[dict[str, Any]]:
        if self._state >= _DONE:
            return []
        if self._finish_reason is None:
            self._note("stream_ended_without_finish_reason", "the upstream stream was cut short")
            return self._error(
                ErrorKind.API_ERROR, "the Gemini stream ended without a finishReason"
            )
        return self._end()

    def fail(self, kind: ErrorKind, message: str) -> list[dict[str, Any]]:
        if self._state >= _DONE:
            return []
        return self._error(kind, message)

    # -- chunk parts ---------------------------------------------------------------------------------

    def _candidate(self, candidate: Any, n: int, out: list[dict[str, Any]]) -> None:
        path = f"candidates[{n}]"
        if not isinstance(candidate, dict):
            raise InvalidInput("expected an object", path)
        if candidate.get("index", 0) != 0 or n > 0:
            self._note("extra_candidates_dropped", "only candidate 0 is translated", path)
            return
        content = candidate.get("content")
        if content is not None:
            if not isinstance(content, dict):
                raise InvalidInput("expected an object", f"{path}.content")
            parts = content.get("parts")
            if parts is not None and not isinstance(parts, list):
                raise InvalidInput("expected an array", f"{path}.content.parts")
            for k, part in enumerate(parts or []):
                self._part(part, f"{path}.content.parts[{k}]", out)
        reason = candidate.get("finishReason")
        if reason is not None:
            if not isinstance(reason, str):
                raise InvalidInput("expected a string", f"{path}.finishReason")
            self._finish_reason = reason
            self._release(out)
            self._close(out)
            self._state = _FINISHING

    def _part(self, part: Any, path: str, out: list[dict[str, Any]]) -> None:
        if not isinstance(part, dict):
            raise InvalidInput("expected an object", path)
        signature = part.get("thoughtSignature")
        if signature is not None and not isinstance(signature, str):
            raise InvalidInput("expected a string", f"{path}.thoughtSignature")
        text = part.get("text")
        if text is not None and not isinstance(text, str):
            raise InvalidInput("expected a string", f"{path}.text")
        call = part.get("functionCall")
        if self._held is not None:
            bare = signature and not text and call is None and part.get("thought") is not True
            if bare and self._held[1] is None:  # the call's signature, on the next (empty) part
                self._held = (self._held[0], signature, self._held[2])
                return
            self._release(out)
        if part.get("thought") is True and text is not None:
            if self._open != "thinking" or self._signed:
                self._open_block("thinking", out)
            self._delta("thinking", text, out)
            if signature:
                self._sign(signature, out)
        elif call is not None:
            _check_call(call, path)
            self._held = (call, signature or None, path)  # until the next part: its signature?
        elif text is not None:
            if signature and not text and self._open == "thinking" and not self._signed:
                self._sign(signature, out)
                return
            if signature:
                self._carrier(signature, out, path)
            if text:
                if self._open != "text":
                    self._open_block("text", out)
                self._delta("text", text, out)
        else:
            if signature:
                self._carrier(signature, out, path)
            kinds = ", ".join(sorted(k for k in part if k not in ("thought", "thoughtSignature")))
            self._note("response_part_dropped", f"{kinds or 'empty'} part", path)

    def _release(self, out: list[dict[str, Any]]) -> None:
        """Send the held functionCall: its signature on a thinking block before it while only
        thinking came before, else in its tool_use id."""
        if self._held is None:
            return
        call, signature, path = self._held
        self._held = None
        if signature and not self._late:
            self._carrier(signature, out)
        self._tool_use(call, path, out, signature if self._late else None)

    def _open_block(self, kind: str, out: list[dict[str, Any]]) -> None:
        self._close(out)
        self._index = self._next_index
        self._next_index += 1
        self._open = kind
        self._signed = False
        self._late = self._late or kind == "text"
        start = {"type": kind, kind: ""}
        if kind == "thinking":
            start["signature"] = ""
        out.append({"type": "content_block_start", "index": self._index, "content_block": start})

    def _delta(self, kind: str, text: str, out: list[dict[str, Any]]) -> None:
        if not text:
            return
        self._chars += len(text)
        delta = {"type": _DELTA_TYPES[kind], kind: text}
        out.append({"type": "content_block_delta", "index": self._index, "delta": delta})

    def _sign(self, signature: str, out: list[dict[str, Any]]) -> None:
        delta = {"type": "signature_delta", "signature": SIGNATURE_PREFIX + signature}
        out.append({"type": "content_block_delta", "index": self._index, "delta": delta})
        self._signed = True

    def _carrier(self, signature: str, out: list[dict[str, Any]], path: str = "") -> None:
        """A thinking block with no text whose only job is to carry a signature; after text or a
        tool_use (where no thinking block may follow) the signature is dropped instead."""
        if self._late:
            late_signature(path, self.degradations)
            return
        self._open_block("thinking", out)
        self._sign(signature, out)
        self._close(out)

    def _tool_use(
        self, call: Any, path: str, out: list[dict[str, Any]], signature: str | None
    ) -> None:
        name = call["name"]
        args = call.get("args") or {}
        upstream = call.get("id")
        call_id = tool_id(upstream, self._base, self._calls)
        if call_id in self._ids:
            call_id = tool_id(None, self._base, self._calls)
        if call_id != upstream:
            self._note("tool_call_id_derived", f"id {call_id} derived", path)
        self._ids.add(call_id)
        self._calls += 1
        self._late = True
        if signature:
            call_id = signed_tool_id(call_id, signature)
        self._close(out)
        index = self._next_index
        self._next_index += 1
        block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
        partial = json.dumps(args, ensure_ascii=False, separators=(",", ":"))
        self._chars += len(partial)
        out.append({"type": "content_block_start", "index": index, "content_block": block})
        delta = {"type": "input_json_delta", "partial_json": partial}
        out.append({"type": "content_block_delta", "index": index, "delta": delta})
        out.append({"type": "content_block_stop", "index": index})

    def _close(self, out: list[dict[str, Any]]) -> None:
        if self._open is None:
            return
        out.append({"type": "content_block_stop", "index": self._index})
        self._open = None

    # -- the ends ------------------------------------------------------------------------------------

    def _start(self, chunk: dict[str, Any]) -> dict[str, Any]:
        self.started = True
        self._state = _STREAMING
        response_id = chunk.get("responseId")
        clean = _NOT_ID.sub("_", response_id) if isinstance(response_id, str) else ""
        message_id = self._message_id or (
            f"msg_{clean}" if clean else self._fallback_id or "msg_stream"
        )
        self._base = clean or _NOT_ID.sub("_", message_id.removeprefix("msg_")) or "stream"
        counts = usage(self._usage)
        if self._usage is None or "promptTokenCount" not in self._usage:
            counts["input_tokens"] = self._input_tokens
        counts["output_tokens"] = 1
        message: dict[str, Any] = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": counts,
        }
        return {"type": "message_start", "message": message}

    def _block(self, reason: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        self._blocked = True
        self._open_block("text", out)
        self._delta("text", block_text(str(reason)), out)
        return out + self._end()

    def _end(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        self._release(out)
        self._close(out)
        self._state = _DONE
        reason = self._finish_reason
        if reason is not None and reason not in FINISH_REASONS:
            self._note("finish_reason_unmapped", f"finishReason {reason!r} became end_turn")
        counts = usage(self._usage)
        if self._usage is None:
            self._note(
                "usage_missing",
                "the upstream sent no usage: input_tokens is the caller's estimate, "
                "output_tokens one per four characters",
            )
            counts["input_tokens"] = self._input_tokens
            counts["output_tokens"] = (self._chars + 3) // 4
        stop = "refusal" if self._blocked else stop_reason(reason, self._calls > 0)
        delta = {"stop_reason": stop, "stop_sequence": None}
        out.append({"type": "message_delta", "delta": delta, "usage": counts})
        out.append({"type": "message_stop"})
        return out

    def _error(self, kind: ErrorKind, message: str) -> list[dict[str, Any]]:
        self._state = _FAILED
        return [anthropic_error(kind, message)[1]]

    def _note(self, code: str, detail: str, path: str = "") -> None:
        if (code, path) not in self._noted:
            self._noted.add((code, path))
            self.degradations.append(Degradation(code, detail, path))


def _check_call(call: Any, path: str) -> None:
    if not isinstance(call, dict):
        raise InvalidInput("expected an object", f"{path}.functionCall")
    if not isinstance(call.get("name"), str):
        raise InvalidInput("expected a string", f"{path}.functionCall.name")
    args = call.get("args")
    if args is not None and not isinstance(args, dict):
        raise InvalidInput("expected an object", f"{path}.functionCall.args")


def _error_of(error: Any) -> tuple[ErrorKind, str]:
    """Kind and message of a Gemini error object: its HTTP `code`, else its rpc `status`."""
    if not isinstance(error, dict):
        return ErrorKind.API_ERROR, str(error)[:500] or "upstream error"
    code, status, message = error.get("code"), error.get("status"), error.get("message")
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 600:
        kind = kind_from_status(code)
    else:
        kind = _STATUS_KINDS.get(status if isinstance(status, str) else "", ErrorKind.API_ERROR)
    if not isinstance(message, str) or not message:
        message = json.dumps(error, ensure_ascii=False)[:500]
    return kind, message
