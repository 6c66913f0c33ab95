"""SSE bytes in, SSE bytes out: an `SSEDecoder`, a stream translator and an encoder joined.

Both `anyllm translate` and the proxy push upstream bytes through a pump, chunk by chunk, with no
buffering beyond the one incomplete SSE line the decoder must hold. `data: [DONE]` ends the input
(the translator's `finish()` runs then, or at the end of the bytes if it never came). A translator
that emits `None` asks for the OpenAI `[DONE]` sentinel. Data that is not JSON is an `InvalidInput`
naming the event's position; what the proxy does with it (an in-stream error event) is its choice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from anyllm_cli.errors import ErrorKind, InvalidInput
from anyllm_cli.models import codec
from anyllm_cli.translate.degradation import Degradation
from anyllm_cli.translate.streams.sse import SSEDecoder, SSEEvent

OutEvent = dict[str, Any] | None


class StreamTranslator(Protocol):
    """The one shape of a stream translator: events in, events out, and the in-stream error."""

    @property
    def degradations(self) -> list[Degradation]: ...

    def feed(self, event: dict[str, Any], /) -> Sequence[OutEvent]: ...

    def finish(self) -> Sequence[OutEvent]: ...

    def fail(self, kind: ErrorKind, message: str, /) -> Sequence[OutEvent]:
        """The events that end the stream with an error after its first byte."""
        ...


class SSEPump:
    """`encode` takes what the translator emits: Anthropic dicts, or OpenAI dicts and None."""

    def __init__(self, translator: StreamTranslator, encode: Callable[[Any], bytes]) -> None:
        self.translator = translator
        self._encode = encode
        self._decoder = SSEDecoder()
        self._count = 0
        self.done = False

    def feed(self, chunk: bytes | str) -> bytes:
        return self._run(self._decoder.decode(chunk))

    def finish(self) -> bytes:
        out = self._run(self._decoder.flush())
        if not self.done:
            self.done = True
            out += b"".join(self._encode(e) for e in self.translator.finish())
        return out

    def _run(self, events: list[SSEEvent]) -> bytes:
        out: list[OutEvent] = []
        for event in events:
            if self.done:
                break
            self._count += 1
            if event.data.strip() == "[DONE]":
                self.done = True
                out += self.translator.finish()
                continue
            try:
                out += self.translator.feed(decode_event(event, self._count))
            except InvalidInput as exc:
                # What the good events before it produced is not lost: the caller writes it first.
                exc.partial = b"".join(self._encode(e) for e in out)
                raise
        return b"".join(self._encode(e) for e in out)


def decode_event(event: SSEEvent, position: int) -> dict[str, Any]:
    try:
        obj = codec.loads(event.data)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"not JSON ({exc.msg})", f"event {position}") from None
    if not isinstance(obj, dict):
        raise InvalidInput("expected a JSON object", f"event {position}")
    if event.event and "type" not in obj and event.event not in ("message", "completion"):
        obj["type"] = event.event
    return obj
