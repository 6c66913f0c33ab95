"""open_store picks the engine by URL; records judge their own status."""

from __future__ import annotations

from pathlib import Path

import pytest

from anyllm_cli.errors import StoreError
from anyllm_cli.stores import KeyRecord, Limits, open_store
from anyllm_cli.stores._sql import SQLLimiter

pytestmark = pytest.mark.anyio


def test_a_key_is_active_until_revoked_or_expired() -> None:
    key = KeyRecord("id", "n", "h", "p", created=0)
    assert key.status(1e9) == "active"
    assert KeyRecord("id", "n", "h", "p", 0, expires=10).status(10) == "expired"
    assert KeyRecord("id", "n", "h", "p", 0, expires=10, revoked=5).status(20) == "revoked"


def test_limits_know_when_there_are_none() -> None:
    assert not Limits().any() and Limits(max_parallel=1).any()


@pytest.mark.parametrize("url", ["mysql://x/y", "redis://x", "/tmp/a.db"])
async def test_unknown_engines_are_refused(url: str) -> None:
    with pytest.raises(StoreError, match="expected sqlite:///PATH or postgresql://"):
        await open_store(url)


async def test_limits_live_in_the_store_unless_redis_is_given(
    tmp_path: Path, redis_url: str
) -> None:
    from anyllm_cli.stores.redis import RedisLimiter

    url = f"sqlite://{tmp_path / 'a.db'}"
    plain = await open_store(url)
    assert isinstance(plain.limiter, SQLLimiter)
    await plain.close()
    shared = await open_store(url, redis_url)
    assert isinstance(shared.limiter, RedisLimiter)
    await shared.close()


async def test_an_unreachable_redis_closes_the_store_and_says_so(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"redis://:\*\*\*@127\.0\.0\.1:9/0: cannot connect"):
        await open_store(f"sqlite://{tmp_path / 'a.db'}", "redis://:secret@127.0.0.1:9/0")
