"""Azure OpenAI: deployment URLs with api-version, the v1 surface, api-key or Entra bearer auth."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from anyllm_cli.backends import build_backend
from anyllm_cli.backends.azure import AzureBackend
from anyllm_cli.config import BackendSettings

pytestmark = pytest.mark.anyio

SETTINGS = BackendSettings(
    name="az",
    kind="azure",
    base_url="https://res.openai.azure.com/openai",
    api_key="az-key",
    api_version="2024-10-21",
    deployment="gpt 4o",
    max_retries=0,
)


def _backend(settings: BackendSettings, seen: list[httpx.Request]) -> AzureBackend:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    backend = build_backend(settings, httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    assert isinstance(backend, AzureBackend)
    return backend


async def test_classic_deployment_url_and_api_key() -> None:
    seen: list[httpx.Request] = []
    await _backend(SETTINGS, seen).send("/chat/completions", {"model": "m"}, {"x-api-key": "c"})
    sent = seen[0]
    assert str(sent.url) == (
        "https://res.openai.azure.com/openai/deployments/gpt%204o/chat/completions"
        "?api-version=2024-10-21"
    )
    assert sent.headers["api-key"] == "az-key"
    assert "authorization" not in sent.headers and "x-api-key" not in sent.headers


async def test_responses_use_the_resource_path_with_the_version() -> None:
    seen: list[httpx.Request] = []
    backend = _backend(replace(SETTINGS, api_format="responses"), seen)
    assert backend.api == "responses"
    await backend.send("/responses", {"model": "m"})
    assert (
        str(seen[0].url) == "https://res.openai.azure.com/openai/responses?api-version=2024-10-21"
    )


async def test_the_v1_surface_keeps_paths() -> None:
    seen: list[httpx.Request] = []
    v1 = replace(SETTINGS, base_url="https://res.openai.azure.com/openai/v1", api_version=None)
    await _backend(v1, seen).send("/chat/completions", {"model": "m"})
    assert str(seen[0].url) == "https://res.openai.azure.com/openai/v1/chat/completions"


async def test_entra_token_from_a_command(tmp_path: Path) -> None:
    script = tmp_path / "print_token.py"
    script.write_text("print('entra-token-1')\n")
    settings = replace(SETTINGS, api_key=None, token_command=f"{sys.executable} {script}")
    seen: list[httpx.Request] = []
    await _backend(settings, seen).send("/chat/completions", {})
    assert seen[0].headers["authorization"] == "Bearer entra-token-1"
    assert "api-key" not in seen[0].headers
