"""Which upstream model serves a requested model name.

An explicit map wins; otherwise Claude family names follow the big/small rule (haiku -> small,
sonnet and opus -> big) when those are configured; otherwise the name passes through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ModelMap:
    explicit: Mapping[str, str] = field(default_factory=dict)
    big: str | None = None
    small: str | None = None

    def __call__(self, requested: str) -> str:
        if requested in self.explicit:
            return self.explicit[requested]
        lowered = requested.lower()
        if "haiku" in lowered and self.small:
            return self.small
        if ("sonnet" in lowered or "opus" in lowered) and self.big:
            return self.big
        if "claude" in lowered and self.big:
            return self.big
        return requested


def parse_model_map(pairs: list[str]) -> dict[str, str]:
    """['a=b', 'c=d'] -> {'a': 'b', 'c': 'd'}; raises ValueError naming the bad pair."""
    out: dict[str, str] = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise ValueError(f"model map {pair!r} is not FROM=TO")
        out[source.strip()] = target.strip()
    return out
