"""The price table: USD for a call's usage, from genai-prices, with per-model overrides.

    [prices."MODEL"] in the config (USD per million tokens)  >  a local backend (0)  >  genai-prices

`genai-prices` is a maintained table of providers' prices, matched by model name; its `input_tokens`
includes cache reads and writes, as our `Usage` does, and it applies the cache rates itself. A
backend on this machine or a private network costs nothing unless its model is priced in the config.
A model nobody prices gives None (spend records 0 and the reply has no `x-anyllm-cost`); each such
model is looked up once.

Batch rates (`batch=True`, for items a provider's batch API ran): genai-prices' own batch prices
where it has them (`price_context={"processing": "batch"}`), else half the standard price (both
OpenAI and Anthropic bill batches at 50%); a `[prices]` override is halved the same way.

What it gives up: prices are matched by model name only (not by the backend's provider), so a model
resold at another price needs an override.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping

from anyllm_cli.config import Settings, is_local_url
from anyllm_cli.pipeline.seams import Usage

log = logging.getLogger("anyllm.keys")
PER_MILLION = 1_000_000
BATCH_DISCOUNT = 0.5  # OpenAI Batch and Anthropic Message Batches: half the standard price


class PriceTable:
    def __init__(
        self,
        overrides: Mapping[str, Mapping[str, float]] | None = None,
        free_backends: Collection[str] = (),
    ) -> None:
        self._overrides = dict(overrides or {})
        self._free = frozenset(free_backends)
        self._unknown: set[str] = set()

    @classmethod
    def for_settings(cls, settings: Settings) -> PriceTable:
        """The table a command's settings call for: `[prices]` overrides, local backends free."""
        overrides = settings.store.prices if settings.store is not None else {}
        return cls(overrides, local_backends(settings))

    def price(self, backend: str, model: str, usage: Usage, *, batch: bool = False) -> float | None:
        if model in self._overrides:
            cost = _override(self._overrides[model], usage)
            return cost * BATCH_DISCOUNT if batch else cost
        if backend in self._free:
            return 0.0
        if model in self._unknown:
            return None
        from genai_prices import Usage as PriceUsage
        from genai_prices import calc_price

        counted = PriceUsage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens or None,
            cache_write_tokens=usage.cache_write_tokens or None,
        )
        try:
            standard = float(calc_price(counted, model_ref=model).total_price)
            if not batch:
                return standard
            context = {"processing": "batch"}
            rated = float(calc_price(counted, model_ref=model, price_context=context).total_price)
            # no batch price in the table (the standard one came back): the providers' 50%
            return rated if rated < standard else standard * BATCH_DISCOUNT
        except LookupError:
            self._unknown.add(model)
            log.info("no price known for model %s: its calls record $0", model)
            return None


def _override(rates: Mapping[str, float], usage: Usage) -> float:
    cached = usage.cache_read_tokens + usage.cache_write_tokens
    fresh = max(0, usage.input_tokens - cached)
    input_rate = rates.get("input", 0.0)
    total = (
        fresh * input_rate
        + usage.cache_read_tokens * rates.get("cache_read", input_rate)
        + usage.cache_write_tokens * rates.get("cache_write", input_rate)
        + usage.output_tokens * rates.get("output", 0.0)
    )
    return total / PER_MILLION


def local_backends(settings: Settings) -> set[str]:
    """Backends on this machine or a private network: their models cost 0 unless priced."""
    from anyllm_cli.config.presets import PRESETS

    out: set[str] = set()
    for name, b in settings.backends.items():
        preset = PRESETS.get(b.preset or "")
        if (
            b.kind == "echo"
            or (preset and preset.local)
            or (b.base_url and is_local_url(b.base_url))
        ):
            out.add(name)
    return out
