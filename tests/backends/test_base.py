"""The backend seam's stream context works with and without a first await."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import pytest

from anyllm_cli.backends.base import StreamContext, UpstreamStream

pytestmark = pytest.mark.anyio


class _Stream:
    status = 200
    headers: Mapping[str, str] = {}

    async def _chunks(self) -> AsyncIterator[bytes]:
        yield b"x"

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()


@asynccontextmanager
async def _open(log: list[str]) -> AsyncIterator[UpstreamStream]:
    log.append("open")
    try:
        yield _Stream()
    finally:
        log.append("closed")


async def test_both_spellings_open_and_close_once() -> None:
    log: list[str] = []
    async with StreamContext(_open(log)) as stream:
        assert [c async for c in stream] == [b"x"]
    async with await StreamContext(_open(log)) as stream:
        assert stream.status == 200
    assert log == ["open", "closed", "open", "closed"]
