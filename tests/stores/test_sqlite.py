"""The SQLite engine: URL parsing, WAL, file mode, and a limiter exact across processes."""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from anyllm_cli.errors import StoreError
from anyllm_cli.stores import Limits, open_store
from anyllm_cli.stores.sqlite import SQLiteStore, sqlite_path

pytestmark = pytest.mark.anyio

_WORKER = """
import anyio, json, sys
from anyllm_cli.stores import Limits, open_store

async def main() -> None:
    store = await open_store(sys.argv[1])
    admitted = 0
    async with anyio.create_task_group() as tg:
        async def one() -> None:
            nonlocal admitted
            decision = await store.limiter.acquire("k", Limits(rpm=10), 1e9)
            admitted += decision.allowed
        for _ in range(25):
            tg.start_soon(one)
    await store.close()
    print(json.dumps(admitted))

anyio.run(main)
"""


@pytest.mark.parametrize(
    ("url", "path"),
    [("sqlite:///tmp/a.db", "/tmp/a.db"), ("sqlite:rel.db", "rel.db"), ("sqlite://~/x.db", None)],
)
def test_urls(url: str, path: str | None) -> None:
    assert sqlite_path(url) == (Path(path) if path else Path("~/x.db").expanduser())


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite::memory:"])
def test_urls_without_a_file_are_refused(url: str) -> None:
    with pytest.raises(StoreError, match="expected sqlite:///PATH"):
        sqlite_path(url)


async def test_the_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "home" / "anyllm.db"
    store = await open_store(f"sqlite://{path}")
    await store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_a_bad_store_url_is_refused() -> None:
    with pytest.raises(StoreError, match="expected sqlite:///PATH or postgresql"):
        await open_store("mysql://x")


@pytest.mark.slow
def test_two_processes_on_one_file_admit_exactly_rpm(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'shared.db'}"
    procs = [
        subprocess.Popen([sys.executable, "-c", _WORKER, url], stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=60)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(json.loads(o) for o in outs) == 10


async def test_the_limiter_decides_on_the_event_loop_when_the_file_is_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await open_store(f"sqlite://{tmp_path / 'a.db'}")
    try:
        assert isinstance(store, SQLiteStore)

        def no_thread(fn: object) -> None:
            raise AssertionError("the limiter hopped to a thread")

        monkeypatch.setattr(store, "_write_sync", no_thread)
        assert (await store.limiter.acquire("k", Limits(rpm=1), 1e9)).allowed
        assert not (await store.limiter.acquire("k", Limits(rpm=1), 1e9)).allowed
        # and its commits never checkpoint the WAL there (a checkpoint syncs the file to disk)
        assert store._quick is not None
        assert store._quick.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    finally:
        monkeypatch.undo()
        await store.close()


async def test_the_limiter_waits_on_a_thread_while_another_process_writes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.db"
    store = await open_store(f"sqlite://{path}")
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # the file's write lock, as another worker would hold it
        decisions = []
        async with anyio.create_task_group() as tg:

            async def acquire() -> None:
                decisions.append(await store.limiter.acquire("k", Limits(rpm=1), 1e9))

            tg.start_soon(acquire)
            await anyio.sleep(0.3)
            assert decisions == []  # waiting, and the event loop still runs
            other.execute("COMMIT")
        assert decisions[0].allowed
    finally:
        other.close()
        await store.close()


def test_switching_to_wal_waits_out_another_process_opening_the_new_file() -> None:
    """SQLite refuses the journal-mode switch at once ("database is locked", no busy wait) while
    another process opens the same new file: the switch is retried, not a failed start."""
    from anyllm_cli.stores.sqlite import _to_wal

    class Busy:
        def __init__(self) -> None:
            self.tries = 0

        def execute(self, sql: str) -> None:
            self.tries += 1
            if self.tries < 3:
                raise sqlite3.OperationalError("database is locked")

    conn = Busy()
    _to_wal(conn)  # type: ignore[arg-type]
    assert conn.tries == 3
