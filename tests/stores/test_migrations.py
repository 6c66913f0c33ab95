"""Migrations: applied once, in order, on both engines; a newer schema is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest

from anyllm_cli.errors import StoreError
from anyllm_cli.stores import migrations, open_store

pytestmark = pytest.mark.anyio


def test_names_are_unique_and_ordered() -> None:
    names = [name for name, _ in migrations.MIGRATIONS]
    assert names == sorted(set(names))


def test_pending_skips_what_is_applied() -> None:
    first = migrations.MIGRATIONS[0][0]
    assert [m[0] for m in migrations.pending([first], "x")] == [
        m[0] for m in migrations.MIGRATIONS[1:]
    ]


def test_a_newer_schema_is_refused_by_name() -> None:
    with pytest.raises(StoreError, match=r"newer than this anyllm knows.*'099_future'"):
        migrations.pending(["001_keys", "099_future"], "db")


async def test_reopening_applies_nothing_twice(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'a.db'}"
    for _ in range(2):
        store = await open_store(url)
        await store.close()
    rows = (
        sqlite3.connect(tmp_path / "a.db").execute("SELECT name FROM schema_migrations").fetchall()
    )
    assert sorted(r[0] for r in rows) == [m[0] for m in migrations.MIGRATIONS]


async def test_sqlite_from_a_newer_anyllm_is_refused(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'a.db'}"
    await (await open_store(url)).close()
    with sqlite3.connect(tmp_path / "a.db") as conn:
        conn.execute("INSERT INTO schema_migrations VALUES ('099_future', 0)")
    with pytest.raises(StoreError, match="099_future"):
        await open_store(url)


async def test_postgres_from_a_newer_anyllm_is_refused(pg_schema: str) -> None:
    import psycopg

    await (await open_store(pg_schema)).close()
    with psycopg.connect(pg_schema, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES ('099_future', 0)")
    with pytest.raises(StoreError, match="099_future"):
        await open_store(pg_schema)


async def test_postgres_openers_racing_apply_each_migration_once(pg_schema: str) -> None:
    import psycopg

    async def one() -> None:
        await (await open_store(pg_schema)).close()

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(one)
    with psycopg.connect(pg_schema) as conn:
        count = conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()
    assert count is not None and count[0] == len(migrations.MIGRATIONS)
