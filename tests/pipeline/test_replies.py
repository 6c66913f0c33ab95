"""Replies: usage metering from every API's shape, and a passthrough that completes once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest

from anyllm_cli.backends.base import UpstreamStream
from anyllm_cli.pipeline.completion import Completion
from anyllm_cli.pipeline.replies import Call, ForwardReply, meter
from anyllm_cli.pipeline.seams import ClientRequest, Usage
from tests.conftest import Recorder

pytestmark = pytest.mark.anyio


def _metered(*events: dict[str, Any]) -> Usage:
    call = Call()
    for event in events:
        meter(event, call)
    return call.usage()


def test_anthropic_usage_counts_cache_in_the_prompt() -> None:
    start = {
        "type": "message_start",
        "message": {
            "usage": {
                "input_tokens": 3,
                "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 20,
                "output_tokens": 1,
            }
        },
    }
    delta = {"type": "message_delta", "usage": {"output_tokens": 9}}
    assert _metered(start, delta) == Usage(123, 9, 100, 20, 0)


def test_openai_usage_with_details() -> None:
    usage = {
        "prompt_tokens": 50,
        "completion_tokens": 30,
        "prompt_tokens_details": {"cached_tokens": 40},
        "completion_tokens_details": {"reasoning_tokens": 12},
    }
    assert _metered({"usage": usage}) == Usage(50, 30, 40, 0, 12)


def test_responses_and_gemini_usage() -> None:
    responses = {
        "input_tokens": 8,
        "output_tokens": 4,
        "input_tokens_details": {"cached_tokens": 2},
        "output_tokens_details": {"reasoning_tokens": 1},
    }
    assert _metered({"usage": responses}) == Usage(8, 4, 2, 0, 1)
    gemini = {"promptTokenCount": 7, "candidatesTokenCount": 2, "thoughtsTokenCount": 5}
    assert _metered({"usageMetadata": {**gemini, "cachedContentTokenCount": 3}}) == Usage(
        7, 7, 3, 0, 5
    )


class _Upstream:
    status = 200
    headers: Mapping[str, str] = {"content-type": "application/json"}

    async def _chunks(self) -> AsyncIterator[bytes]:
        yield b'{"data": [], "usage": {"prompt_tokens": 6,'
        yield b' "total_tokens": 6}}'

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()


@asynccontextmanager
async def _open() -> AsyncIterator[UpstreamStream]:
    yield _Upstream()


async def test_a_forward_reply_meters_its_json_and_completes_once() -> None:
    recorder = Recorder(wants_bodies=True)
    done = Completion(ClientRequest("forward", b""), observers=[recorder], keep_bodies=True)
    reply = ForwardReply(_open, done)
    async with reply:
        body = b"".join([chunk async for chunk in reply.chunks()])
    assert body.startswith(b'{"data"')
    outcome = recorder.one()
    assert (outcome.status, outcome.usage.input_tokens) == (200, 6)
    assert outcome.response == {"data": [], "usage": {"prompt_tokens": 6, "total_tokens": 6}}
