"""Azure OpenAI: the OpenAI backend with Azure's URLs and auth, for Chat and Responses alike.

| settings                      | URL for /chat/completions (and /responses)                           |
| ----------------------------- | -------------------------------------------------------------------- |
| api_version + deployment      | {endpoint}/openai/deployments/{deployment}/chat/completions?api-version=V |
|                               | {endpoint}/openai/responses?api-version=V (the model names the deployment) |
| api_version, no deployment    | {endpoint}/openai/chat/completions?api-version=V                     |
| neither (the v1 surface)      | {endpoint}/openai/v1/chat/completions, the deployment as `model`     |

Auth: the key goes as `api-key`; with a `token_command` (Entra ID, e.g. `az account
get-access-token --query accessToken -o tsv`) its token goes as `Authorization: Bearer` instead.

What it gives up: a deployment serves one model, so with `deployment` set the body's model is
informative only; the model map still decides the `model` field for the v1 surface.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx

from anyllm_cli.backends._http import RetryPolicy
from anyllm_cli.backends.openai import OpenAIBackend, upstream_headers
from anyllm_cli.backends.tokens import TokenSource, bearer_auth

if TYPE_CHECKING:
    from anyllm_cli.config import BackendSettings

_DEPLOYMENT_PATHS = ("/chat/completions", "/completions", "/embeddings")


class AzureBackend(OpenAIBackend):
    def __init__(
        self,
        settings: BackendSettings,
        client: httpx.AsyncClient,
        *,
        retry: RetryPolicy | None = None,
        tokens: TokenSource | None = None,
    ) -> None:
        if tokens is None and settings.token_command and not settings.api_key:
            tokens = TokenSource(settings.token_command)
        super().__init__(
            settings, client, retry=retry, auth=bearer_auth(tokens) if tokens else None
        )

    def _headers(self, caller: Mapping[str, str], defaults: Mapping[str, str]) -> dict[str, str]:
        return upstream_headers(
            self.settings, caller, defaults, key_header="api-key", key_prefix=""
        )

    def _path(self, path: str) -> str:
        settings = self.settings
        if not settings.api_version:
            return path
        base, _, query = path.partition("?")
        if settings.deployment and base in _DEPLOYMENT_PATHS:
            base = f"/deployments/{quote(settings.deployment, safe='')}{base}"
        version = f"api-version={quote(settings.api_version, safe='')}"
        return f"{base}?{query}&{version}" if query else f"{base}?{version}"
