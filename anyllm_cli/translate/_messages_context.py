"""What one Chat -> Messages request translation carries along, for every `_messages_*` module.

`MessagesContext` (the degradations so far, the system blocks gathered, the cache breakpoints used,
where each tool id came from), `Turn` (one Anthropic turn being built) and `tool_id`. It sits at
the bottom of the `chat_via_messages` modules so none of them imports another sideways for its
types; `chat_via_messages` re-exports `tool_id`. Gives up nothing: no translation happens here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from anyllm_cli.translate.degradation import Degradation

_ID_OK = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_ID_BAD_CHARS = re.compile(r"[^a-zA-Z0-9_-]")


def tool_id(raw: str) -> str:
    """A tool-call id Anthropic accepts: kept when legal, else sanitised plus a hash of the original.

    A pure function of the id, so `tool_calls[].id` and `tool_call_id` map to the same value.
    """
    if _ID_OK.fullmatch(raw):
        return raw
    digest = hashlib.sha256(raw.encode()).hexdigest()[:12]
    stem = _ID_BAD_CHARS.sub("_", raw)[:48]
    return f"{stem}_{digest}" if stem else f"call_{digest}"


@dataclass(slots=True)
class MessagesContext:
    degradations: list[Degradation] = field(default_factory=list)
    system: list[dict[str, Any]] = field(default_factory=list)
    breakpoints: int = 0
    where: dict[str, str] = field(default_factory=dict)  # tool id -> path of its call or result

    def note(self, code: str, detail: str, path: str = "") -> None:
        self.degradations.append(Degradation(code, detail, path))


@dataclass(slots=True)
class Turn:
    role: str
    blocks: list[dict[str, Any]]
    path: str = "messages"  # the last message merged into it
