"""Named records of every lossy step a translation takes.

A translator never drops or alters something silently: it appends a `Degradation` whose `code` is a
stable name (`top_k_dropped`, `server_tool_dropped`, ...) that callers can match on, with a human
detail and, where it helps, the JSON path of what was lost. The CLI prints them to stderr (and fails
under --strict); the proxy logs them and can list them in a response header.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Degradation:
    code: str
    detail: str
    path: str = ""

    def __str__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"{self.code}{where}: {self.detail}"


@dataclass(slots=True)
class Translated(Generic[T]):
    """A translated body and what was lost on the way."""

    body: T
    degradations: list[Degradation] = field(default_factory=list)


def clamp_max_tokens(
    asked: int, limit: int | None, *, floor: int = 1, path: str = "max_tokens"
) -> tuple[int, Degradation | None]:
    """The output-token figure sent upstream, by the one rule every hop follows: what the caller
    asked, capped at the model's known `limit`, at least `floor` (the upstream's minimum). A
    change is recorded as `max_tokens_clamped` ("asked -> sent")."""
    sent = max(asked if limit is None else min(asked, limit), floor)
    if sent == asked:
        return sent, None
    return sent, Degradation("max_tokens_clamped", f"{asked} -> {sent}", path)
