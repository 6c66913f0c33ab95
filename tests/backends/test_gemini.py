"""Gemini and Vertex backends: model paths on the API root, key or bearer auth, never the client's."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from anyllm_cli.backends import build_backend
from anyllm_cli.backends.gemini import GeminiBackend
from anyllm_cli.config import BackendSettings

pytestmark = pytest.mark.anyio

GEMINI = BackendSettings(
    name="g",
    kind="gemini",
    base_url="https://generativelanguage.googleapis.com/v1beta",
    api_key="g-key",
    max_retries=0,
)
VERTEX_URL = "https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/google"
CLIENT = {"x-api-key": "client-key", "authorization": "Bearer client-key"}


def _backend(settings: BackendSettings, seen: list[httpx.Request]) -> GeminiBackend:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "alt=sse" in str(request.url):
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b"")
        return httpx.Response(200, json={"candidates": []})

    backend = build_backend(settings, httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    assert isinstance(backend, GeminiBackend) and backend.api == "gemini"
    return backend


async def test_gemini_api_key_header_and_model_path() -> None:
    seen: list[httpx.Request] = []
    await _backend(GEMINI, seen).send("/models/gemini-2.5-pro:generateContent", {}, CLIENT)
    sent = seen[0]
    assert str(sent.url) == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:generateContent"
    )
    assert sent.headers["x-goog-api-key"] == "g-key"
    assert "authorization" not in sent.headers and "x-api-key" not in sent.headers


async def test_vertex_token_from_the_environment() -> None:
    settings = BackendSettings(
        name="v", kind="vertex", base_url=VERTEX_URL, api_key="ya29.token", max_retries=0
    )
    seen: list[httpx.Request] = []
    backend = _backend(settings, seen)
    async with backend.stream("/models/gemini-3-pro:streamGenerateContent?alt=sse", {}, CLIENT):
        pass
    assert str(seen[0].url) == f"{VERTEX_URL}/models/gemini-3-pro:streamGenerateContent?alt=sse"
    assert seen[0].headers["authorization"] == "Bearer ya29.token"
    assert "x-goog-api-key" not in seen[0].headers


async def test_vertex_token_from_a_command(tmp_path: Path) -> None:
    script = tmp_path / "gcloud.py"
    script.write_text("print('ya29.from-command')\n")
    settings = BackendSettings(
        name="v",
        kind="vertex",
        base_url=VERTEX_URL,
        token_command=f"{sys.executable} {script}",
        max_retries=0,
    )
    seen: list[httpx.Request] = []
    await _backend(settings, seen).send("/models/m:generateContent", {}, CLIENT)
    assert seen[0].headers["authorization"] == "Bearer ya29.from-command"
