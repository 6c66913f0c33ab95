"""PostgreSQL: connection errors hide the password; two stores on one database share everything."""

from __future__ import annotations

import pytest

from anyllm_cli.errors import StoreError
from anyllm_cli.stores import KeyRecord, Limits, open_store

pytestmark = pytest.mark.anyio


async def test_an_unreachable_server_is_one_error_without_the_password() -> None:
    with pytest.raises(StoreError) as info:
        await open_store("postgresql://me:hunter2@127.0.0.1:9/db?connect_timeout=1")
    assert "cannot connect" in info.value.message and "hunter2" not in info.value.message


async def test_two_instances_share_keys_and_limits(pg_schema: str) -> None:
    a, b = await open_store(pg_schema), await open_store(pg_schema)
    try:
        await a.create_key(KeyRecord("k1", "n", "h1", "p", created=1.0))
        found = await b.find_key("h1")
        assert found is not None and found.id == "k1"
        assert await b.keys_version() == await a.keys_version() == 1
        limits = Limits(rpm=1)
        assert (await a.limiter.acquire("k1", limits, 100.0)).allowed
        assert not (await b.limiter.acquire("k1", limits, 100.0)).allowed
    finally:
        await a.close()
        await b.close()
