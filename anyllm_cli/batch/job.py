"""One shape for a batch, whichever provider's format it came in: items, limits, format detection.

A batch file is JSONL; its format is read off its first non-blank line (Anthropic lines carry
`params`, OpenAI lines `method`, `url` and `body`). Validation collects every bad line (up to
`MAX_PROBLEMS`) and raises one `BatchInvalid` naming them by line number, so a user fixes the file
in one pass. Results are kept neutral (`ItemResult`: the client's reply body, or an error kind and
message) and rendered into each provider's result lines by `anthropic.py` / `openai.py`.

What it gives up: the whole file is held in memory while it is validated (256 MB at most).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from anyllm_cli.errors import ErrorKind, InvalidInput

Format = Literal["anthropic", "openai"]
JobAPI = Literal["messages", "chat", "forward"]  # "forward": passed through (`endpoint` names it)
ResultType = Literal["succeeded", "errored", "canceled", "expired"]

MAX_REQUESTS = 100_000
MAX_BYTES = 256 * 1024 * 1024
MAX_PROBLEMS = 20


@dataclass(frozen=True, slots=True)
class BatchItem:
    custom_id: str
    body: bytes  # the client request body, as the API named by the job's `api` takes it
    line: int  # 1-based line in the file (or position in the create body's `requests`)


@dataclass(frozen=True, slots=True)
class BatchJob:
    format: Format
    api: JobAPI
    endpoint: str  # "/v1/messages" or the OpenAI lines' url
    items: tuple[BatchItem, ...]

    @property
    def models(self) -> frozenset[str]:
        return frozenset(_model(item.body) for item in self.items)


@dataclass(frozen=True, slots=True)
class ItemResult:
    """What became of one item: a reply body (the client API's), an error, or never run."""

    type: ResultType
    status: int = 200
    body: dict[str, Any] | None = None  # succeeded: the reply; errored passthrough: the upstream's
    error_kind: ErrorKind | None = None  # errored
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "status": self.status}
        if self.body is not None:
            out["body"] = self.body
        if self.error_kind is not None:
            out["error_kind"] = self.error_kind.value
        if self.message:
            out["message"] = self.message
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ItemResult:
        kind = data.get("error_kind")
        return cls(
            type=data["type"],
            status=int(data.get("status", 200)),
            body=data.get("body"),
            error_kind=ErrorKind(kind) if kind else None,
            message=str(data.get("message", "")),
        )


class BatchInvalid(InvalidInput):
    """A batch refused before acceptance; `problems` names each bad line."""

    def __init__(self, problems: list[tuple[int, str]], *, kind: ErrorKind | None = None) -> None:
        shown = "; ".join(f"line {line}: {msg}" if line else msg for line, msg in problems)
        more = " (and more)" if len(problems) >= MAX_PROBLEMS else ""
        super().__init__(f"invalid batch: {shown}{more}")
        self.problems = problems
        if kind is not None:
            self.kind = kind


def check_size(data: bytes) -> None:
    if len(data) > MAX_BYTES:
        raise BatchInvalid(
            [(0, f"the batch is {len(data)} bytes; the limit is {MAX_BYTES} (256 MB)")],
            kind=ErrorKind.REQUEST_TOO_LARGE,
        )


def lines(data: bytes) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, parsed object) per non-blank line, or (line number, problem) when it does not
    parse as a JSON object."""
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except ValueError as exc:
            yield number, f"not valid JSON ({exc})"
            continue
        yield number, value if isinstance(value, dict) else "expected a JSON object"


def detect(data: bytes) -> Format:
    """The format of a batch file, from its first non-blank line."""
    for number, value in lines(data):
        if isinstance(value, str):
            raise BatchInvalid([(number, value)])
        if "params" in value:
            return "anthropic"
        if "body" in value and "url" in value:
            return "openai"
        raise BatchInvalid(
            [
                (
                    number,
                    'neither an Anthropic line ({"custom_id", "params"}) nor an OpenAI line '
                    '({"custom_id", "method", "url", "body"})',
                )
            ]
        )
    raise BatchInvalid([(0, "the batch is empty")])


class Collector:
    """Gathers items and problems while a format module walks its lines."""

    def __init__(self) -> None:
        self.items: list[BatchItem] = []
        self.problems: list[tuple[int, str]] = []
        self._seen: dict[str, int] = {}

    @property
    def full(self) -> bool:
        return len(self.problems) >= MAX_PROBLEMS

    def problem(self, line: int, message: str) -> None:
        if not self.full:
            self.problems.append((line, message))

    def add(self, custom_id: str, body: dict[str, Any], line: int) -> None:
        first = self._seen.get(custom_id)
        if first is not None:
            self.problem(line, f"custom_id {custom_id!r} repeats line {first}; it must be unique")
            return
        self._seen[custom_id] = line
        if body.get("stream"):
            self.problem(line, "stream is not supported in a batch")
            return
        self.items.append(BatchItem(custom_id, json.dumps(body).encode(), line))

    def finish(self) -> list[BatchItem]:
        if not self.problems and not self.items:
            self.problems.append((0, "the batch is empty"))
        if not self.problems and len(self.items) > MAX_REQUESTS:
            self.problems.append(
                (0, f"the batch has {len(self.items)} requests; the limit is {MAX_REQUESTS}")
            )
        if self.problems:
            raise BatchInvalid(self.problems)
        return self.items


def _model(body: bytes) -> str:
    model = json.loads(body).get("model")
    return model if isinstance(model, str) else ""


def load(data: bytes, fmt: Format | None = None) -> BatchJob:
    """Parse and validate a batch file of either format (detected unless given)."""
    from anyllm_cli.batch import anthropic, openai

    check_size(data)
    fmt = fmt or detect(data)
    return anthropic.from_jsonl(data) if fmt == "anthropic" else openai.from_jsonl(data)
