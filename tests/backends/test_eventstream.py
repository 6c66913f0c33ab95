"""The AWS event-stream decoder: the spec's test vector, every header type, re-chunking, CRCs."""

from __future__ import annotations

import uuid
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anyllm_cli.backends.eventstream import EventMessage, EventStreamDecoder, encode_message
from anyllm_cli.errors import UpstreamError

# bedrock.md §7.6, verified there against botocore's EventStreamBuffer
VECTOR = bytes.fromhex(
    "0000007b0000004b0a2e96af0b3a6576656e742d747970650700056368756e6b0d3a636f6e74656e742d747970"
    "650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b2262"
    "79746573223a2265794a306558426c496a6f6963476c755a794a39227da01f56c4"
)
VECTOR_HEADERS = {
    ":event-type": "chunk",
    ":content-type": "application/json",
    ":message-type": "event",
}
VECTOR_PAYLOAD = b'{"bytes":"eyJ0eXBlIjoicGluZyJ9"}'


def test_the_spec_vector_decodes() -> None:
    (message,) = EventStreamDecoder().feed(VECTOR)
    assert message == EventMessage(VECTOR_HEADERS, VECTOR_PAYLOAD)
    assert message.header(":event-type") == "chunk"
    assert message.header("missing") == ""


def test_encode_writes_the_spec_vector() -> None:
    assert encode_message(VECTOR_HEADERS, VECTOR_PAYLOAD) == VECTOR


def test_botocore_reads_what_we_write() -> None:
    from botocore.eventstream import EventStreamBuffer

    buffer = EventStreamBuffer()
    buffer.add_data(encode_message({"a": "x", "n": 7, "flag": True, "raw": b"\x00\x01"}, b"{}"))
    (message,) = list(buffer)
    assert message.headers == {"a": "x", "n": 7, "flag": True, "raw": b"\x00\x01"}
    assert message.payload == b"{}"


def _frame_with_header(kind: int, value: bytes) -> bytes:
    headers = bytes([1]) + b"h" + bytes([kind]) + value
    total = 16 + len(headers)
    prelude = total.to_bytes(4, "big") + len(headers).to_bytes(4, "big")
    body = prelude + zlib.crc32(prelude).to_bytes(4, "big") + headers
    return body + zlib.crc32(body).to_bytes(4, "big")


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        (0, b"", True),
        (1, b"", False),
        (2, b"\xff", -1),
        (3, b"\x01\x00", 256),
        (4, b"\x00\x00\x01\x00", 256),
        (5, (2**40).to_bytes(8, "big"), 2**40),
        (6, b"\x00\x02ab", b"ab"),
        (7, b"\x00\x03\xc3\xa9a", "éa"),
        (8, (1700000000000).to_bytes(8, "big"), 1700000000000),
        (9, uuid.UUID(int=5).bytes, uuid.UUID(int=5)),
    ],
)
def test_every_header_type(kind: int, value: bytes, expected: object) -> None:
    (message,) = EventStreamDecoder().feed(_frame_with_header(kind, value))
    assert message.headers == {"h": expected}
    assert message.payload == b""


def test_unknown_header_type_is_corrupt() -> None:
    with pytest.raises(UpstreamError, match="unknown header type"):
        EventStreamDecoder().feed(_frame_with_header(12, b""))


def test_a_flipped_payload_bit_fails_the_message_crc() -> None:
    data = bytearray(VECTOR)
    data[-10] ^= 0x01
    with pytest.raises(UpstreamError, match="message CRC"):
        EventStreamDecoder().feed(bytes(data))


def test_a_flipped_length_bit_fails_the_prelude_crc() -> None:
    data = bytearray(VECTOR)
    data[3] ^= 0x01
    with pytest.raises(UpstreamError, match="prelude CRC") as caught:
        EventStreamDecoder().feed(bytes(data))
    assert caught.value.status == 502


def test_partial_input_is_held_until_complete() -> None:
    decoder = EventStreamDecoder()
    assert decoder.feed(VECTOR[:50]) == []
    assert decoder.pending == 50
    assert len(decoder.feed(VECTOR[50:] + VECTOR[:5])) == 1
    assert decoder.pending == 5


MESSAGES = st.lists(
    st.tuples(
        st.dictionaries(
            st.text(min_size=1, max_size=10),
            st.one_of(
                st.text(max_size=20),
                st.binary(max_size=20),
                st.booleans(),
                st.integers(-(2**63), 2**63 - 1),
            ),
            max_size=4,
        ),
        st.binary(max_size=200),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(messages=MESSAGES, data=st.data())
def test_rechunking_never_changes_the_messages(
    messages: list[tuple[dict[str, object], bytes]], data: st.DataObject
) -> None:
    stream = b"".join(encode_message(h, p) for h, p in messages)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(stream)), max_size=12)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    decoder = EventStreamDecoder()
    out = [m for piece in pieces for m in decoder.feed(piece)]
    assert [(m.headers, m.payload) for m in out] == messages
    assert decoder.pending == 0
