"""The writing side of the Anthropic stream grammar, shared by the four `MessagesVia*Stream`
translators (the mirror of `_anthropic_reader.py`, which the other direction shares).

    message_start                       once, first (`message_start()`)
    content_block_start (index n)       indices handed out in order from 0 (`_start_block`)
      content_block_delta (index n)*    the translator's own deltas
    content_block_stop (index n)        (`_stop_block`)
    message_delta, message_stop         last: nothing is written after them (`_end_message`)

The translators keep their own state machines (which upstream event opens or closes which block);
the event shapes, the index counter and the closing pair live here, so they are the same in every
stream. Pure: no clock, no randomness.
"""

from __future__ import annotations

from typing import Any


class AnthropicEventWriter:
    def __init__(self) -> None:
        self._next_index = 0  # the index the next content block gets

    def _start_block(self, block: dict[str, Any], out: list[dict[str, Any]]) -> int:
        """Open the next content block; its index."""
        index = self._next_index
        self._next_index += 1
        out.append({"type": "content_block_start", "index": index, "content_block": block})
        return index

    @staticmethod
    def _stop_block(index: int, out: list[dict[str, Any]]) -> None:
        out.append({"type": "content_block_stop", "index": index})

    @staticmethod
    def _end_message(
        delta: dict[str, Any], usage: dict[str, Any], out: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The closing pair: the stop reason and final usage, then `message_stop`."""
        out.append({"type": "message_delta", "delta": delta, "usage": usage})
        out.append({"type": "message_stop"})
        return out


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
