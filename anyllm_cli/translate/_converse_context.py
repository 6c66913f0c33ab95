"""What one Messages -> Converse request translation carries along, for every `_converse_*` module.

`ConverseOptions` (model mapping, output-token clamp, Claude-only extras) and `ConverseContext` (the
options, whether the model is Claude, the degradations so far, tool names used in the history, the
documents numbered, the tool ids rewritten). `messages_via_converse` re-exports `ConverseOptions`.
Gives up nothing: no translation happens here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from anyllm_cli.translate.degradation import Degradation


def _identity(name: str) -> str:
    return name


@dataclass(frozen=True, slots=True)
class ConverseOptions:
    map_model: Callable[[str], str] = _identity
    max_output_tokens: int | None = None  # clamp max_tokens to this
    anthropic_beta: tuple[str, ...] = ()  # sent in additionalModelRequestFields (Claude only)
    # None: decide by the model id ("anthropic." / "claude" in it)
    anthropic_model: bool | None = None


_LEGAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(slots=True)
class ConverseContext:
    options: ConverseOptions
    anthropic: bool
    degradations: list[Degradation] = field(default_factory=list)
    recorded: set[str] = field(default_factory=set)
    tool_names: dict[str, None] = field(default_factory=dict)  # names used in the history
    documents: int = 0
    rewritten: set[str] = field(default_factory=set)

    def note(self, code: str, detail: str, path: str = "") -> None:
        self.degradations.append(Degradation(code, detail, path))

    def once(self, code: str, detail: str, path: str = "") -> None:
        if code not in self.recorded:
            self.recorded.add(code)
            self.note(code, detail, path)

    def tool_id(self, raw: str, path: str) -> str:
        if _LEGAL_ID.match(raw):
            return raw
        clean = re.sub(r"[^A-Za-z0-9_-]", "_", raw)[:53]
        new = f"{clean}_{hashlib.sha256(raw.encode()).hexdigest()[:10]}"
        if raw not in self.rewritten:
            self.rewritten.add(raw)
            self.note("tool_id_rewritten", f"{raw!r} -> {new!r} (Converse ids)", path)
        return new
