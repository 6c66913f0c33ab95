"""The SQL for batches and files, shared by SQLite and PostgreSQL (`BatchStore`, `FileStore`).

    batches       one row per batch, with result counters kept in step with its items
    batch_items   one row per request, keyed (batch_id, custom_id): its body, its lease
                  (lease_owner, lease_expires), and its one result (state 'open' -> 'done' once)
    files         uploaded batch input files (JSONL text)
    deleted_result_files   an OpenAI batch's output or error file its owner deleted
    native_batches  a native batch's upstream ids and polling state, under its own lease; claim and
                  `due` skip native batches (mode 'native'): their runner ends them (batch/native.py)

`SQLBatches` wraps an engine store (`SQLiteStore` or `PostgresStore`) and runs small cursor
functions through its `_read` / `_write`. A claim is one write transaction: pick the runnable items
of each open batch (never-leased first, then expired leases) and stamp them with the worker and a
lease expiry; PostgreSQL adds `FOR UPDATE SKIP LOCKED`, so instances claiming at once never wait on
each other's rows. A result is written with `WHERE state = 'open'`: the first result of an item
wins and a late duplicate (a re-sent item after a crash) is dropped, so results stay one per item.

What it gives up: counters move only with writes through this module (a batch's items are never
edited by hand); `finish` recounts from the items to stay exact.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar

from anyllm_cli.stores.batches import (
    BatchRecord,
    ClaimedItem,
    Counts,
    EndReason,
    FileRecord,
    ItemRow,
    NativeRecord,
    NewItem,
)

T = TypeVar("T")
RESULT_TYPES = ("succeeded", "errored", "canceled", "expired")


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Engine(Protocol):
    url: str

    async def _read(self, fn: Any) -> Any: ...

    async def _write(self, fn: Any, lock: str | None = None) -> Any: ...


_BATCH_COLUMNS = (
    "id, owner, owner_kind, format, api, endpoint, backend, created, expires, completion_window, "
    "input_file_id, metadata, cancel_requested, ended, end_reason, "
    "total, succeeded, errored, canceled, expired, mode"
)
_FILE_COLUMNS = "id, owner, filename, purpose, bytes, created, expires"
_NATIVE_COLUMNS = (
    "batch_id, backend, state, upstream_id, upstream_file_id, intent, cancel_sent, polls"
)


def _batch(row: Sequence[Any]) -> BatchRecord:
    (bid, owner, kind, fmt, api, endpoint, backend, created, expires, window, file_id, meta) = row[
        :12
    ]
    cancel, ended, reason, total, ok, err, canceled, expired, mode = row[12:]
    return BatchRecord(
        id=bid,
        owner=owner,
        owner_kind=kind,
        format=fmt,
        api=api,
        endpoint=endpoint,
        backend=backend,
        created=float(created),
        expires=float(expires),
        completion_window=window,
        input_file_id=file_id,
        metadata=json.loads(meta),
        cancel_requested=cancel,
        ended=ended,
        end_reason=reason,
        counts=Counts(int(total), int(ok), int(err), int(canceled), int(expired)),
        mode=str(mode),
    )


def _native(row: Sequence[Any]) -> NativeRecord:
    bid, backend, state, upstream_id, file_id, intent, cancel_sent, polls = row
    return NativeRecord(
        bid, backend, state, upstream_id, file_id, intent, cancel_sent, int(polls or 0)
    )


def _file(row: Sequence[Any]) -> FileRecord:
    fid, owner, filename, purpose, size, created, expires = row
    return FileRecord(fid, owner, filename, purpose, int(size), float(created), expires)


def _claim_batch(
    cur: Cursor, batch_id: str, *, want: int, worker: str, lease_s: float, now: float, skip: str
) -> list[ClaimedItem]:
    cur.execute(
        f"""UPDATE batch_items SET lease_owner = ?, lease_expires = ?, attempts = attempts + 1
        WHERE batch_id = ? AND custom_id IN (
            SELECT custom_id FROM batch_items
            WHERE batch_id = ? AND state = 'open' AND lease_expires < ?
            ORDER BY lease_expires, line LIMIT ?{skip})
        RETURNING custom_id, body, attempts""",
        (worker, now + lease_s, batch_id, batch_id, now, want),
    )
    return [
        ClaimedItem(batch_id, str(cid), str(body).encode(), int(attempts) - 1)
        for cid, body, attempts in cur.fetchall()
    ]


def _delete_batch(cur: Cursor, batch_id: str) -> None:
    cur.execute("DELETE FROM batch_items WHERE batch_id = ?", (batch_id,))
    cur.execute("DELETE FROM deleted_result_files WHERE batch_id = ?", (batch_id,))
    cur.execute("DELETE FROM native_batches WHERE batch_id = ?", (batch_id,))
    cur.execute("DELETE FROM batches WHERE id = ?", (batch_id,))


def _recount(cur: Cursor, batch_id: str) -> None:
    cur.execute(
        "SELECT result_type, COUNT(*) FROM batch_items "
        "WHERE batch_id = ? AND state = 'done' GROUP BY result_type",
        (batch_id,),
    )
    got = {str(kind): int(n) for kind, n in cur.fetchall()}
    cur.execute(
        "UPDATE batches SET succeeded = ?, errored = ?, canceled = ?, expired = ? WHERE id = ?",
        (*(got.get(kind, 0) for kind in RESULT_TYPES), batch_id),
    )


class SQLBatches:
    """`BatchStore` and `FileStore` over an engine store's connections."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        postgres = engine.url.startswith(("postgres:", "postgresql:"))
        self._skip = " FOR UPDATE SKIP LOCKED" if postgres else ""

    # -- batches ----------------------------------------------------------------------------------

    async def create_batch(self, batch: BatchRecord, items: Sequence[NewItem]) -> None:
        def run(cur: Cursor) -> None:
            cur.execute(
                f"INSERT INTO batches ({_BATCH_COLUMNS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 0, ?)",
                (
                    batch.id,
                    batch.owner,
                    batch.owner_kind,
                    batch.format,
                    batch.api,
                    batch.endpoint,
                    batch.backend,
                    batch.created,
                    batch.expires,
                    batch.completion_window,
                    batch.input_file_id,
                    json.dumps(dict(batch.metadata)),
                    None,
                    None,
                    None,
                    len(items),
                    batch.mode,
                ),
            )
            if batch.mode == "native":  # in the same transaction: never leased as local work
                cur.execute(
                    "INSERT INTO native_batches (batch_id, backend, state, polls, next_poll, "
                    "lease_expires) VALUES (?, ?, 'new', 0, 0, 0)",
                    (batch.id, batch.backend or ""),
                )
            rows = [(batch.id, i.custom_id, i.line, i.body.decode()) for i in items]
            for start in range(0, len(rows), 500):
                chunk = rows[start : start + 500]
                values = ", ".join("(?, ?, ?, ?, 'open', 0, 0)" for _ in chunk)
                cur.execute(
                    "INSERT INTO batch_items (batch_id, custom_id, line, body, state, "
                    f"lease_expires, attempts) VALUES {values}",
                    [v for row in chunk for v in row],
                )

        await self._engine._write(run)

    async def get_batch(self, batch_id: str) -> BatchRecord | None:
        def run(cur: Cursor) -> BatchRecord | None:
            cur.execute(f"SELECT {_BATCH_COLUMNS} FROM batches WHERE id = ?", (batch_id,))
            row = cur.fetchone()
            return _batch(row) if row else None

        result: BatchRecord | None = await self._engine._read(run)
        return result

    async def list_batches(
        self,
        owner: str | None,
        *,
        limit: int = 20,
        after: str | None = None,
        before: str | None = None,
        fmt: str | None = None,
    ) -> list[BatchRecord]:
        def run(cur: Cursor) -> list[BatchRecord]:
            where, params = ["1 = 1"], []
            for column, value in (("owner", owner), ("format", fmt)):
                if value is not None:
                    where.append(f"{column} = ?")
                    params.append(value)
            for cursor, op in ((after, "<"), (before, ">")):
                if cursor is not None:
                    where.append(
                        f"(created, id) {op} (SELECT created, id FROM batches WHERE id = ?)"
                    )
                    params.append(cursor)
            order = "ASC" if before is not None and after is None else "DESC"
            cur.execute(
                f"SELECT {_BATCH_COLUMNS} FROM batches WHERE {' AND '.join(where)} "
                f"ORDER BY created {order}, id {order} LIMIT ?",
                (*params, limit),
            )
            rows = [_batch(row) for row in cur.fetchall()]
            return rows[::-1] if order == "ASC" else rows

        result: list[BatchRecord] = await self._engine._read(run)
        return result

    async def claim(
        self,
        worker: str,
        limit: int,
        per_batch: int,
        lease_s: float,
        now: float,
        *,
        only: str | None = None,
    ) -> list[ClaimedItem]:
        def run(cur: Cursor) -> list[ClaimedItem]:
            one = " AND id = ?" if only is not None else ""
            cur.execute(
                "SELECT id FROM batches WHERE ended IS NULL AND cancel_requested IS NULL "
                f"AND mode = 'local' AND expires > ?{one} ORDER BY created, id",
                (now, only) if only is not None else (now,),
            )
            claimed: list[ClaimedItem] = []
            for (batch_id,) in cur.fetchall():
                if len(claimed) >= limit:
                    break
                cur.execute(
                    "SELECT COUNT(*) FROM batch_items "
                    "WHERE batch_id = ? AND state = 'open' AND lease_expires >= ?",
                    (batch_id, now),
                )
                want = min(limit - len(claimed), per_batch - int(cur.fetchone()[0]))
                if want > 0:
                    claimed += _claim_batch(
                        cur,
                        batch_id,
                        want=want,
                        worker=worker,
                        lease_s=lease_s,
                        now=now,
                        skip=self._skip,
                    )
            return claimed

        result: list[ClaimedItem] = await self._engine._write(run)
        return result

    async def renew(
        self, worker: str, keys: Sequence[tuple[str, str]], lease_s: float, now: float
    ) -> None:
        def run(cur: Cursor) -> None:
            for batch_id, custom_id in keys:
                cur.execute(
                    "UPDATE batch_items SET lease_expires = ? WHERE batch_id = ? "
                    "AND custom_id = ? AND lease_owner = ? AND state = 'open'",
                    (now + lease_s, batch_id, custom_id, worker),
                )

        if keys:
            await self._engine._write(run)

    async def release(self, worker: str, keys: Sequence[tuple[str, str]]) -> None:
        def run(cur: Cursor) -> None:
            for batch_id, custom_id in keys:
                cur.execute(
                    "UPDATE batch_items SET lease_expires = 0, lease_owner = NULL "
                    "WHERE batch_id = ? AND custom_id = ? AND lease_owner = ? AND state = 'open'",
                    (batch_id, custom_id, worker),
                )

        if keys:
            await self._engine._write(run)

    async def complete(
        self, batch_id: str, results: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[str]:
        def run(cur: Cursor) -> list[str]:
            added = dict.fromkeys(RESULT_TYPES, 0)
            ended: list[str] = []
            for custom_id, result in results:
                kind = str(result["type"])
                cur.execute(
                    "UPDATE batch_items SET state = 'done', result_type = ?, result = ?, "
                    "lease_owner = NULL WHERE batch_id = ? AND custom_id = ? AND state = 'open' "
                    "RETURNING custom_id",
                    (kind, json.dumps(result), batch_id, custom_id),
                )
                if cur.fetchall():
                    added[kind] += 1
                    ended.append(custom_id)
            sets = ", ".join(f"{kind} = {kind} + ?" for kind in RESULT_TYPES)
            cur.execute(
                f"UPDATE batches SET {sets} WHERE id = ?",
                (*(added[kind] for kind in RESULT_TYPES), batch_id),
            )
            return ended

        if not results:
            return []
        written: list[str] = await self._engine._write(run)
        return written

    async def cancel(self, batch_id: str, now: float) -> None:
        def run(cur: Cursor) -> None:
            cur.execute(
                "UPDATE batches SET cancel_requested = ? "
                "WHERE id = ? AND cancel_requested IS NULL AND ended IS NULL",
                (now, batch_id),
            )

        await self._engine._write(run)

    async def due(self, now: float) -> list[BatchRecord]:
        def run(cur: Cursor) -> list[BatchRecord]:
            cur.execute(
                f"SELECT {_BATCH_COLUMNS} FROM batches WHERE ended IS NULL AND mode = 'local' AND ("
                "cancel_requested IS NOT NULL OR expires <= ? "
                "OR succeeded + errored + canceled + expired >= total) ORDER BY created",
                (now,),
            )
            return [_batch(row) for row in cur.fetchall()]

        result: list[BatchRecord] = await self._engine._read(run)
        return result

    async def finish(self, batch_id: str, reason: EndReason, now: float) -> None:
        """End a batch: items still open get `canceled` / `expired` (none for `completed`)."""

        def run(cur: Cursor) -> None:
            if reason != "completed":
                kind = "canceled" if reason == "canceled" else "expired"
                cur.execute(
                    "UPDATE batch_items SET state = 'done', result_type = ?, result = ?, "
                    "lease_owner = NULL WHERE batch_id = ? AND state = 'open'",
                    (kind, json.dumps({"type": kind, "status": 200}), batch_id),
                )
            _recount(cur, batch_id)
            cur.execute(
                "UPDATE batches SET ended = ?, end_reason = ? WHERE id = ? AND ended IS NULL",
                (now, reason, batch_id),
            )

        await self._engine._write(run)

    async def items(
        self, batch_id: str, *, after_line: int = 0, limit: int = 1000
    ) -> list[ItemRow]:
        def run(cur: Cursor) -> list[ItemRow]:
            cur.execute(
                "SELECT custom_id, line, result FROM batch_items "
                "WHERE batch_id = ? AND line > ? ORDER BY line LIMIT ?",
                (batch_id, after_line, limit),
            )
            return [
                ItemRow(str(cid), int(line), json.loads(result) if result else None)
                for cid, line, result in cur.fetchall()
            ]

        result: list[ItemRow] = await self._engine._read(run)
        return result

    async def delete_batch(self, batch_id: str) -> None:
        def run(cur: Cursor) -> None:
            _delete_batch(cur, batch_id)

        await self._engine._write(run)

    async def purge(self, ended_before: float) -> int:
        def run(cur: Cursor) -> int:
            cur.execute(
                "SELECT id FROM batches WHERE ended IS NOT NULL AND ended < ?", (ended_before,)
            )
            ids = [str(row[0]) for row in cur.fetchall()]
            for batch_id in ids:
                _delete_batch(cur, batch_id)
            cur.execute(
                "DELETE FROM files WHERE expires IS NOT NULL AND expires < ?", (ended_before,)
            )
            return len(ids)

        result: int = await self._engine._write(run)
        return result

    # -- native batches (batch/native.py) ---------------------------------------------------------

    async def claim_native(
        self, worker: str, limit: int, lease_s: float, now: float
    ) -> list[NativeRecord]:
        def run(cur: Cursor) -> list[NativeRecord]:
            cur.execute(
                f"""UPDATE native_batches SET lease_owner = ?, lease_expires = ?
                WHERE batch_id IN (
                    SELECT batch_id FROM native_batches
                    WHERE state <> 'ended' AND next_poll <= ? AND lease_expires < ?
                    ORDER BY next_poll LIMIT ?{self._skip})
                RETURNING {_NATIVE_COLUMNS}""",
                (worker, now + lease_s, now, now, limit),
            )
            return [_native(row) for row in cur.fetchall()]

        result: list[NativeRecord] = await self._engine._write(run)
        return result

    async def save_native(
        self, record: NativeRecord, worker: str, *, next_poll: float, lease_s: float, now: float
    ) -> bool:
        def run(cur: Cursor) -> bool:
            cur.execute(
                "UPDATE native_batches SET state = ?, upstream_id = ?, upstream_file_id = ?, "
                "intent = ?, cancel_sent = ?, polls = ?, next_poll = ?, lease_expires = ? "
                "WHERE batch_id = ? AND lease_owner = ? RETURNING batch_id",
                (
                    record.state,
                    record.upstream_id,
                    record.upstream_file_id,
                    record.intent,
                    record.cancel_sent,
                    record.polls,
                    next_poll,
                    now + lease_s,
                    record.batch_id,
                    worker,
                ),
            )
            return bool(cur.fetchall())

        saved: bool = await self._engine._write(run)
        return saved

    async def release_native(self, worker: str, batch_ids: Sequence[str]) -> None:
        def run(cur: Cursor) -> None:
            for batch_id in batch_ids:
                cur.execute(
                    "UPDATE native_batches SET lease_expires = 0, lease_owner = NULL "
                    "WHERE batch_id = ? AND lease_owner = ?",
                    (batch_id, worker),
                )

        if batch_ids:
            await self._engine._write(run)

    async def native_items(
        self, batch_id: str, *, after_line: int = 0, limit: int = 1000
    ) -> list[tuple[str, int, bytes]]:
        def run(cur: Cursor) -> list[tuple[str, int, bytes]]:
            cur.execute(
                "SELECT custom_id, line, body FROM batch_items "
                "WHERE batch_id = ? AND line > ? ORDER BY line LIMIT ?",
                (batch_id, after_line, limit),
            )
            return [(str(cid), int(line), str(body).encode()) for cid, line, body in cur.fetchall()]

        result: list[tuple[str, int, bytes]] = await self._engine._read(run)
        return result

    # -- files ------------------------------------------------------------------------------------

    async def put_file(self, record: FileRecord, content: bytes) -> None:
        def run(cur: Cursor) -> None:
            cur.execute(
                f"INSERT INTO files ({_FILE_COLUMNS}, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.owner,
                    record.filename,
                    record.purpose,
                    record.bytes,
                    record.created,
                    record.expires,
                    content.decode(),
                ),
            )

        await self._engine._write(run)

    async def get_file(self, file_id: str) -> FileRecord | None:
        def run(cur: Cursor) -> FileRecord | None:
            cur.execute(f"SELECT {_FILE_COLUMNS} FROM files WHERE id = ?", (file_id,))
            row = cur.fetchone()
            return _file(row) if row else None

        result: FileRecord | None = await self._engine._read(run)
        return result

    async def file_content(self, file_id: str) -> bytes | None:
        def run(cur: Cursor) -> bytes | None:
            cur.execute("SELECT content FROM files WHERE id = ?", (file_id,))
            row = cur.fetchone()
            return str(row[0]).encode() if row else None

        result: bytes | None = await self._engine._read(run)
        return result

    async def list_files(
        self, owner: str | None, *, purpose: str | None = None
    ) -> list[FileRecord]:
        def run(cur: Cursor) -> list[FileRecord]:
            where, params = ["1 = 1"], []
            for column, value in (("owner", owner), ("purpose", purpose)):
                if value is not None:
                    where.append(f"{column} = ?")
                    params.append(value)
            cur.execute(
                f"SELECT {_FILE_COLUMNS} FROM files WHERE {' AND '.join(where)} "
                "ORDER BY created DESC, id DESC",
                params,
            )
            return [_file(row) for row in cur.fetchall()]

        result: list[FileRecord] = await self._engine._read(run)
        return result

    async def delete_file(self, file_id: str) -> bool:
        def run(cur: Cursor) -> bool:
            cur.execute("DELETE FROM files WHERE id = ? RETURNING id", (file_id,))
            return bool(cur.fetchall())

        result: bool = await self._engine._write(run)
        return result

    async def delete_results(
        self, batch_id: str, file_id: str, *, errors: bool, now: float
    ) -> bool:
        def run(cur: Cursor) -> bool:
            cur.execute(
                "INSERT INTO deleted_result_files (file_id, batch_id, deleted) VALUES (?, ?, ?) "
                "ON CONFLICT (file_id) DO NOTHING RETURNING file_id",
                (file_id, batch_id, now),
            )
            if not cur.fetchall():
                return False
            which = "<>" if errors else "="
            cur.execute(  # what remains of each result: its type, for the counts
                "UPDATE batch_items SET result = '{\"type\": \"' || result_type || '\"}' "
                f"WHERE batch_id = ? AND state = 'done' AND result_type {which} 'succeeded'",
                (batch_id,),
            )
            return True

        result: bool = await self._engine._write(run)
        return result

    async def deleted_results(self, batch_id: str) -> frozenset[str]:
        def run(cur: Cursor) -> frozenset[str]:
            cur.execute("SELECT file_id FROM deleted_result_files WHERE batch_id = ?", (batch_id,))
            return frozenset(str(row[0]) for row in cur.fetchall())

        result: frozenset[str] = await self._engine._read(run)
        return result
