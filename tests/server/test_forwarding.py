"""The passthrough driver: status and safe headers as the upstream sent them, errors before the
status in the caller's format, a failure after it ends the body."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest

from anyllm_cli.backends.base import UpstreamStream
from anyllm_cli.errors import ErrorKind, UpstreamError
from anyllm_cli.pipeline import ClientRequest, ForwardReply
from anyllm_cli.pipeline.completion import Completion
from anyllm_cli.server.context import RequestContext
from anyllm_cli.server.formats import ClientFormat
from anyllm_cli.server.forwarding import ForwardDriver
from tests.conftest import Recorder

pytestmark = pytest.mark.anyio


class _Upstream:
    status = 201
    headers: Mapping[str, str] = {
        "content-type": "application/json",
        "set-cookie": "secret",
        "openai-version": "2020-10-01",
    }

    def __init__(self, fail_after: bool = False) -> None:
        self.fail_after = fail_after

    async def _chunks(self) -> AsyncIterator[bytes]:
        yield b'{"ok":'
        if self.fail_after:
            raise UpstreamError(ErrorKind.API_ERROR, "dropped")
        yield b"true}"

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()


def _driver(opener: Any, recorder: Recorder) -> ForwardDriver:
    done = Completion(ClientRequest("forward", b""), observers=[recorder])
    ctx = RequestContext(request_id="r", fmt=ClientFormat.OPENAI, start=0.0)
    return ForwardDriver(ForwardReply(opener, done), ctx)


async def _run(driver: ForwardDriver) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    await driver(receive, send)
    return sent


async def test_status_safe_headers_and_bytes_pass() -> None:
    @asynccontextmanager
    async def opener() -> AsyncIterator[UpstreamStream]:
        yield _Upstream()

    recorder = Recorder()
    sent = await _run(_driver(opener, recorder))
    assert sent[0]["status"] == 201
    assert dict(sent[0]["headers"]) == {
        b"content-type": b"application/json",
        b"openai-version": b"2020-10-01",
    }
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b'{"ok":true}'
    assert recorder.one().status == 201


async def test_an_error_before_the_status_is_rendered_and_one_after_ends_the_body() -> None:
    @asynccontextmanager
    async def refused() -> AsyncIterator[UpstreamStream]:
        raise UpstreamError(ErrorKind.API_ERROR, "cannot reach", status=502)
        yield _Upstream()  # pragma: no cover

    sent = await _run(_driver(refused, Recorder()))
    assert sent[0]["status"] == 500
    assert b"cannot reach" in sent[1]["body"]

    @asynccontextmanager
    async def dropping() -> AsyncIterator[UpstreamStream]:
        yield _Upstream(fail_after=True)

    recorder = Recorder()
    sent = await _run(_driver(dropping, recorder))
    assert sent[0]["status"] == 201
    assert sent[-1] == {"type": "http.response.body", "body": b""}
    assert recorder.one().error is ErrorKind.API_ERROR
