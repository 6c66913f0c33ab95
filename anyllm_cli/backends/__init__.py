"""Upstreams behind one Protocol: `build_backend(settings, client)` picks the module by kind.

`openai` is any OpenAI-compatible Chat Completions server (the presets in `config/presets.py` are
data for it); `anthropic` is the Anthropic API or a server speaking its format; `azure` is Azure
OpenAI; `gemini` and `vertex` are Google's generateContent APIs; `bedrock` is Amazon Bedrock; `echo`
is the offline backend. All network I/O goes through `_http.py` and the one shared client that
`build_client()` makes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from anyllm_cli.backends._http import RetryPolicy, build_client
from anyllm_cli.backends.anthropic import AnthropicBackend
from anyllm_cli.backends.azure import AzureBackend
from anyllm_cli.backends.base import Backend, StreamContext, UpstreamReply, UpstreamStream
from anyllm_cli.backends.bedrock import BedrockBackend
from anyllm_cli.backends.echo import EchoBackend
from anyllm_cli.backends.gemini import GeminiBackend
from anyllm_cli.backends.openai import OpenAIBackend
from anyllm_cli.errors import ConfigError

if TYPE_CHECKING:
    from anyllm_cli.config import BackendSettings


def build_backend(
    settings: BackendSettings, client: httpx.AsyncClient, *, retry: RetryPolicy | None = None
) -> Backend:
    """The backend for `settings.kind`, sending through the shared `client`."""
    if settings.kind == "openai":
        return OpenAIBackend(settings, client, retry=retry)
    if settings.kind == "azure":
        return AzureBackend(settings, client, retry=retry)
    if settings.kind in ("gemini", "vertex"):
        return GeminiBackend(settings, client, retry=retry)
    if settings.kind == "bedrock":
        return BedrockBackend(settings, client, retry=retry, region=settings.region)
    if settings.kind == "anthropic":
        return AnthropicBackend(settings, client, retry=retry)
    if settings.kind == "echo":
        return EchoBackend(settings, client)
    raise ConfigError(f"backends.{settings.name}.kind: unknown kind {settings.kind!r}")


__all__ = [
    "AnthropicBackend",
    "AzureBackend",
    "BedrockBackend",
    "Backend",
    "EchoBackend",
    "GeminiBackend",
    "OpenAIBackend",
    "RetryPolicy",
    "StreamContext",
    "UpstreamReply",
    "UpstreamStream",
    "build_backend",
    "build_client",
]
