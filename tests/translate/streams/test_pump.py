from __future__ import annotations

import pytest

from anyllm_cli.errors import InvalidInput
from anyllm_cli.translate.streams.messages_via_chat import MessagesViaChatStream
from anyllm_cli.translate.streams.pump import SSEPump
from anyllm_cli.translate.streams.sse import encode_anthropic

GOOD = b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
STOP = b'data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'


def pump() -> SSEPump:
    return SSEPump(MessagesViaChatStream(requested_model="m"), encode_anthropic)


def test_done_runs_finish_once() -> None:
    p = pump()
    out = p.feed(GOOD + STOP + b"data: [DONE]\n\n") + p.finish()
    assert out.count(b"event: message_stop") == 1


def test_done_without_a_finish_reason_is_an_error_not_a_stop() -> None:
    p = pump()
    out = p.feed(GOOD + b"data: [DONE]\n\n") + p.finish()
    assert b"event: message_stop" not in out
    assert out.endswith(b'"message":"upstream stream ended before it finished"}}\n\n')


def test_bad_event_keeps_what_came_before() -> None:
    with pytest.raises(InvalidInput) as err:
        pump().feed(GOOD + b"data: {oops\n\n")
    assert err.value.path == "event 2"
    assert b"event: message_start" in err.value.partial
    assert b'"text":"Hi"' in err.value.partial


def test_non_object_event_is_invalid() -> None:
    with pytest.raises(InvalidInput, match="expected a JSON object"):
        pump().feed(b"data: [1, 2]\n\n")


def test_end_after_a_finish_reason_without_done_still_finishes() -> None:
    p = pump()
    out = p.feed(GOOD + STOP) + p.finish()
    assert out.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')


def test_end_without_a_finish_reason_is_an_error_event() -> None:
    p = pump()
    out = p.feed(GOOD) + p.finish()
    assert b"event: message_stop" not in out
    assert out.endswith(b'"message":"upstream stream ended before it finished"}}\n\n')
