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
        assert len(keys) == 4  # r, t, p and the running token sum
        for key in keys:
            assert 0 < await a._client.ttl(key) <= 660
    finally:
        await a.close()
        await b.close()


async def test_the_token_sum_is_kept_not_recounted_and_rebuilt_if_lost(redis_url: str) -> None:
    prefix = f"anyllm-test:{uuid.uuid4().hex}:"
    limiter = await RedisLimiter.open(redis_url, prefix)
    try:
        limits = Limits(tpm=1_000_000)
        for i in range(200):  # 200 calls of 5 tokens at 1000.0 .. 1019.9
            await limiter.release("k", f"t{i}", 5, 1000.0 + i / 10)
        total = f"{prefix}{{k}}:s"
        assert (await limiter.acquire("k", limits, 1030.0)).tokens_remaining == 1_000_000 - 1000
        assert int(await limiter._client.get(total)) == 1000
        await limiter._client.set(total, 7)  # the script trusts the sum: it does not recount
        assert (await limiter.acquire("k", limits, 1030.0)).tokens_remaining == 1_000_000 - 7
        await limiter._client.delete(total)  # lost: rebuilt from the calls in the window
        assert (await limiter.acquire("k", limits, 1030.0)).tokens_remaining == 1_000_000 - 1000
        # at 1070.0 the calls up to 1010.0 (101 of them) have left the window
        assert (await limiter.acquire("k", limits, 1070.0)).tokens_remaining == 1_000_000 - 495
        assert int(await limiter._client.get(total)) == 495
    finally:
        await limiter.close()


async def test_an_unreachable_redis_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot connect to Redis"):
        await RedisLimiter.open("redis://127.0.0.1:9/0")
