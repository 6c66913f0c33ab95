"""Which upstream model serves a requested name: explicit map, then the big/small rule."""

from __future__ import annotations

import pytest

from anyllm_cli.config.model_map import ModelMap, parse_model_map


def test_explicit_wins_then_the_claude_families() -> None:
    models = ModelMap({"claude-opus-4-1": "exact"}, big="big-up", small="small-up")
    assert models("claude-opus-4-1") == "exact"
    assert models("claude-sonnet-4-6") == "big-up"
    assert models("claude-3-5-haiku-latest") == "small-up"
    assert models("gpt-4o") == "gpt-4o"


def test_without_big_and_small_names_pass_through() -> None:
    assert ModelMap()("claude-sonnet-4-6") == "claude-sonnet-4-6"


def test_pairs_parse_and_bad_ones_are_named() -> None:
    assert parse_model_map(["a=b", " c = d "]) == {"a": "b", "c": "d"}
    with pytest.raises(ValueError, match="'nope'"):
        parse_model_map(["nope"])
