"""build_backend picks the implementation by kind."""

from __future__ import annotations

import httpx
import pytest

from anyllm_cli.backends import EchoBackend, OpenAIBackend, build_backend
from anyllm_cli.config import BackendSettings
from anyllm_cli.errors import ConfigError


def test_build_backend_by_kind() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    openai = BackendSettings(name="o", kind="openai", base_url="http://x/v1")
    echo = BackendSettings(name="e", kind="echo", base_url="echo://offline")
    assert isinstance(build_backend(openai, client), OpenAIBackend)
    assert isinstance(build_backend(echo, client), EchoBackend)
    assert build_backend(openai, client).settings is openai
    with pytest.raises(ConfigError, match=r"backends\.g\.kind"):
        build_backend(BackendSettings(name="g", kind="palm", base_url="http://x/v1"), client)
