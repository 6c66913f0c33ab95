"""`Recorder`: a pipeline `CallObserver` that writes one cassette line per finished call, off the hot path.

    on_complete(outcome) ──sample──> bounded queue ──writer thread──> serialise, redact, batch ──>
                                      (full: dropped, counted)        one write per batch, 0600 files,
                                                                      rotation by size

`on_complete` does no I/O and no serialisation: it appends the frozen `Outcome` to a bounded deque
and returns (no lock, no thread woken). One writer thread wakes every `flush_s`, or as soon as
`batch` outcomes wait, turns each into a JSON line (see `cassette.py`), scrubs it (`redact.py`:
credential headers by name, key-shaped text anywhere) and appends the batch with one `write`.
Waking per batch rather than per call matters on a busy proxy: a thread woken for every call
takes the interpreter lock from the event loop hundreds of times a second. A directory
target gets files named `anyllm-<start>-<pid>-<seq>.jsonl` (so several worker processes never share a
file); a file target rotates to `NAME.0001.jsonl`, `NAME.0002.jsonl`, ... with `NAME.jsonl` always the
newest, so a directory listing in name order is the recording order.

`bodies`: `all` keeps request, upstream request and reply; `requests` drops the reply; `none` keeps
only metadata (such lines cannot be replayed). What it gives up: when the queue is full (the disk
cannot keep up) lines are dropped and counted rather than slowing the proxy; a crash loses the
batch in memory (at most `batch` lines, or `flush_s` of traffic).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from anyllm_cli.config import Settings
from anyllm_cli.errors import ConfigError
from anyllm_cli.models import codec
from anyllm_cli.pipeline.seams import Outcome
from anyllm_cli.replay.cassette import VERSION
from anyllm_cli.replay.fold import fold
from anyllm_cli.replay.redact import REDACTED, SECRET_HEADERS, Redactor

log = logging.getLogger("anyllm.record")

Bodies = Literal["none", "requests", "all"]
BODIES: tuple[Bodies, ...] = ("none", "requests", "all")
_DROP_HEADERS = frozenset(
    {"host", "content-length", "connection", "transfer-encoding", "accept-encoding"}
)


@dataclass(frozen=True, slots=True)
class RecordOptions:
    path: Path
    bodies: Bodies = "all"
    sample: float = 1.0
    max_bytes: int = 100 * 1024 * 1024
    queue_size: int = 10_000
    batch: int = 256
    flush_s: float = 0.2


class Recorder:
    """A `CallObserver`; use as a context manager (or `start()`/`close()`) around the server's life."""

    def __init__(
        self,
        options: RecordOptions,
        *,
        secrets: Iterable[str] = (),
        rng: Callable[[], float] = random.random,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if options.bodies not in BODIES:
            raise ValueError(f"bodies must be one of {', '.join(BODIES)}")
        self.options = options
        self.wants_bodies = options.bodies != "none"
        self.dropped = 0
        self.written = 0
        self._redactor = Redactor(secrets)
        self._rng = rng
        self._wall = wall_clock
        self._pending: deque[tuple[Outcome, float]] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._file = _Rotating(options.path, options.max_bytes, wall_clock)

    # -- the observer --------------------------------------------------------------------------------

    async def on_complete(self, outcome: Outcome) -> None:
        self.observe(outcome)

    def observe(self, outcome: Outcome) -> None:
        """Queue one outcome (sampled); never blocks, never raises into the request path."""
        if self.options.sample < 1.0 and self._rng() >= self.options.sample:
            return
        pending = self._pending
        if len(pending) >= self.options.queue_size:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("recording falls behind: %d lines dropped so far", self.dropped)
            return
        pending.append((outcome, self._wall()))
        if len(pending) == self.options.batch:
            self._wake.set()

    # -- life ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the first file (a ConfigError when it cannot be), then start the writer."""
        try:
            self._file.open()
        except OSError as exc:
            raise ConfigError(f"--record {self.options.path}: cannot write there ({exc})") from None
        self._thread = threading.Thread(target=self._run, name="anyllm-recorder", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer (bounded by `timeout`)."""
        if self._thread is None:
            return
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        self._thread = None
        self._file.close()

    def __enter__(self) -> Recorder:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Recorder:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the writer thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        pending, batch = self._pending, self.options.batch
        while True:
            self._wake.wait(self.options.flush_s)
            self._wake.clear()
            stopping = self._stopping  # read before draining: what was queued before close() goes
            while pending:
                self._write([pending.popleft() for _ in range(min(batch, len(pending)))])
            if stopping:
                return

    def _write(self, items: list[Any]) -> None:
        lines: list[bytes] = []
        for outcome, ended in items:
            try:
                line = codec.dumps(outcome_line(outcome, self.options.bodies, ended))
            except (TypeError, ValueError) as exc:  # an unserialisable body: say so, keep going
                log.warning("recording: a line could not be written (%s)", exc)
                continue
            lines.append(self._redactor.data(line) + b"\n")
        if not lines:
            return
        try:
            self._file.write(b"".join(lines))
            self.written += len(lines)
        except OSError as exc:
            self.dropped += len(lines)
            log.error("recording: cannot write %s (%s); %d lines lost", self._file, exc, len(lines))


def outcome_line(outcome: Outcome, bodies: Bodies, ended: float) -> dict[str, Any]:
    """The cassette line (a JSON-able dict, not yet redacted) of one finished call."""
    request = outcome.request
    body: Any = None
    if bodies != "none":
        body = _json_or_text(request.body)
    candidate = outcome.candidate
    usage = outcome.usage
    started = ended - outcome.duration_s
    stream = outcome.stream if request.stream is None else request.stream
    return {
        "v": VERSION,
        "id": request.request_id,
        "time": datetime.fromtimestamp(started, UTC).isoformat(timespec="milliseconds"),
        "api": request.api,
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "headers": _headers(request.headers),
        "body": body,
        "backend": candidate.backend if candidate else request.backend,
        "model": candidate.requested_model if candidate else request.model,
        "upstream_model": candidate.upstream_model if candidate else None,
        "stream": stream,
        "upstream_request": _json_or_text(outcome.upstream_body)
        if bodies != "none" and outcome.upstream_body is not None
        else None,
        **_reply(request.api, outcome if bodies == "all" else None),
        "status": outcome.status,
        "error": outcome.error.value if outcome.error else None,
        "error_message": outcome.error_message,
        "disconnected": outcome.disconnected,
        "usage": {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_read_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
        },
        "cost_usd": outcome.cost_usd,
        "ttft_s": outcome.ttft_s,
        "duration_s": outcome.duration_s,
        "degradations": list(outcome.degradations),
    }


def _headers(headers: Any) -> dict[str, str]:
    """The client's headers minus hop-by-hop ones, credentials replaced by name (whatever their
    value looks like; bodies are left to the key-shape scan)."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower not in _DROP_HEADERS:
            out[name] = REDACTED if lower in SECRET_HEADERS else value
    return out


def _reply(api: str, outcome: Outcome | None) -> dict[str, Any]:
    """`response`: the reply body, or a stream's events folded into the message a non-streaming
    call would have returned; and for a stream, its `events` as the client got them."""
    if outcome is None:
        return {"response": None, "events": None}
    if not outcome.events:
        return {"response": outcome.response, "events": None}
    # one parse for the whole stream (each element is an event dict: the pipeline dumped dicts)
    events = codec.loads(b"[" + b",".join(outcome.events) + b"]")
    return {"response": fold(api, events).response, "events": events}


def _json_or_text(raw: bytes) -> Any:
    try:
        return codec.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {"_text": raw.decode("utf-8", "replace")}


class _Rotating:
    """Append-only 0600 files under a size cap (see the module docstring for the names)."""

    def __init__(self, target: Path, max_bytes: int, wall_clock: Callable[[], float]) -> None:
        self._target = target
        self._max = max_bytes
        self._wall = wall_clock
        self._dir = target.suffix != ".jsonl"
        self._fd: int | None = None
        self._size = 0
        self._seq = 0
        self.current: Path | None = None

    def __str__(self) -> str:
        return str(self.current or self._target)

    def open(self) -> None:
        folder = self._target if self._dir else self._target.parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._open_next()

    def _name(self) -> Path:
        if self._dir:
            stamp = datetime.fromtimestamp(self._wall(), UTC).strftime("%Y%m%dT%H%M%S")
            self._seq += 1
            return self._target / f"anyllm-{stamp}-{os.getpid()}-{self._seq:04d}.jsonl"
        return self._target

    def _open_next(self) -> None:
        path = self._name()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        self._fd, self.current, self._size = fd, path, os.fstat(fd).st_size

    def write(self, data: bytes) -> None:
        if self._fd is None:
            raise OSError("the recording file is closed")
        if self._size and self._size + len(data) > self._max:
            self._rotate()
        view = memoryview(data)
        while view:  # a regular file takes it all at once; a short write is finished, not lost
            view = view[os.write(self._fd, view) :]
        self._size += len(data)

    def _rotate(self) -> None:
        self.close()
        if not self._dir:
            while True:
                self._seq += 1
                old = self._target.with_suffix(f".{self._seq:04d}.jsonl")
                if not old.exists():
                    break
            self._target.rename(old)
        self._open_next()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def recorder_for(settings: Settings) -> Recorder:
    """The Recorder `serve --record` installs: the settings' target, with every key the proxy
    knows (its own and the backends') named for redaction."""
    record = settings.record
    if record is None:
        raise ValueError("recording is off in these settings")
    secrets = [*settings.proxy_api_keys]
    secrets += [b.api_key for b in settings.backends.values() if b.api_key]
    options = RecordOptions(
        record.path,
        bodies=record.bodies,  # type: ignore[arg-type]  # checked by config
        sample=record.sample,
        max_bytes=record.max_bytes,
    )
    return Recorder(options, secrets=secrets)
