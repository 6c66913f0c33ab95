"""Fold an Anthropic event stream into the final Message dict, as a non-streaming call returns it.

| event                                  | effect on the message                                    |
| -------------------------------------- | -------------------------------------------------------- |
| `message_start`                        | the message itself (a copy), with its initial usage      |
| `content_block_start`                  | a copy of the block appended to `content`                |
| `text_delta` / `thinking_delta`        | appended to the block's `text` / `thinking`              |
| `signature_delta`                      | replaces the thinking block's `signature`                |
| `citations_delta`                      | appended to the text block's `citations`                 |
| `input_json_delta`                     | joined, parsed at `content_block_stop` ("" -> {})        |
| `message_delta`                        | its `delta` fields set; its usage counts overwrite       |
|                                        | (cumulative totals, never summed; null keeps the old)   |
| `error`                                | raises `UpstreamError` with the kind of its error type   |
| `ping`, `message_stop`, unknown types  | nothing; unknown delta types too                         |

Pure and in one pass. Text pieces are joined once per block rather than concatenated per delta.
Tool input that is not a JSON object is kept whole under `_raw` (as `parse_arguments` does for
responses) rather than refused, so a stream cut short by max_tokens still folds. A stream without
`message_stop` returns what arrived (`stop_reason` stays null); malformed events (no
`message_start` first, a delta for a block that was never started or of the wrong kind, missing
fields) raise `InvalidInput` naming the event's position.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from anyllm_cli.errors import InvalidInput, UpstreamError, kind_from_error_type
from anyllm_cli.translate.messages_via_chat import parse_arguments

_TOOL_BLOCKS = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})
# delta type -> (block types it applies to, block field it appends to)
_APPENDS = {
    "text_delta": (frozenset({"text"}), "text"),
    "thinking_delta": (frozenset({"thinking"}), "thinking"),
    "input_json_delta": (_TOOL_BLOCKS, "partial_json"),
}


class _Fold:
    def __init__(self) -> None:
        self.message: dict[str, Any] | None = None
        self.blocks: dict[int, dict[str, Any]] = {}
        self.parts: dict[int, list[str]] = {}  # text pieces of blocks still open

    def step(self, event: dict[str, Any]) -> None:
        etype = event["type"]
        if etype == "content_block_delta" and self.message is not None:  # nearly every event
            self._delta(event["index"], event["delta"])
            return
        if etype == "error":
            error = event.get("error") or {}
            etype_name = error.get("type") if isinstance(error, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            kind = kind_from_error_type(etype_name if isinstance(etype_name, str) else None)
            raise UpstreamError(kind, message if isinstance(message, str) else str(error))
        if etype == "message_start":
            if self.message is not None:
                raise InvalidInput("a second message_start")
            self.message = dict(event["message"])
            self.message["content"] = [dict(block) for block in self.message.get("content") or []]
            self.message["usage"] = dict(self.message.get("usage") or {})
            return
        if etype == "ping":
            return
        if self.message is None:
            raise InvalidInput(f"{etype} before message_start")
        if etype == "content_block_start":
            self._start(event["index"], dict(event["content_block"]))
        elif etype == "content_block_delta":
            self._delta(event["index"], event["delta"])
        elif etype == "content_block_stop":
            self._stop(event["index"])
        elif etype == "message_delta":
            for key, value in (event.get("delta") or {}).items():
                if value is not None or key in ("stop_reason", "stop_sequence"):
                    self.message[key] = value
            for key, value in (event.get("usage") or {}).items():
                if value is not None:
                    self.message["usage"][key] = value

    def _start(self, index: int, block: dict[str, Any]) -> None:
        assert self.message is not None
        if index in self.blocks:
            raise InvalidInput(f"block {index} started twice")
        if isinstance(block.get("citations"), list):
            block["citations"] = list(block["citations"])
        self.message["content"].append(block)
        self.blocks[index] = block

    def _delta(self, index: int, delta: dict[str, Any]) -> None:
        block = self.blocks.get(index)
        if block is None:
            raise InvalidInput(f"a delta for block {index}, which was never started")
        dtype = delta["type"]
        appends = _APPENDS.get(dtype)
        if appends is not None:
            kinds, key = appends
            if block.get("type") not in kinds:
                raise InvalidInput(f"a {dtype} for a {block.get('type')} block")
            piece = delta[key]
            if not isinstance(piece, str):
                raise InvalidInput(f"{dtype}.{key} is not a string")
            parts = self.parts.get(index)
            if parts is None:
                start = "" if key == "partial_json" else block.get(key) or ""
                parts = self.parts[index] = [start]
            parts.append(piece)
        elif dtype == "signature_delta":
            self._check(block, "thinking", dtype)
            block["signature"] = delta["signature"]
        elif dtype == "citations_delta":
            self._check(block, "text", dtype)
            if not isinstance(block.get("citations"), list):
                block["citations"] = []
            block["citations"].append(delta["citation"])

    def _check(self, block: dict[str, Any], kind: str, dtype: str) -> None:
        if block.get("type") != kind:
            raise InvalidInput(f"a {dtype} for a {block.get('type')} block")

    def _stop(self, index: int) -> None:
        block = self.blocks.get(index)
        if block is None:
            raise InvalidInput(f"a stop for block {index}, which was never started")
        parts = self.parts.pop(index, None)
        if parts is None:
            return
        text = "".join(parts)
        if block.get("type") in _TOOL_BLOCKS:
            if text:
                block["input"] = parse_arguments(text)[0]
            elif not isinstance(block.get("input"), dict):
                block["input"] = {}
        else:
            block[block["type"]] = text

    def result(self) -> dict[str, Any]:
        if self.message is None:
            raise InvalidInput("no message_start event", "events")
        for index in list(self.parts):
            self._stop(index)
        return self.message


def accumulate(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The final Message dict of an Anthropic event stream (see the module docstring)."""
    fold = _Fold()
    for position, event in enumerate(events):
        try:
            if not isinstance(event, dict):
                raise InvalidInput("expected an object")
            fold.step(event)
        except InvalidInput as exc:
            raise InvalidInput(exc.problem, f"events[{position}]") from None
        except (
            KeyError,
            TypeError,
            AttributeError,
            ValueError,
        ) as exc:  # missing or wrong-typed field
            problem = f"malformed {event.get('type') if isinstance(event, dict) else 'event'}"
            raise InvalidInput(
                f"{problem} ({type(exc).__name__}: {exc})", f"events[{position}]"
            ) from None
    return fold.result()
