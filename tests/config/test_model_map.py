"""The README's promise about model names, as tests (README "The proxy")."""

from __future__ import annotations

import pytest

from anyllm_cli.config.model_map import ModelMap, parse_model_map

BOTH = ModelMap(explicit={"claude-opus-4-8": "special"}, big="big", small="small")


@pytest.mark.parametrize(
    ("requested", "sent"),
    [
        ("claude-opus-4-8", "special"),  # the explicit map first
        ("claude-haiku-4-5", "small"),
        ("claude-sonnet-4-6", "big"),
        ("claude-opus-4-1", "big"),
        ("claude-instant-1.2", "big"),  # any other claude name goes to the big model
        ("Claude-Next", "big"),
        ("gpt-5", "gpt-5"),  # anything else passes through
        ("my-sonnet-finetune", "big"),  # substrings, not families
    ],
)
def test_names_resolve_in_the_readme_order(requested: str, sent: str) -> None:
    assert BOTH(requested) == sent


def test_haiku_goes_big_without_a_small_model_and_nothing_moves_without_either() -> None:
    assert ModelMap(big="big")("claude-haiku-4-5") == "big"
    assert ModelMap(small="small")("claude-sonnet-4-6") == "claude-sonnet-4-6"
    assert ModelMap()("claude-haiku-4-5") == "claude-haiku-4-5"


def test_parse_model_map() -> None:
    assert parse_model_map(["a=b", " c = d "]) == {"a": "b", "c": "d"}
    with pytest.raises(ValueError, match="not FROM=TO"):
        parse_model_map(["a"])
