"""Stores under test: SQLite always; PostgreSQL and Redis when ANYLLM_TEST_POSTGRES_URL /
ANYLLM_TEST_REDIS_URL are set (skipped with the reason otherwise). Each PostgreSQL test gets its own
schema and each Redis test its own key prefix, so runs never see each other's data."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from anyllm_cli.stores import Limiter, Store, open_store

PG_URL = os.environ.get("ANYLLM_TEST_POSTGRES_URL", "")
REDIS_URL = os.environ.get("ANYLLM_TEST_REDIS_URL", "")
NO_PG = "ANYLLM_TEST_POSTGRES_URL is not set (CI's .ci/run sets it)"
NO_REDIS = "ANYLLM_TEST_REDIS_URL is not set (CI's .ci/run sets it)"


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema; yields a store URL whose search_path is that schema."""
    if not PG_URL:
        pytest.skip(NO_PG)
    import psycopg

    name = f"anyllm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


@pytest.fixture
def redis_url() -> str:
    if not REDIS_URL:
        pytest.skip(NO_REDIS)
    return REDIS_URL


def store_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite://{tmp_path / 'anyllm.db'}"
    return str(request.getfixturevalue("pg_schema"))


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(store_url(request.param, tmp_path, request))
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(params=["sqlite", "postgres", "redis"])
async def limiter(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Limiter]:
    if request.param == "redis":
        from anyllm_cli.stores.redis import RedisLimiter

        opened = await RedisLimiter.open(
            request.getfixturevalue("redis_url"), prefix=f"anyllm-test:{uuid.uuid4().hex}:"
        )
        try:
            yield opened
        finally:
            await opened.close()
        return
    s = await open_store(store_url(request.param, tmp_path, request))
    try:
        yield s.limiter
    finally:
        await s.close()
