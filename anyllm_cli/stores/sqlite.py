"""The embedded store: one SQLite file in WAL mode, the default (`sqlite:///PATH`).

    event loop ──to_thread──> one writer connection (a capacity-1 limiter serialises it;
                              BEGIN IMMEDIATE serialises it with other processes on the file)
               ──to_thread──> reader connections, one per worker thread (WAL: readers never block)

The limiter's check-and-take (a few indexed statements, ~50 us, no fsync: `synchronous = NORMAL`,
and its connection never checkpoints the WAL) runs on the event loop when it can start at once: its
own connection with busy_timeout 0 tries `BEGIN IMMEDIATE` while no other write of this process is
under way; if another process holds the file's write lock it goes to the thread like every other
write, which would cost a thread hop (~200 us, most of the limiter's price).
Nothing else runs on the event loop. `serve --workers N` opens the same file from N processes; every
write transaction starts with `BEGIN IMMEDIATE`, so a limiter's check-and-take is atomic across them,
and `busy_timeout` makes a writer wait its turn instead of failing. The file is created 0600: it holds
no usable key, but it does hold who spent what.

What it gives up: one machine only (a network filesystem breaks SQLite's locks); use PostgreSQL for
several instances.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread

from anyllm_cli.errors import StoreError
from anyllm_cli.stores import migrations
from anyllm_cli.stores._sql import Cursor, SQLLimiter, SQLStore

T = TypeVar("T")
BUSY_TIMEOUT_MS = 30_000


def sqlite_path(url: str) -> Path:
    """`sqlite:///abs/path.db` (or `sqlite:relative.db`) -> a path."""
    rest = url.removeprefix("sqlite:")
    rest = rest[2:] if rest.startswith("//") else rest
    if not rest or rest.lstrip("/") == ":memory:":
        raise StoreError(f"store URL {url!r}: expected sqlite:///PATH to a file")
    return Path(rest).expanduser()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def _to_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL mode (it stays so). Switching does not wait on `busy_timeout`: while
    another process opens the same new file (`serve --workers N`) it fails at once with "database
    is locked", so it is retried here, within the same bound."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _finish(conn: sqlite3.Connection, fn: Callable[[Cursor], T]) -> T:
    """`fn` in the write transaction `conn` has just begun: committed, or rolled back if it raises."""
    try:
        result = fn(conn.cursor())
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


class SQLiteStore(SQLStore):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite://{path}" if path.is_absolute() else f"sqlite:{path}"
        self.limiter = SQLLimiter(self)
        self._writer: sqlite3.Connection | None = None
        self._quick: sqlite3.Connection | None = None  # the limiter's, on the event loop
        self._write_slot = anyio.CapacityLimiter(1)
        self._read_slots = anyio.CapacityLimiter(4)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    @classmethod
    async def open(cls, url: str) -> SQLiteStore:
        store = cls(sqlite_path(url))
        await anyio.to_thread.run_sync(store._open_sync)
        return store

    def _open_sync(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                self.path.touch(mode=0o600)
            self._writer = _connect(self.path)
            _to_wal(self._writer)
            self._migrate()
            self._quick = _connect(self.path)
            self._quick.execute("PRAGMA busy_timeout = 0")
            # its commits never checkpoint the WAL (an fsync, on the event loop): the writer
            # thread's commits (spend flushes, four times a second) do that
            self._quick.execute("PRAGMA wal_autocheckpoint = 0")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the store ({exc})") from None

    def _migrate(self) -> None:
        def run(cur: Cursor) -> None:
            cur.execute(migrations.CREATE_LEDGER, ())
            cur.execute("SELECT name FROM schema_migrations", ())
            applied = [str(row[0]) for row in cur.fetchall()]
            todo = migrations.pending(applied, str(self.path))
            migrations.apply(cur.execute, todo, time.time())

        self._write_sync(run)

    def _write_sync(self, fn: Callable[[Cursor], T]) -> T:
        conn = self._writer
        if conn is None:
            raise StoreError(f"{self.path}: the store is closed")
        conn.execute("BEGIN IMMEDIATE")
        return _finish(conn, fn)

    def _try_quick(self, fn: Callable[[Cursor], T]) -> tuple[bool, T | None]:
        """`fn` in a write transaction on the event loop, if the file's write lock is free now."""
        conn = self._quick
        if conn is None:
            return False, None
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:  # another process writes: wait for it on a thread
            return False, None
        return True, _finish(conn, fn)

    def _read_sync(self, fn: Callable[[Cursor], T]) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            self._local.conn = conn
            with self._lock:
                self._readers.append(conn)
        return fn(conn.cursor())

    async def _write(self, fn: Callable[[Cursor], T], lock: str | None = None) -> T:
        try:
            return await anyio.to_thread.run_sync(self._write_sync, fn, limiter=self._write_slot)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from None

    async def _write_short(self, fn: Callable[[Cursor], T], lock: str | None = None) -> T:
        try:
            self._write_slot.acquire_nowait()
        except anyio.WouldBlock:
            return await self._write(fn, lock)
        try:
            done, result = self._try_quick(fn)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from None
        finally:
            self._write_slot.release()
        return result if done else await self._write(fn, lock)  # type: ignore[return-value]

    async def _read(self, fn: Callable[[Cursor], T]) -> T:
        try:
            return await anyio.to_thread.run_sync(self._read_sync, fn, limiter=self._read_slots)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from None

    async def close(self) -> None:
        await self.limiter.close()

        def run() -> None:
            with self._lock:
                for conn in self._readers:
                    conn.close()
                self._readers.clear()
            for own in (self._writer, self._quick):
                if own is not None:
                    own.close()
            self._writer = self._quick = None

        await anyio.to_thread.run_sync(run, limiter=self._write_slot)
