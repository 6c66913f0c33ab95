"""Async tests here run on asyncio (the aiohttp transport needs it)."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
