"""The AWS binary event stream (`application/vnd.amazon.eventstream`), decoded incrementally.

Bedrock's streaming operations answer with a sequence of messages, each framed as

    total_length u32 | headers_length u32 | prelude_crc u32 | headers | payload | message_crc u32

big-endian, CRC-32 (zlib's) over the first 8 bytes and over everything before the last 4. A header
is `name_len u8 | name | type u8 | value`; the value encoding depends on the type (0/1 booleans,
2-5 ints, 6 bytes and 7 strings with a u16 length, 8 a timestamp in ms, 9 a UUID).

`EventStreamDecoder.feed(chunk)` returns the messages completed by the chunk and keeps the rest;
HTTP chunk boundaries need not match message boundaries. A CRC mismatch or an impossible length is
an `UpstreamError` (a corrupt stream cannot be resynchronised). `encode_message` writes the same
framing (string, bool, int and bytes headers), for tests and mock upstreams.

What it gives up: no checks of botocore's size limits beyond a sanity bound, no duplicate-header check.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

from anyllm_cli.errors import ErrorKind, UpstreamError

_PRELUDE = struct.Struct(">III")
_MAX_MESSAGE = 32 * 1024 * 1024
HeaderValue = str | bytes | bool | int | uuid.UUID
# type -> fixed-size struct for the integer kinds
_INTS = {
    2: struct.Struct(">b"),
    3: struct.Struct(">h"),
    4: struct.Struct(">i"),
    5: struct.Struct(">q"),
}
_INTS[8] = _INTS[5]  # timestamp: int64 milliseconds since the epoch


@dataclass(frozen=True, slots=True)
class EventMessage:
    headers: dict[str, HeaderValue]
    payload: bytes

    def header(self, name: str) -> str:
        """A string header's value, or "" when absent or of another type."""
        value = self.headers.get(name)
        return value if isinstance(value, str) else ""


def _corrupt(problem: str) -> UpstreamError:
    return UpstreamError(ErrorKind.API_ERROR, f"corrupt AWS event stream: {problem}", status=502)


class EventStreamDecoder:
    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[EventMessage]:
        self._buf += data
        out: list[EventMessage] = []
        while len(self._buf) >= 12:
            total, headers_len, prelude_crc = _PRELUDE.unpack_from(self._buf)
            if zlib.crc32(self._buf[:8]) != prelude_crc:
                raise _corrupt("prelude CRC mismatch")
            if total < 16 or total > _MAX_MESSAGE or headers_len > total - 16:
                raise _corrupt(f"impossible lengths (total {total}, headers {headers_len})")
            if len(self._buf) < total:
                break
            frame = bytes(self._buf[:total])
            del self._buf[:total]
            (message_crc,) = struct.unpack_from(">I", frame, total - 4)
            if zlib.crc32(frame[: total - 4]) != message_crc:
                raise _corrupt("message CRC mismatch")
            headers = _headers(frame[12 : 12 + headers_len])
            out.append(EventMessage(headers, frame[12 + headers_len : total - 4]))
        return out

    @property
    def pending(self) -> int:
        """Bytes held back, waiting for the rest of a message (non-zero at the end = truncated)."""
        return len(self._buf)


def _headers(raw: bytes) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    pos = 0
    try:
        while pos < len(raw):
            name_len = raw[pos]
            name = raw[pos + 1 : pos + 1 + name_len].decode("utf-8")
            pos += 1 + name_len
            kind = raw[pos]
            pos += 1
            value: HeaderValue
            if kind in (0, 1):
                value = kind == 0
            elif kind in _INTS:
                (value,) = _INTS[kind].unpack_from(raw, pos)
                pos += _INTS[kind].size
            elif kind in (6, 7):
                (length,) = struct.unpack_from(">H", raw, pos)
                blob = raw[pos + 2 : pos + 2 + length]
                if len(blob) != length:
                    raise _corrupt("header value runs past the headers")
                value = blob.decode("utf-8") if kind == 7 else blob
                pos += 2 + length
            elif kind == 9:
                if pos + 16 > len(raw):
                    raise _corrupt("header value runs past the headers")
                value = uuid.UUID(bytes=raw[pos : pos + 16])
                pos += 16
            else:
                raise _corrupt(f"unknown header type {kind}")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise _corrupt(f"bad headers ({exc})") from None
    return headers


def encode_message(headers: dict[str, Any], payload: bytes) -> bytes:
    """One framed message. Values: str (7), bytes (6), bool (0/1), int (4, or 5 when large)."""
    raw = bytearray()
    for name, value in headers.items():
        encoded = name.encode("utf-8")
        raw += bytes([len(encoded)]) + encoded
        if isinstance(value, bool):
            raw.append(0 if value else 1)
        elif isinstance(value, int):
            kind = 4 if -(2**31) <= value < 2**31 else 5
            raw += bytes([kind]) + _INTS[kind].pack(value)
        elif isinstance(value, bytes):
            raw += b"\x06" + struct.pack(">H", len(value)) + value
        else:
            text = str(value).encode("utf-8")
            raw += b"\x07" + struct.pack(">H", len(text)) + text
    total = 16 + len(raw) + len(payload)
    prelude = struct.pack(">II", total, len(raw))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + bytes(raw) + payload
    return body + struct.pack(">I", zlib.crc32(body))
