"""The shared store: PostgreSQL through psycopg 3 and a psycopg-pool pool (`postgresql://...`).

The same SQL and migrations as SQLite (`_sql.py`, `migrations.py`), run in worker threads on pooled
connections so the event loop never waits on the network. Writes run in one transaction; the
limiter's check-and-take takes a transaction-scoped advisory lock on the key, so proxy instances on
several machines agree exactly. Migrations take a global advisory lock, so instances starting
together apply each migration once. A schema other than `public` is chosen the libpq way:
`?options=-csearch_path%3DNAME`.

What it gives up: the sync driver in threads rather than psycopg's async API, so both engines share
one set of cursor functions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from anyllm_cli.config import safe_url
from anyllm_cli.errors import StoreError
from anyllm_cli.stores import migrations
from anyllm_cli.stores._sql import Cursor, SQLLimiter, SQLStore

T = TypeVar("T")
POOL_SIZE = 8


class _Cursor:
    """A psycopg cursor that takes the shared `?` placeholders."""

    def __init__(self, cur: Any) -> None:
        self._cur = cur

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Any:
        return self._cur.execute(sql.replace("?", "%s"), params)

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._cur.fetchall())


class PostgresStore(SQLStore):
    def __init__(self, url: str) -> None:
        self.url = safe_url(url)
        self._dsn = url.replace("postgres://", "postgresql://", 1)
        self.limiter = SQLLimiter(self)
        self._slots = anyio.CapacityLimiter(POOL_SIZE)
        self._pool: Any = None

    @classmethod
    async def open(cls, url: str) -> PostgresStore:
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError:
            raise StoreError(
                "PostgreSQL needs the postgres extra: pip install 'anyllm-cli[postgres]'"
            ) from None
        store = cls(url)

        def connect() -> None:
            dsn = store._dsn
            if "connect_timeout" not in dsn:
                dsn = psycopg.conninfo.make_conninfo(dsn, connect_timeout=10)
            try:
                # one plain connection first: a refused or unknown server fails at once, with the
                # server's own reason, where the pool would only time out after 10 s
                psycopg.connect(dsn).close()
                pool = ConnectionPool(
                    store._dsn, min_size=1, max_size=POOL_SIZE, open=False, timeout=10
                )
                pool.open(wait=True, timeout=10)
            except (psycopg.Error, TimeoutError) as exc:
                raise StoreError(f"{store.url}: cannot connect ({exc})") from None
            store._pool = pool
            store._write_sync(store._migrate, "anyllm-migrate")

        try:
            await anyio.to_thread.run_sync(connect, limiter=store._slots)
        except BaseException:
            await store.close()
            raise
        return store

    def _migrate(self, cur: Cursor) -> None:
        cur.execute(migrations.CREATE_LEDGER, ())
        cur.execute("SELECT name FROM schema_migrations", ())
        applied = [str(row[0]) for row in cur.fetchall()]
        todo = migrations.pending(applied, self.url)
        migrations.apply(cur.execute, todo, time.time())

    def _write_sync(self, fn: Callable[[Cursor], T], lock: str | None = None) -> T:
        import psycopg

        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as raw:
                cur = _Cursor(raw)
                if lock is not None:
                    cur.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (lock,))
                return fn(cur)
        except psycopg.Error as exc:
            raise StoreError(f"{self.url}: {exc}") from None

    def _read_sync(self, fn: Callable[[Cursor], T]) -> T:
        import psycopg

        try:
            with self._pool.connection() as conn, conn.cursor() as raw:
                return fn(_Cursor(raw))
        except psycopg.Error as exc:
            raise StoreError(f"{self.url}: {exc}") from None

    async def _write(self, fn: Callable[[Cursor], T], lock: str | None = None) -> T:
        return await anyio.to_thread.run_sync(self._write_sync, fn, lock, limiter=self._slots)

    async def _read(self, fn: Callable[[Cursor], T]) -> T:
        return await anyio.to_thread.run_sync(self._read_sync, fn, limiter=self._slots)

    async def close(self) -> None:
        await self.limiter.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            await anyio.to_thread.run_sync(pool.close)
