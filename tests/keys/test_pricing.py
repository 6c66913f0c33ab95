"""Prices: genai-prices by model name, config overrides, local backends free, unknown None."""

from __future__ import annotations

import pytest

from anyllm_cli.keys.pricing import PriceTable
from anyllm_cli.pipeline.seams import Usage


def test_a_known_model_is_priced_by_genai_prices() -> None:
    from genai_prices import Usage as U
    from genai_prices import calc_price

    usage = Usage(input_tokens=1000, output_tokens=100)
    want = float(
        calc_price(U(input_tokens=1000, output_tokens=100), model_ref="gpt-4o").total_price
    )
    assert want > 0
    assert PriceTable().price("openai", "gpt-4o", usage) == pytest.approx(want)


def test_cache_reads_are_cheaper_than_fresh_input() -> None:
    table = PriceTable()
    fresh = table.price("a", "claude-sonnet-4-5", Usage(input_tokens=10_000, output_tokens=0))
    cached = table.price(
        "a", "claude-sonnet-4-5", Usage(input_tokens=10_000, cache_read_tokens=9_000)
    )
    assert fresh is not None and cached is not None and cached < fresh


def test_overrides_win_and_price_per_million() -> None:
    table = PriceTable({"gpt-4o": {"input": 1.0, "output": 2.0, "cache_read": 0.5}}, {"local"})
    usage = Usage(input_tokens=2_000_000, output_tokens=1_000_000, cache_read_tokens=1_000_000)
    assert table.price("openai", "gpt-4o", usage) == pytest.approx(1.0 + 0.5 + 2.0)
    assert table.price("local", "gpt-4o", usage) == pytest.approx(3.5)  # priced, even locally


def test_local_backends_are_free_and_unknown_models_unpriced() -> None:
    table = PriceTable(free_backends={"ollama"})
    assert table.price("ollama", "llama3.2", Usage(input_tokens=10)) == 0.0
    assert table.price("remote", "no-such-model-xyz", Usage(input_tokens=10)) is None
    assert table.price("remote", "no-such-model-xyz", Usage(input_tokens=10)) is None


def test_batch_rates_come_from_genai_prices_or_are_half() -> None:
    from genai_prices import Usage as U
    from genai_prices import calc_price

    table = PriceTable({"mine": {"input": 2.0, "output": 8.0}})
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    counted = U(input_tokens=1_000_000, output_tokens=1_000_000)
    listed = calc_price(counted, model_ref="gpt-4o", price_context={"processing": "batch"})
    assert table.price("openai", "gpt-4o", usage, batch=True) == pytest.approx(
        float(listed.total_price)
    )
    standard = table.price("deepseek", "deepseek-chat", usage)  # no batch price listed: half
    assert standard is not None and standard > 0
    assert table.price("deepseek", "deepseek-chat", usage, batch=True) == pytest.approx(
        standard / 2
    )
    assert table.price("x", "mine", usage, batch=True) == pytest.approx(5.0)  # overrides halved
