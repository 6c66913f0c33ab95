"""Reaching the backend: time and headers recorded, same-API relays reading usage on the way."""

from __future__ import annotations

import pytest

from anyllm_cli.errors import ErrorKind
from anyllm_cli.pipeline.replies import Call
from anyllm_cli.pipeline.upstream import Relay, gemini_error_chunk, send
from tests.conftest import FakeBackend, backend_settings, chat_response

pytestmark = pytest.mark.anyio


async def test_send_records_the_body_headers_and_the_wait() -> None:
    ticks = iter([1.0, 1.25])
    backend = FakeBackend(backend_settings(), reply=chat_response(), reply_headers={"x-a": "1"})
    call = Call()
    body = {"model": "m"}
    reply = await send(backend, "/chat/completions", body, {}, call=call, clock=lambda: next(ticks))
    assert reply.body["object"] == "chat.completion"
    assert (call.upstream_body, dict(call.upstream_headers), call.upstream_s) == (
        body,
        {"x-a": "1"},
        0.25,
    )


def test_a_relay_hides_the_usage_it_asked_for_but_meters_it() -> None:
    call = Call()
    relay = Relay(call, anthropic=False, hide_usage=True)
    usage_only = {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
    assert relay.feed(usage_only) == []
    assert (call.tokens_in, call.tokens_out) == (3, 1)
    assert relay.finish() == [None]
    assert relay.fail(ErrorKind.TIMEOUT, "quiet")[0]["error"]["type"] == "timeout_error"


def test_relays_fail_in_their_clients_shape() -> None:
    anthropic = Relay(Call(), anthropic=True)
    assert anthropic.finish() == []
    assert anthropic.fail(ErrorKind.API_ERROR, "x")[0]["type"] == "error"
    assert gemini_error_chunk(ErrorKind.RATE_LIMIT, "slow")["error"]["status"] == (
        "RESOURCE_EXHAUSTED"
    )
