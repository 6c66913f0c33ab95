"""The common ground of stream translators that read Anthropic events (for OpenAI and Gemini
clients): the event count that error paths name, checked reads of `index` and object fields, and
degradations recorded once per code and detail so a long stream cannot grow the list unbounded."""

from __future__ import annotations

from typing import Any

from anyllm_cli.errors import InvalidInput
from anyllm_cli.translate.degradation import Degradation


class AnthropicEventReader:
    def __init__(self) -> None:
        self.degradations: list[Degradation] = []
        self._count = 0  # events fed, for error paths
        self._noted: set[str] = set()

    def _note(self, code: str, detail: str) -> None:
        """Once per code and detail: a long stream must not grow the list without bound."""
        if (key := f"{code}:{detail}") not in self._noted:
            self._noted.add(key)
            self.degradations.append(Degradation(code, detail, f"event {self._count}"))

    def _index(self, event: dict[str, Any]) -> int:
        index = event.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise InvalidInput("index must be a non-negative integer", f"event {self._count}.index")
        return index

    def _dict(self, event: dict[str, Any], key: str) -> dict[str, Any]:
        value = event.get(key)
        if not isinstance(value, dict):
            raise InvalidInput(f"`{key}` must be an object", f"event {self._count}.{key}")
        return value
