"""What one Messages -> Chat translation carries along, shared by every `_chat_*` module.

`ChatOptions` (how the upstream differs from stock OpenAI), `ChatContext` (the options, the
degradations recorded so far, the tool ids rewritten), `chat_tool_id` and the small text helpers.
It sits at the bottom of the `messages_via_chat` modules so none of them imports another sideways
for its types; `messages_via_chat` re-exports the public names. Gives up nothing: no translation
happens here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from anyllm_cli.translate._gemini_reply import split_tool_id
from anyllm_cli.translate.degradation import Degradation

Parts = list[dict[str, Any]]


def _identity(name: str) -> str:
    return name


@dataclass(frozen=True, slots=True)
class ChatOptions:
    map_model: Callable[[str], str] = _identity
    file_parts: bool = True  # upstream accepts {"type":"file"} parts (PDF); else degrade
    max_output_tokens: int | None = None  # clamp max_tokens to this
    prompt_cache_key: str | None = None  # sent as prompt_cache_key
    include_usage: bool = True  # stream_options.include_usage when streaming
    reasoning_field: str | None = "reasoning_content"  # assistant field for thinking history
    reasoning_model: bool = False  # o-series: max_completion_tokens, no sampling, developer role


@dataclass(slots=True)
class ChatContext:
    """What one translation carries along: options, the degradations so far, rewritten ids."""

    options: ChatOptions
    degradations: list[Degradation] = field(default_factory=list)
    recorded: set[str] = field(default_factory=set)
    rewritten: set[str] = field(default_factory=set)

    def note(self, code: str, detail: str, path: str = "") -> None:
        self.degradations.append(Degradation(code, detail, path))

    def once(self, code: str, detail: str, path: str = "") -> None:
        if code not in self.recorded:
            self.recorded.add(code)
            self.note(code, detail, path)

    def call_id(self, raw: str, path: str) -> str:
        raw = split_tool_id(raw)[0]  # a Gemini signature riding in the id goes in extra_content
        new = chat_tool_id(raw)
        if new != raw and raw not in self.rewritten:
            self.rewritten.add(raw)
            self.note("tool_id_rewritten", f"{raw!r} -> {new!r} (OpenAI ids: <=40 chars)", path)
        return new


def join(texts: Any) -> str:
    return "\n\n".join(t for t in texts if t)


_LEGAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def chat_tool_id(raw: str) -> str:
    """A tool-call id OpenAI accepts (<=40 chars of [A-Za-z0-9_-]); legal ids are kept as they are.

    Others become their first 29 legal characters, "_", and 10 hex digits of their sha256: the
    same input always maps to the same id, so calls and results still pair up.
    """
    if _LEGAL_ID.match(raw):
        return raw
    clean = re.sub(r"[^A-Za-z0-9_-]", "_", raw)[:29]
    return f"{clean}_{hashlib.sha256(raw.encode()).hexdigest()[:10]}"
