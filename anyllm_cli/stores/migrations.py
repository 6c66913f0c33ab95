"""The schema, as an ordered list of named migrations shared by SQLite and PostgreSQL.

Each migration is a name and a list of statements written in the SQL both engines accept. The store
applies the ones it has not recorded in `schema_migrations`, in order, inside one write transaction
(so two workers starting at once apply each exactly once). A store that records a migration this
code does not know was written by a newer anyllm: it is refused, never half-used.

What it gives up: no down-migrations; a migration is never edited once released, only appended.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from anyllm_cli.errors import StoreError

Migration = tuple[str, tuple[str, ...]]

MIGRATIONS: tuple[Migration, ...] = (
    (
        "001_keys",
        (
            """CREATE TABLE keys (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                key_hash TEXT NOT NULL UNIQUE,
                prefix TEXT NOT NULL,
                created DOUBLE PRECISION NOT NULL,
                expires DOUBLE PRECISION,
                revoked DOUBLE PRECISION,
                rpm INTEGER,
                tpm BIGINT,
                max_parallel INTEGER,
                budget_usd DOUBLE PRECISION,
                period TEXT NOT NULL,
                models TEXT NOT NULL,
                backends TEXT NOT NULL,
                metadata TEXT NOT NULL
            )""",
            "CREATE INDEX keys_name ON keys (name)",
            "CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
            "INSERT INTO counters (name, value) VALUES ('keys_version', 0)",
        ),
    ),
    (
        "002_spend",
        (
            """CREATE TABLE spend (
                key_id TEXT NOT NULL,
                day TEXT NOT NULL,
                model TEXT NOT NULL,
                backend TEXT NOT NULL,
                requests BIGINT NOT NULL,
                input_tokens BIGINT NOT NULL,
                output_tokens BIGINT NOT NULL,
                cost_usd DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (key_id, day, model, backend)
            )""",
        ),
    ),
    (
        "003_limits",
        (
            """CREATE TABLE rate_events (
                key_id TEXT NOT NULL,
                ts DOUBLE PRECISION NOT NULL,
                kind TEXT NOT NULL,
                tokens BIGINT NOT NULL
            )""",
            "CREATE INDEX rate_events_key_ts ON rate_events (key_id, ts)",
            """CREATE TABLE inflight (
                ticket TEXT PRIMARY KEY,
                key_id TEXT NOT NULL,
                expires DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX inflight_key ON inflight (key_id)",
        ),
    ),
    (
        "004_budget_alerts",
        (
            """CREATE TABLE budget_alerts (
                key_id TEXT NOT NULL,
                period_start TEXT NOT NULL,
                threshold INTEGER NOT NULL,
                sent DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (key_id, period_start, threshold)
            )""",
        ),
    ),
    (
        "005_batches",
        (
            """CREATE TABLE batches (
                id TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                owner_kind TEXT NOT NULL,
                format TEXT NOT NULL,
                api TEXT NOT NULL,
                endpoint TEXT NOT NULL,
                backend TEXT,
                created DOUBLE PRECISION NOT NULL,
                expires DOUBLE PRECISION NOT NULL,
                completion_window TEXT NOT NULL,
                input_file_id TEXT,
                metadata TEXT NOT NULL,
                cancel_requested DOUBLE PRECISION,
                ended DOUBLE PRECISION,
                end_reason TEXT,
                total BIGINT NOT NULL,
                succeeded BIGINT NOT NULL DEFAULT 0,
                errored BIGINT NOT NULL DEFAULT 0,
                canceled BIGINT NOT NULL DEFAULT 0,
                expired BIGINT NOT NULL DEFAULT 0
            )""",
            "CREATE INDEX batches_owner ON batches (owner, created)",
            "CREATE INDEX batches_open ON batches (ended, created)",
            """CREATE TABLE batch_items (
                batch_id TEXT NOT NULL,
                custom_id TEXT NOT NULL,
                line BIGINT NOT NULL,
                body TEXT NOT NULL,
                state TEXT NOT NULL,
                lease_owner TEXT,
                lease_expires DOUBLE PRECISION NOT NULL,
                attempts INTEGER NOT NULL,
                result_type TEXT,
                result TEXT,
                PRIMARY KEY (batch_id, custom_id)
            )""",
            "CREATE INDEX batch_items_claim ON batch_items (batch_id, state, lease_expires, line)",
            "CREATE INDEX batch_items_line ON batch_items (batch_id, line)",
            """CREATE TABLE files (
                id TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                filename TEXT NOT NULL,
                purpose TEXT NOT NULL,
                bytes BIGINT NOT NULL,
                created DOUBLE PRECISION NOT NULL,
                expires DOUBLE PRECISION,
                content TEXT NOT NULL
            )""",
            "CREATE INDEX files_owner ON files (owner, created)",
        ),
    ),
    (
        # The limiter's windows as per-second counters (stores/_sql.py); the per-request log
        # goes, and with it at most the last minute of rate history at the upgrade.
        "006_rate_buckets",
        (
            """CREATE TABLE rate_buckets (
                key_id TEXT NOT NULL,
                kind TEXT NOT NULL,
                bucket BIGINT NOT NULL,
                amount BIGINT NOT NULL,
                latest DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (key_id, kind, bucket)
            )""",
            "DROP TABLE rate_events",
        ),
    ),
    (
        # An OpenAI batch's output or error file, deleted by its owner: the results it held are
        # scrubbed from the items, and this row answers 404 for the file from then on.
        "007_deleted_result_files",
        (
            """CREATE TABLE deleted_result_files (
                file_id TEXT PRIMARY KEY,
                batch_id TEXT NOT NULL,
                deleted DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX deleted_result_files_batch ON deleted_result_files (batch_id)",
        ),
    ),
    (
        # Native batches: a batch whose backend runs it through its provider's batch API
        # (batch/native.py) keeps the upstream's ids and its polling state here.
        "008_native_batches",
        (
            "ALTER TABLE batches ADD COLUMN mode TEXT NOT NULL DEFAULT 'local'",
            """CREATE TABLE native_batches (
                batch_id TEXT PRIMARY KEY,
                backend TEXT NOT NULL,
                state TEXT NOT NULL,
                upstream_id TEXT,
                upstream_file_id TEXT,
                intent DOUBLE PRECISION,
                cancel_sent DOUBLE PRECISION,
                polls INTEGER NOT NULL,
                next_poll DOUBLE PRECISION NOT NULL,
                lease_owner TEXT,
                lease_expires DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX native_batches_due ON native_batches (state, next_poll)",
        ),
    ),
)

CREATE_LEDGER = (
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(name TEXT PRIMARY KEY, applied DOUBLE PRECISION NOT NULL)"
)


def pending(applied: Sequence[str], where: str) -> list[Migration]:
    """The migrations still to apply; refuses a store that a newer anyllm migrated."""
    known = [name for name, _ in MIGRATIONS]
    unknown = [name for name in applied if name not in known]
    if unknown:
        raise StoreError(
            f"{where}: the store's schema is newer than this anyllm knows (it has migration "
            f"{unknown[-1]!r}); upgrade anyllm, or point --db at another store"
        )
    return [m for m in MIGRATIONS if m[0] not in applied]


def apply(
    execute: Callable[[str, Sequence[Any]], Any], migrations: list[Migration], now: float
) -> None:
    """Run the statements of each migration and record it (inside the caller's transaction)."""
    for name, statements in migrations:
        for statement in statements:
            execute(statement, ())
        execute("INSERT INTO schema_migrations (name, applied) VALUES (?, ?)", (name, now))
