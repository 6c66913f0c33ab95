"""Degradation records read well and carry their path."""

from __future__ import annotations

from anyllm_cli.translate.degradation import Degradation, Translated


def test_a_degradation_names_its_code_and_path() -> None:
    assert str(Degradation("top_k_dropped", "no top_k upstream", "top_k")) == (
        "top_k_dropped at top_k: no top_k upstream"
    )
    assert str(Degradation("x", "why")) == "x: why"


def test_a_translation_starts_without_degradations() -> None:
    assert Translated({"a": 1}).degradations == []
