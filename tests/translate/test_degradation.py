"""Degradation records read well and carry their path."""

from __future__ import annotations

from anyllm_cli.translate.degradation import Degradation, Translated, clamp_max_tokens


def test_a_degradation_names_its_code_and_path() -> None:
    assert str(Degradation("top_k_dropped", "no top_k upstream", "top_k")) == (
        "top_k_dropped at top_k: no top_k upstream"
    )
    assert str(Degradation("x", "why")) == "x: why"


def test_a_translation_starts_without_degradations() -> None:
    assert Translated({"a": 1}).degradations == []


def test_one_clamp_rule_for_every_hop() -> None:
    assert clamp_max_tokens(64000, 8192) == (
        8192,
        Degradation("max_tokens_clamped", "64000 -> 8192", "max_tokens"),
    )
    assert clamp_max_tokens(100, None) == (100, None)
    assert clamp_max_tokens(0, None)[0] == 1  # at least the upstream's minimum
    sent, note = clamp_max_tokens(5, 100, floor=16, path="max_output_tokens")
    assert sent == 16 and note is not None and note.path == "max_output_tokens"
