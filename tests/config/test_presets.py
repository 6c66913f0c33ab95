"""Presets are data: every one is well formed, and the facts the proxy relies on hold."""

from __future__ import annotations

import re

import pytest

from anyllm_cli.config import is_local_url, normalize_base_url
from anyllm_cli.config.presets import PRESETS

ISSUE_PRESETS = [
    "openai",
    "openrouter",
    "deepseek",
    "groq",
    "together",
    "mistral",
    "fireworks",
    "xai",
    "ollama",
    "vllm",
    "lmstudio",
    "llamacpp",
    # issue 4: the other kinds of backend, and provider quirks as data
    "zhipu",
    "azure",
    "gemini",
    "gemini-openai",
    "vertex",
    "bedrock",
    "anthropic",
]


def test_the_issue_list_exactly() -> None:
    assert list(PRESETS) == ISSUE_PRESETS


@pytest.mark.parametrize("name", ISSUE_PRESETS)
def test_preset_is_well_formed(name: str) -> None:
    preset = PRESETS[name]
    assert preset.name == name
    if preset.base_url:  # azure and vertex build theirs from the resource or project
        assert normalize_base_url(preset.base_url) == preset.base_url  # already normal
        assert is_local_url(preset.base_url) is preset.local
    assert preset.local or preset.key_env is not None  # a cloud preset always names its key
    for var in (*preset.key_names(), *preset.base_url_env):
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", var)
    assert all(isinstance(v, int) and v > 0 for v in preset.max_output_tokens.values())
    assert preset.description


def test_known_facts() -> None:
    assert PRESETS["deepseek"].key_env == "DEEPSEEK_API_KEY"
    assert PRESETS["deepseek"].max_output_tokens["deepseek-chat"] == 8192
    assert PRESETS["openai"].max_output_tokens["gpt-4o"] == 16384
    assert PRESETS["openai"].max_output_tokens["gpt-4.1"] == 32768
    bedrock = PRESETS["bedrock"].max_output_tokens
    assert bedrock["amazon.nova-pro-v1:0"] == bedrock["us.amazon.nova-pro-v1:0"] == 10000
    assert not any("claude" in model for model in bedrock)  # Claude goes through InvokeModel
    assert PRESETS["openai"].base_url_env == ("OPENAI_BASE_URL", "OPENAI_API_BASE")
    assert PRESETS["openrouter"].reasoning_field == "reasoning"
    assert {n for n, p in PRESETS.items() if p.local} == {"ollama", "vllm", "lmstudio", "llamacpp"}
