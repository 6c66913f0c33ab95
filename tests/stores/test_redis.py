"""The Redis limiter: instances share windows; every key it writes expires; errors are StoreErrors."""

from __future__ import annotations

import uuid

import pytest

from anyllm_cli.errors import StoreError
from anyllm_cli.stores import Limits
from anyllm_cli.stores.redis import RedisLimiter

pytestmark = pytest.mark.anyio


async def test_two_limiters_share_one_window_and_their_keys_expire(redis_url: str) -> None:
    prefix = f"anyllm-test:{uuid.uuid4().hex}:"
    a = await RedisLimiter.open(redis_url, prefix)
    b = await RedisLimiter.open(redis_url, prefix)
    try:
        limits = Limits(rpm=2, tpm=100, max_parallel=5)
        first = await a.acquire("k", limits, 1000.0)
        await b.release("k", first.ticket, 40, 1000.5)
        second = await b.acquire("k", limits, 1001.0)
        assert second.allowed and second.tokens_remaining == 60
        third = await a.acquire("k", limits, 1002.0)
        assert not third.allowed and third.reason == "requests"
        keys = await a._client.keys(prefix + "*")
        assert len(keys) == 3
        for key in keys:
            assert 0 < await a._client.ttl(key) <= 660
    finally:
        await a.close()
        await b.close()


async def test_an_unreachable_redis_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot connect to Redis"):
        await RedisLimiter.open("redis://127.0.0.1:9/0")
