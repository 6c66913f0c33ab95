"""OpenAI Responses event stream in, Anthropic Messages event stream out.

| Responses event                                  | Anthropic event                                       |
| ------------------------------------------------ | ----------------------------------------------------- |
| `response.created` (or any first event)          | `message_start`: id `message_id` or `msg_<resp id>`,  |
|                                                  | model = requested model, input_tokens = the estimate  |
| `response.reasoning_summary_text.delta`,         | `thinking` block, `thinking_delta`; a new summary     |
| `response.reasoning_text.delta`                  | part is joined with "\\n\\n"                          |
| `output_item.done` of a reasoning item           | `signature_delta` "resp:<id>:<encrypted_content>",then|
|                                                  | the block closes (opened then, if no summary came)    |
| `response.output_text.delta`, `.refusal.delta`   | `text` block per content part, `text_delta`           |
|                                                  | (a refusal: stop_reason `refusal`)                    |
| `output_item.added` of a function_call           | `tool_use` block start, id = `call_id`                |
| `response.function_call_arguments.delta`         | `input_json_delta.partial_json`                       |
| `function_call_arguments.done`, `output_item.done` | what the deltas did not carry (servers that send    |
|                                                  | whole items only still come through)                  |
| `response.completed` / `response.incomplete`     | `message_delta` (stop_reason: `tool_use` whenever a   |
|                                                  | function call came; usage from the response) and      |
|                                                  | `message_stop`                                        |
| `response.failed`, `error`                       | `error` event, and nothing after it                   |
| end of input (`finish()`) before completion      | `error` event (never a silent end)                    |
| any other event type                             | nothing                                               |

The states, all in this one class:

    IDLE ──first event──> STREAMING ──response.completed / .incomplete──> DONE
    IDLE, STREAMING ──error / response.failed / fail() / finish()──> FAILED

IDLE has emitted nothing; the first event that is not an error emits `message_start` at once and
enters STREAMING. There each piece of content opens a block if the open one belongs to another item
or content part, closing that one first, so blocks never interleave and their indexes only grow.
DONE and FAILED are terminal: later events are dropped (recorded after DONE).

Gives up: argument or summary text for an item whose block another item already closed (Responses
streams items one after another, so this needs a misbehaving server), other output items (web
search calls and the like), annotations, and per-part boundaries in reasoning summaries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from anyllm_cli.errors import ErrorKind, InvalidInput, anthropic_error, kind_from_error_type
from anyllm_cli.translate.degradation import Degradation
from anyllm_cli.translate.messages_via_responses import (
    error_kind,
    signature,
    stop_reason,
    usage,
)
from anyllm_cli.translate.streams.messages_via_chat import message_start

_IDLE, _STREAMING, _DONE, _FAILED = range(4)
_NOT_ID = re.compile(r"[^A-Za-z0-9_-]")
_DELTA_TYPES = {"text": "text_delta", "thinking": "thinking_delta"}
_THINKING_EVENTS = frozenset(
    {"response.reasoning_summary_text.delta", "response.reasoning_text.delta"}
)
_TEXT_EVENTS = frozenset({"response.output_text.delta", "response.refusal.delta"})
_END_EVENTS = frozenset({"response.completed", "response.incomplete"})


@dataclass(slots=True)
class _Item:
    """One output item; `block` is the index of its latest Anthropic block (-1: none yet)."""

    kind: str
    ordinal: int
    block: int = -1
    part: Any = None  # the summary / content index its open block holds
    chars: int = 0  # text already sent for it
    call_id: str = ""
    name: str = ""
    args: list[str] = field(default_factory=list)
    sent: int = 0  # argument characters already sent
    closed: bool = False


class MessagesViaResponsesStream:
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
        self._owner: _Item | None = None  # the item whose block is open
        self._items: dict[Any, _Item] = {}
        self._ids: set[str] = set()
        self._calls = 0
        self._refused = False
        self._chars = 0
        self._noted: set[tuple[str, str]] = set()

    # -- the public face -----------------------------------------------------------------------------

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        if self._state >= _DONE:
            return self._late()
        if not isinstance(event, dict):
            raise InvalidInput("expected a JSON object", "event")
        etype = event.get("type")
        if not isinstance(etype, str):
            raise InvalidInput("expected a string", "type")
        if etype == "error":
            return self._error(*_error_of(event))
        if etype == "response.failed":
            failed = _obj(event, "response")
            error = failed.get("error")
            if isinstance(error, dict):
                return self._error(*_error_of(error))
            return self._error(ErrorKind.API_ERROR, "the upstream response failed")
        out = [] if self.started else [self._start(event)]
        if etype in _THINKING_EVENTS:
            self._content(event, "thinking", out)
        elif etype in _TEXT_EVENTS:
            self._refused = self._refused or etype == "response.refusal.delta"
            self._content(event, "text", out)
        elif etype == "response.output_item.added":
            self._added(event, out)
        elif etype == "response.function_call_arguments.delta":
            delta = _str(event, "delta")
            call = self._item(event, "function_call")
            if call is not None:
                self._arguments(call, delta, out)
        elif etype == "response.function_call_arguments.done":
            call = self._item(event, "function_call")
            if call is not None:
                self._call_done(call, event, out)
        elif etype == "response.output_item.done":
            self._item_done(event, out)
        elif etype == "response.output_text.annotation.added":
            self._note("response_field_dropped", "annotations are dropped", "annotation")
        elif etype in _END_EVENTS:
            out += self._end(_obj(event, "response"))
        return out

    def finish(self) -> list[dict[str, Any]]:
        if self._state >= _DONE:
            return []
        self._note("stream_ended_without_completion", "the upstream stream was cut short")
        return self._error(ErrorKind.API_ERROR, "the upstream stream ended before it completed")

    def fail(self, kind: ErrorKind, message: str) -> list[dict[str, Any]]:
        if self._state >= _DONE:
            return []
        return self._error(kind, message)

    # -- items ---------------------------------------------------------------------------------------

    def _item(self, event: dict[str, Any], kind: str) -> _Item | None:
        """The item an event belongs to, keyed by `output_index` (else `item_id`); None (and a
        record) when that item is of another kind."""
        key = event.get("output_index")
        if not isinstance(key, int) or isinstance(key, bool):
            key = event.get("item_id")
            if not isinstance(key, str):
                raise InvalidInput("expected an integer", "output_index")
        item = self._items.get(key)
        if item is None:
            item = self._items[key] = _Item(kind, len(self._items))
        elif item.kind != kind:
            detail = f"a {kind} event for a {item.kind} item is dropped"
            self._note("item_type_mismatch", detail, f"output[{item.ordinal}]")
            return None
        return item

    def _added(self, event: dict[str, Any], out: list[dict[str, Any]]) -> None:
        raw = _obj(event, "item")
        kind = _str(raw, "type", "item.type")
        item = self._item(event, kind)
        if item is None:
            return
        if kind == "function_call":
            self._call_fields(item, raw)
            if item.name:  # else it waits for a name (arguments.done, output_item.done, the end)
                self._open_tool(item, out)
        elif kind not in ("message", "reasoning"):
            detail = f"{kind} items have no Anthropic equivalent"
            self._note("output_item_dropped", detail, f"output[{item.ordinal}]")

    def _content(self, event: dict[str, Any], kind: str, out: list[dict[str, Any]]) -> None:
        text = _str(event, "delta")
        index_name = "summary_index" if "summary_index" in event else "content_index"
        part = event.get(index_name)
        if not text:
            return
        item = self._item(event, "reasoning" if kind == "thinking" else "message")
        if item is None:
            return
        if kind == "thinking" and item.closed:
            self._note("reasoning_after_close", "summary text after its block closed is dropped")
            return
        if self._owner is not item or self._open != kind or (kind == "text" and item.part != part):
            self._open_block(item, kind, out)
        elif kind == "thinking" and item.part != part and item.chars:
            text = "\n\n" + text  # a new summary part, as response() joins them
        item.part = part
        self._delta(item, kind, text, out)

    def _delta(self, item: _Item, kind: str, text: str, out: list[dict[str, Any]]) -> None:
        item.chars += len(text)
        self._chars += len(text)
        delta = {"type": _DELTA_TYPES[kind], kind: text}
        out.append({"type": "content_block_delta", "index": self._index, "delta": delta})

    def _item_done(self, event: dict[str, Any], out: list[dict[str, Any]]) -> None:
        raw = _obj(event, "item")
        kind = _str(raw, "type", "item.type")
        item = self._item(event, kind)
        if item is None:
            return
        if kind == "reasoning":
            self._reasoning_done(item, raw, out)
        elif kind == "message":
            if not item.chars:  # nothing streamed: the finished item carries the text
                self._message_parts(item, raw, out)
            if self._owner is item:
                self._close(out)
        elif kind == "function_call":
            self._call_fields(item, raw)
            self._call_done(item, {"arguments": raw.get("arguments")}, out)

    def _reasoning_done(self, item: _Item, raw: dict[str, Any], out: list[dict[str, Any]]) -> None:
        if not item.chars and not item.closed:
            texts = [_part_text(p, "item.summary") for p in _list(raw, "summary")]
            texts = texts or [_part_text(p, "item.content") for p in _list(raw, "content")]
            text = "\n\n".join(t for t in texts if t)
            if text:
                self._open_block(item, "thinking", out)
                self._delta(item, "thinking", text, out)
        encrypted = raw.get("encrypted_content")
        if encrypted is not None and not isinstance(encrypted, str):
            raise InvalidInput("expected a string", "item.encrypted_content")
        if encrypted and item.closed:
            self._note("reasoning_signature_dropped", "its thinking block was already closed")
        elif encrypted:
            if self._owner is not item:
                self._open_block(item, "thinking", out)
            item_id = raw.get("id")
            signed = signature(item_id if isinstance(item_id, str) else None, encrypted)
            delta = {"type": "signature_delta", "signature": signed}
            out.append({"type": "content_block_delta", "index": self._index, "delta": delta})
        if self._owner is item:
            self._close(out)
        item.closed = True

    def _message_parts(self, item: _Item, raw: dict[str, Any], out: list[dict[str, Any]]) -> None:
        for n, part in enumerate(_list(raw, "content")):
            if not isinstance(part, dict):
                raise InvalidInput("expected an object", f"item.content[{n}]")
            ptype = part.get("type")
            text = part.get("text") if ptype == "output_text" else part.get("refusal")
            if ptype not in ("output_text", "refusal") or not text:
                continue
            if not isinstance(text, str):
                raise InvalidInput("expected a string", f"item.content[{n}]")
            self._refused = self._refused or ptype == "refusal"
            item.part = n
            self._open_block(item, "text", out)
            self._delta(item, "text", text, out)

    # -- function calls ------------------------------------------------------------------------------

    def _call_fields(self, item: _Item, raw: dict[str, Any]) -> None:
        call_id = raw.get("call_id")
        name = raw.get("name")
        if call_id is not None and not isinstance(call_id, str):
            raise InvalidInput("expected a string", "item.call_id")
        if name is not None and not isinstance(name, str):
            raise InvalidInput("expected a string", "item.name")
        item.call_id = item.call_id or call_id or ""
        item.name = item.name or name or ""

    def _arguments(self, item: _Item, args: str, out: list[dict[str, Any]]) -> None:
        if not args:
            return
        item.args.append(args)
        self._chars += len(args)
        if self._owner is item:
            out.append(_json_delta(self._index, args))
            item.sent += len(args)
        elif item.closed:
            self._note(
                "tool_arguments_after_close",
                "argument text arrived after the tool_use block was closed; it is dropped",
                f"output[{item.ordinal}]",
            )

    def _call_done(self, item: _Item, event: dict[str, Any], out: list[dict[str, Any]]) -> None:
        name = event.get("name")
        if isinstance(name, str) and not item.name:
            item.name = name
        whole = event.get("arguments")
        if whole is not None and not isinstance(whole, str):
            raise InvalidInput("expected a string", "arguments")
        streamed = "".join(item.args)
        if whole and whole != streamed:
            if whole.startswith(streamed) and not item.closed:
                item.args.append(whole[len(streamed) :])
            else:
                detail = "the finished arguments differ from the streamed ones; streamed kept"
                self._note("tool_arguments_mismatch", detail, f"output[{item.ordinal}]")
        if item.block < 0:
            self._open_tool(item, out)
        elif self._owner is item:
            rest = "".join(item.args)[item.sent :]
            if rest:
                out.append(_json_delta(self._index, rest))
                item.sent += len(rest)
        if self._owner is item:
            self._close(out)

    def _open_tool(self, item: _Item, out: list[dict[str, Any]]) -> None:
        if item.block >= 0:
            return
        self._close(out)
        self._calls += 1
        item.block = self._index = self._next_index
        self._next_index += 1
        self._open, self._owner = "tool", item
        tool_id = item.call_id
        if not tool_id or tool_id in self._ids:
            base = _NOT_ID.sub("_", self._upstream_id or self._message_id or "") or "call"
            tool_id = f"toolu_{base}_{item.ordinal}"
            detail = f"id {tool_id} derived (upstream call_id {item.call_id!r} missing or reused)"
            self._note("tool_call_id_derived", detail, f"output[{item.ordinal}]")
        if not item.name:
            self._note("tool_name_missing", "a function call came without a name")
        self._ids.add(tool_id)
        block = {"type": "tool_use", "id": tool_id, "name": item.name, "input": {}}
        out.append({"type": "content_block_start", "index": item.block, "content_block": block})
        buffered = "".join(item.args)
        if buffered:
            out.append(_json_delta(item.block, buffered))
            item.sent = len(buffered)

    # -- blocks --------------------------------------------------------------------------------------

    def _open_block(self, item: _Item, kind: str, out: list[dict[str, Any]]) -> None:
        self._close(out)
        item.block = self._index = self._next_index
        self._next_index += 1
        self._open, self._owner = kind, item
        start: dict[str, Any] = {"type": kind, kind: ""}
        if kind == "thinking":
            start["signature"] = ""
        out.append({"type": "content_block_start", "index": self._index, "content_block": start})

    def _close(self, out: list[dict[str, Any]]) -> None:
        if self._open is None:
            return
        out.append({"type": "content_block_stop", "index": self._index})
        if self._owner is not None and self._open != "text":
            self._owner.closed = True
        self._open, self._owner = None, None

    # -- the ends ------------------------------------------------------------------------------------

    def _start(self, event: dict[str, Any]) -> dict[str, Any]:
        self.started = True
        self._state = _STREAMING
        resp = event.get("response")
        upstream_id = resp.get("id") if isinstance(resp, dict) else None
        self._upstream_id = upstream_id if isinstance(upstream_id, str) else ""
        message_id = self._message_id or f"msg_{self._upstream_id or 'stream'}"
        return message_start(message_id, self._model, self._input_tokens)

    def _end(self, resp: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        self._close(out)
        for item in self._items.values():
            if item.kind == "function_call" and item.block < 0:
                self._open_tool(item, out)
                self._close(out)
        self._state = _DONE
        status = resp.get("status")
        details = resp.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        status = status if isinstance(status, str) else None
        reason = reason if isinstance(reason, str) else None
        stop = stop_reason(status, reason, has_calls=self._calls > 0, refused=self._refused)
        if status == "incomplete" and reason not in ("max_output_tokens", "content_filter"):
            self._note("incomplete_reason_unmapped", f"incomplete reason {reason!r} became {stop}")
        found = resp.get("usage")
        counts = usage(found if isinstance(found, dict) else None)
        if not isinstance(found, dict):
            self._note(
                "usage_missing",
                "the upstream sent no usage: input_tokens is the caller's estimate, "
                "output_tokens one per four characters",
            )
            counts["input_tokens"] = self._input_tokens
            counts["output_tokens"] = (self._chars + 3) // 4
        delta = {"stop_reason": stop, "stop_sequence": None}
        out.append({"type": "message_delta", "delta": delta, "usage": counts})
        out.append({"type": "message_stop"})
        return out

    def _error(self, kind: ErrorKind, message: str) -> list[dict[str, Any]]:
        self._state = _FAILED
        return [anthropic_error(kind, message)[1]]

    def _late(self) -> list[dict[str, Any]]:
        if self._state == _DONE:
            self._note("event_after_completion", "an event after the end of the stream is dropped")
        return []

    def _note(self, code: str, detail: str, path: str = "") -> None:
        """Record a degradation once per code and path."""
        if (code, path) not in self._noted:
            self._noted.add((code, path))
            self.degradations.append(Degradation(code, detail, path))


def _json_delta(index: int, partial: str) -> dict[str, Any]:
    return {
        "type": "content_block_delta",
        "index": index,
        "delta": {"type": "input_json_delta", "partial_json": partial},
    }


def _obj(event: dict[str, Any], key: str) -> dict[str, Any]:
    value = event.get(key)
    if not isinstance(value, dict):
        raise InvalidInput("expected an object", key)
    return value


def _str(obj: dict[str, Any], key: str, path: str = "") -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise InvalidInput("expected a string", path or key)
    return value


def _list(obj: dict[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput("expected an array", f"item.{key}")
    return value


def _part_text(part: Any, path: str) -> str:
    text = part.get("text") if isinstance(part, dict) else None
    if not isinstance(text, str):
        raise InvalidInput("expected an object with a text", path)
    return text


def _error_of(obj: dict[str, Any]) -> tuple[ErrorKind, str]:
    """Kind and message of an `error` event, or of a failed response's `error`."""
    nested = obj.get("error")
    err = nested if isinstance(nested, dict) else obj
    code, etype, message = err.get("code"), err.get("type"), err.get("message")
    message = message if isinstance(message, str) and message else "upstream error"
    if isinstance(code, str) and error_kind(code) is not ErrorKind.API_ERROR:
        return error_kind(code), message
    if isinstance(etype, str) and etype != "error":
        return kind_from_error_type(etype), message
    return ErrorKind.API_ERROR, message
