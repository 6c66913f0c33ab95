"""The `[record]` table and the `--record*` flags of `serve`: where and how to record exchanges.

    [record]
    path = "recordings/"        # a directory (one file per process, rotated) or NAME.jsonl
    bodies = "all"              # none | requests | all
    sample = 1.0                # the share of calls recorded, in (0, 1]
    max_bytes = 104857600       # rotate a file above this size

Flags win over the table (`--record PATH`, `--record-bodies`, `--record-sample`). Recording is off
unless a path is given; `bodies`/`sample` without a path is a mistake worth a message. A relative
path is taken from the working directory; `~` is expanded. With several workers the path must be a
directory: one file shared by processes could not rotate safely.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anyllm_cli.config._files import _Flags, _Table

RECORD_BODIES = ("none", "requests", "all")
MAX_BYTES = 100 * 1024 * 1024
_RECORD_KEYS = frozenset({"path", "bodies", "sample", "max_bytes"})


@dataclass(frozen=True, slots=True)
class RecordSettings:
    path: Path
    bodies: str = "all"
    sample: float = 1.0
    max_bytes: int = MAX_BYTES


def _share(table: _Table, key: str) -> float | None:
    sample = table.number(key, 0.0)
    if sample is not None and not 0 < sample <= 1:
        raise table.error(key, f"expected a share in (0, 1], got {sample:g}")
    return sample


def _merge_record(
    doc: _Table, flags: Mapping[str, Any], cwd: Path, *, workers: int = 1
) -> RecordSettings | None:
    table = _Table(doc.data.get("record", {}), "record", doc.file)
    table.only(_RECORD_KEYS)
    names = ("record", "record_bodies", "record_sample")
    given = _Flags({k: flags[k] for k in names if k in flags}, "", "command line")
    path = given.text("record") or table.text("path")
    bodies = given.choice("record_bodies", RECORD_BODIES) or table.choice("bodies", RECORD_BODIES)
    sample = _share(given, "record_sample") or _share(table, "sample")
    max_bytes = table.integer("max_bytes", 1024)
    if path is None:
        if given.data:
            raise given.error("record", "a path is needed by --record-bodies and --record-sample")
        if table.data:
            raise table.error("path", "required to record: a directory or a NAME.jsonl file")
        return None
    where = Path(path).expanduser()
    if workers > 1 and where.suffix == ".jsonl":
        problem = "with several workers, record to a directory (each worker writes its own files)"
        raise (given if given.data.get("record") else table).error(
            "record" if given.data.get("record") else "path", problem
        )
    return RecordSettings(
        path=where if where.is_absolute() else cwd / where,
        bodies=bodies or "all",
        sample=1.0 if sample is None else sample,
        max_bytes=max_bytes or MAX_BYTES,
    )
