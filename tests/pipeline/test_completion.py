"""The completion point: one Outcome per call, settle once, observers isolated, bodies on demand."""

from __future__ import annotations

import json
from typing import Any

import pytest

from anyllm_cli.errors import ErrorKind, InvalidInput, UpstreamError
from anyllm_cli.pipeline import ClientRequest, JSONReply, Outcome, Pipeline, StreamReply
from anyllm_cli.pipeline.completion import Completion, status_for
from anyllm_cli.pipeline.seams import Candidate, Usage
from anyllm_cli.translate.streams.accumulate import accumulate
from tests.conftest import FakeBackend, Recorder, backend_settings, chat_chunk, chat_response, sse

pytestmark = pytest.mark.anyio

MESSAGE = {"model": "claude-x", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]}


class _Broken:
    wants_bodies = False

    async def on_complete(self, outcome: Outcome) -> None:
        raise RuntimeError("observer bug")


class _Pricer:
    def price(self, backend: str, model: str, usage: Usage, *, batch: bool = False) -> float | None:
        return usage.input_tokens * (0.25 if batch else 0.5)


def test_status_for_each_api() -> None:
    assert status_for("messages", ErrorKind.OVERLOADED) == 529
    assert status_for("chat", ErrorKind.OVERLOADED) == 503
    assert status_for("gemini", ErrorKind.RATE_LIMIT) == 429


async def test_finish_counts_once_and_a_broken_observer_hides_nothing() -> None:
    recorder = Recorder()
    done = Completion(ClientRequest("chat", b""), guard=recorder, observers=[_Broken(), recorder])
    await done.admit(Candidate("mock", "m", "m"))
    first = await done.finish(status=200)
    again = await done.finish(status=500, error=ErrorKind.API_ERROR)
    assert first is again
    assert recorder.one().status == 200


async def test_fail_renders_the_status_of_the_callers_api() -> None:
    recorder = Recorder()
    done = Completion(ClientRequest("messages", b""), observers=[recorder])
    await done.fail(InvalidInput("Field required", "max_tokens"))
    outcome = recorder.one()
    assert (outcome.status, outcome.error) == (400, ErrorKind.INVALID_REQUEST)
    assert outcome.error_message == "max_tokens: Field required"


async def test_a_failed_forward_has_the_status_its_error_renders_with() -> None:
    recorder = Recorder()
    done = Completion(ClientRequest("forward", b""), observers=[recorder])
    await done.fail(UpstreamError(ErrorKind.RATE_LIMIT, "slow down", status=429))
    assert recorder.one().status == 429


def _pipeline(backend: FakeBackend, recorder: Recorder) -> Pipeline:
    return Pipeline(
        {"mock": backend}, guard=recorder, observers=[recorder], pricer=_Pricer(), count=lambda r: 1
    )


async def test_bodies_are_kept_when_an_observer_asks() -> None:
    recorder = Recorder(wants_bodies=True)
    backend = FakeBackend(backend_settings(), reply=chat_response("hey"))
    reply = await _pipeline(backend, recorder).run(
        ClientRequest("messages", json.dumps(MESSAGE).encode())
    )
    assert isinstance(reply, JSONReply)
    outcome = recorder.one()
    assert outcome.response == reply.body
    assert outcome.upstream_body is not None
    assert json.loads(outcome.upstream_body)["messages"][-1]["content"] == "hi"
    assert outcome.cost_usd == 5.0  # 10 input tokens at 0.5


async def test_a_stream_keeps_the_events_the_client_got() -> None:
    recorder = Recorder(wants_bodies=True)
    chunks: list[Any] = [
        sse(
            chat_chunk({"role": "assistant", "content": "he"}),
            chat_chunk({"content": "y"}),
            chat_chunk({}, "stop"),
            "[DONE]",
        )
    ]
    backend = FakeBackend(backend_settings(), chunks=chunks)
    body = json.dumps({**MESSAGE, "stream": True}).encode()
    reply = await _pipeline(backend, recorder).run(ClientRequest("messages", body))
    assert isinstance(reply, StreamReply)
    assert recorder.outcomes == []  # not before the stream is left
    sent = []
    async with reply:
        async for chunk in reply.chunks():
            sent.append(chunk)
    outcome = recorder.one()
    assert outcome.response is None and outcome.events
    for data in outcome.events:  # each as the client got it
        assert b"data: " + data + b"\n\n" in b"".join(sent)
    events = [json.loads(data) for data in outcome.events]
    kinds = [e["type"] for e in events if e["type"] != "ping"]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert accumulate(events)["content"] == [{"type": "text", "text": "hey"}]
    assert outcome.stream


async def test_an_upstream_error_completes_with_its_status() -> None:
    recorder = Recorder()
    body = {"error": {"message": "no", "type": "invalid_request_error"}}
    backend = FakeBackend(backend_settings(), reply=body, reply_status=400)
    with pytest.raises(UpstreamError):
        await _pipeline(backend, recorder).run(
            ClientRequest("messages", json.dumps(MESSAGE).encode())
        )
    outcome = recorder.one()
    assert (outcome.status, outcome.error, outcome.error_message) == (
        400,
        ErrorKind.INVALID_REQUEST,
        "no",
    )


async def test_a_call_a_provider_ran_is_priced_at_batch_rates_and_booked_once() -> None:
    recorder = Recorder()
    pipeline = _pipeline(FakeBackend(backend_settings()), recorder)
    reply = {"type": "message", "usage": {"input_tokens": 8, "output_tokens": 3}}
    request = ClientRequest("messages", json.dumps(MESSAGE).encode(), request_id="b:1")
    outcome = await pipeline.complete_elsewhere(request, Candidate("mock", "m", "up"), reply)
    assert outcome is recorder.one() and recorder.elsewhere == [outcome]
    assert recorder.admitted == [] and recorder.settled == []  # never admitted: no rpm/tpm
    assert (outcome.status, outcome.usage.input_tokens, outcome.usage.output_tokens) == (200, 8, 3)
    assert outcome.cost_usd == 2.0  # 8 input tokens at the batch rate, 0.25
    assert outcome.candidate == Candidate("mock", "m", "up")
