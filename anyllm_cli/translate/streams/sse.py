"""Server-sent events: an incremental decoder and the encoders for each API's framing.

`SSEDecoder.decode(chunk)` takes bytes (or text) cut at any point, returns the events completed so
far, and keeps the rest; `flush()` returns what the end of the stream completes (a last event with no
blank line after it still counts). Lines end in LF, CRLF or CR, also when a CRLF is cut between two
chunks; `data:` with or without the space; comments (`: keepalive`) are skipped; multi-line data is
joined with LF, as the SSE spec says. Only those three line ends split lines: JSON text may hold
U+2028, which `str.splitlines` would wrongly cut.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Any

from anyllm_cli.models import codec


@dataclass(frozen=True, slots=True)
class SSEEvent:
    event: str | None
    data: str


class SSEDecoder:
    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf = ""
        self._pending_cr = False
        self._event: str | None = None
        self._data: list[str] = []

    def decode(self, chunk: bytes | str) -> list[SSEEvent]:
        text = chunk if isinstance(chunk, str) else self._utf8.decode(chunk)
        if not text:
            return []
        if self._pending_cr and text[0] == "\n":
            text = text[1:]
        self._pending_cr = False
        if "\r" in text:
            self._pending_cr = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" not in text:
            self._buf += text
            return []
        lines = (self._buf + text).split("\n")
        self._buf = lines.pop()
        out: list[SSEEvent] = []
        for line in lines:
            self._line(line, out)
        return out

    def flush(self) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        tail = self._buf + self._utf8.decode(b"", final=True)
        self._buf = ""
        if tail:
            self._line(tail.rstrip("\r"), out)
        self._line("", out)
        return out

    def _line(self, line: str, out: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                out.append(SSEEvent(self._event, "\n".join(self._data)))
            self._event = None
            self._data = []
            return
        if line[0] == ":":
            return
        name, _, value = line.partition(":")
        if value and value[0] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value


def encode(data: str, event: str | None = None) -> bytes:
    """One SSE frame. Data with line breaks becomes several `data:` lines."""
    head = f"event: {event}\n" if event else ""
    if "\n" in data or "\r" in data:
        body = "".join(f"data: {line}\n" for line in data.replace("\r\n", "\n").split("\n"))
    else:
        body = f"data: {data}\n"
    return f"{head}{body}\n".encode()


def dumps(obj: Any) -> str:
    """Compact JSON as both APIs send it (non-ASCII kept as is)."""
    return codec.dumps(obj).decode()


def encode_anthropic(event: dict[str, Any]) -> bytes:
    """An Anthropic stream event: `event: <type>` then its JSON (one line: JSON has no raw line
    break, so no frame splitting is needed)."""
    return anthropic_frame(event, codec.dumps(event))


def anthropic_frame(event: dict[str, Any], data: bytes) -> bytes:
    """`encode_anthropic` for an event already serialised as `data` (its compact JSON)."""
    kind = event["type"]
    name = kind.encode() if isinstance(kind, str) else str(kind).encode()
    if b"\n" in name or b"\r" in name:
        return encode(data.decode(), str(kind))
    return b"event: " + name + b"\ndata: " + data + b"\n\n"


_DONE = b"data: [DONE]\n\n"


def encode_openai(chunk: dict[str, Any] | None) -> bytes:
    """An OpenAI chunk, or the `[DONE]` sentinel for None."""
    return _DONE if chunk is None else openai_frame(chunk, codec.dumps(chunk))


def openai_frame(chunk: dict[str, Any], data: bytes) -> bytes:
    """`encode_openai` for a chunk already serialised as `data` (its compact JSON)."""
    return b"data: " + data + b"\n\n"


PING = encode_anthropic({"type": "ping"})
KEEPALIVE_COMMENT = b": keepalive\n\n"
