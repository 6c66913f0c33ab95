"""Amazon Bedrock Runtime: InvokeModel with Anthropic bodies, and Converse for the other models.

Paths are the service's own, under `https://bedrock-runtime.{region}.amazonaws.com` (or the
configured base URL when it is not empty; tests point it at loopback):

    /model/{model id, URL-quoted}/invoke | /invoke-with-response-stream | /converse | /converse-stream

`model_path(model, operation)` builds them. Every request is signed with SigV4 (service `bedrock`)
by botocore, imported lazily: credentials come from botocore's standard chain (env, profile, SSO,
instance role) unless given, and are re-read on every request so refreshable ones stay fresh. The
region comes from the `region` argument, a `bedrock-runtime.{region}` base URL, the caller-passed
`env` (AWS_REGION, AWS_DEFAULT_REGION), then the botocore profile.

`stream()` decodes the binary event stream (`eventstream.py`) and yields SSE bytes:

    .../invoke-with-response-stream  Anthropic SSE (`event: <type>` + the inner event JSON, Bedrock's
                                     invocation metrics removed), exceptions as `event: error`;
                                     the existing Anthropic relay consumes it unchanged
    .../converse-stream              `data: {"<event-type>": <payload>}` per message, exceptions as
                                     `data: {"<exception-type>": {"message": ...}}`; that is the
                                     input of `MessagesViaConverseStream` through `SSEPump`

Errors: the `x-amzn-ErrorType` header (or a `__type`/`code` body field) names the exception; the
shared table in `translate/messages_via_converse.py` gives its kind and status (Throttling 429,
ServiceUnavailable 529, Validation 400, AccessDenied 403, ModelTimeout 504, ...). Retries, timeouts
and transport errors are the shared `HTTPUpstream`'s; each attempt, retries included, is signed afresh.

What it gives up: Bedrock API keys (Bearer) are only sent through `settings.api_key`, unsigned;
no FIPS endpoints unless set as the base URL; no CountTokens helper (forward it).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import importlib
import json
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, urlsplit

import anyio
import httpx

from anyllm_cli import __version__
from anyllm_cli.backends._http import HTTPUpstream, RetryPolicy, parse_retry_after
from anyllm_cli.backends.base import NO_HEADERS, Api, StreamContext, UpstreamReply, UpstreamStream
from anyllm_cli.backends.eventstream import EventMessage, EventStreamDecoder
from anyllm_cli.errors import (
    ConfigError,
    ErrorKind,
    UpstreamError,
    anthropic_error,
    kind_from_status,
)
from anyllm_cli.translate import messages_via_invoke
from anyllm_cli.translate.messages_via_converse import bedrock_error
from anyllm_cli.translate.streams.sse import dumps, encode, encode_anthropic

if TYPE_CHECKING:
    from anyllm_cli.config import BackendSettings

ANTHROPIC_VERSION = messages_via_invoke.ANTHROPIC_VERSION
SERVICE = "bedrock"
Operation = Literal["invoke", "invoke-with-response-stream", "converse", "converse-stream"]
_HOST = re.compile(r"^bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com$")
_EVENTSTREAM = "application/vnd.amazon.eventstream"


def model_path(model: str, operation: Operation) -> str:
    """`/model/{id}/{operation}`; ARNs keep `:` but their `/` becomes %2F (one path segment)."""
    return f"/model/{quote(model, safe=':')}/{operation}"


def anthropic_body(body: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
    """A Messages body as InvokeModel wants it (`translate/messages_via_invoke.py`: only the fields
    and betas Bedrock documents; the pipeline records what it drops)."""
    return messages_via_invoke.request(body, messages_via_invoke.betas_of(headers)).body


def _botocore(module: str) -> Any:
    """A botocore module, imported on first use (it is an optional dependency, and untyped)."""
    try:
        return importlib.import_module(f"botocore.{module}")
    except ImportError:
        raise ConfigError(
            'the bedrock backend needs botocore: pip install "anyllm-cli[bedrock]"'
        ) from None


class _BedrockUpstream(HTTPUpstream):
    """The shared send/retry path (each attempt signed through the auth hook), with Bedrock's
    errors classified by their exception names."""

    def _status_error(self, response: httpx.Response) -> UpstreamError:
        status = response.status_code
        try:
            body = json.loads(response.content)
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        name = response.headers.get("x-amzn-errortype") or body.get("__type") or body.get("code")
        name = str(name or "").rsplit("#", 1)[-1]
        message = body.get("message") or body.get("Message") or response.text[:500]
        known = bedrock_error(name) if name else None
        kind, mapped = known or (kind_from_status(status), status)
        # Keep the upstream status unless Bedrock's differs in meaning (503 -> 529, 424 -> 502, ...).
        retry_after = parse_retry_after(response.headers, self.retry.clock())
        text = f"{name.split(':')[0]}: {message}" if name else str(message or "bedrock error")
        return UpstreamError(kind, text, status=mapped, retry_after=retry_after)


class BedrockBackend:
    api: Api = "bedrock"

    def __init__(
        self,
        settings: BackendSettings,
        client: httpx.AsyncClient,
        *,
        retry: RetryPolicy | None = None,
        credentials: Any = None,
        region: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """`credentials`: a botocore `Credentials` (or anything with `get_frozen_credentials()`)."""
        self.settings = settings
        self._credentials = credentials
        self._session: Any = None
        self.region = region or _region_from_url(settings.base_url) or _region_from_env(env)
        if not self.region:
            self.region = str(self._boto_session().get_config_variable("region") or "")
        if not self.region:
            raise ConfigError(
                f"backend {settings.name}: no AWS region; set region, AWS_REGION or a profile's region"
            )
        if credentials is None and not settings.api_key:
            self._credentials = self._boto_session().get_credentials()  # refreshes itself
        if self._credentials is None and not settings.api_key:
            raise ConfigError(
                f"backend {settings.name}: no AWS credentials found; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE (run `aws sso login` for SSO), or "
                "AWS_BEARER_TOKEN_BEDROCK"
            )
        base = settings.base_url or f"https://bedrock-runtime.{self.region}.amazonaws.com"
        self._http = _BedrockUpstream(
            client,
            dataclasses.replace(settings, base_url=base.rstrip("/")),
            retry,
            auth=self.sign,
        )

    # -- the Backend protocol ------------------------------------------------------------------------

    async def send(
        self, path: str, body: dict[str, Any], headers: Mapping[str, str] = NO_HEADERS
    ) -> UpstreamReply:
        defaults = {"content-type": "application/json", "accept": "application/json"}
        return await self._http.send_json(path, body, self._headers(headers, defaults))

    def stream(
        self, path: str, body: dict[str, Any], headers: Mapping[str, str] = NO_HEADERS
    ) -> AbstractAsyncContextManager[UpstreamStream]:
        defaults = {
            "content-type": "application/json",
            "accept": _EVENTSTREAM,
            "x-amzn-bedrock-accept": "application/json",
            "accept-encoding": "identity",
        }
        return self._decoded(path, body, self._headers(headers, defaults))

    def forward(
        self, method: str, path: str, content: bytes, headers: Mapping[str, str]
    ) -> StreamContext:
        sent = self._headers(headers, {"accept-encoding": "identity"})
        if "content-type" in {k.lower() for k in headers}:
            sent["content-type"] = next(
                v for k, v in headers.items() if k.lower() == "content-type"
            )
        return self._http.stream_raw(method, path, content, sent)

    async def aclose(self) -> None:
        """Nothing of its own to close: the shared client belongs to the server's lifespan."""

    # -- by API: what the pipeline calls -------------------------------------------------------------

    async def send_messages(
        self, model: str, body: Mapping[str, Any], headers: Mapping[str, str] = NO_HEADERS
    ) -> UpstreamReply:
        """InvokeModel with an Anthropic Messages body; the reply is an Anthropic message."""
        return await self.send(model_path(model, "invoke"), anthropic_body(body, headers), headers)

    def stream_messages(
        self, model: str, body: Mapping[str, Any], headers: Mapping[str, str] = NO_HEADERS
    ) -> AbstractAsyncContextManager[UpstreamStream]:
        """InvokeModelWithResponseStream; yields Anthropic SSE bytes."""
        path = model_path(model, "invoke-with-response-stream")
        return self.stream(path, anthropic_body(body, headers), headers)

    async def send_converse(
        self, body: Mapping[str, Any], headers: Mapping[str, str] = NO_HEADERS
    ) -> UpstreamReply:
        """Converse; `body` is `messages_via_converse.request()`'s (its `modelId` goes to the URL)."""
        model, rest = _split_model(body)
        return await self.send(model_path(model, "converse"), rest, headers)

    def stream_converse(
        self, body: Mapping[str, Any], headers: Mapping[str, str] = NO_HEADERS
    ) -> AbstractAsyncContextManager[UpstreamStream]:
        """ConverseStream; yields `data: {"<event>": {...}}` SSE lines."""
        model, rest = _split_model(body)
        return self.stream(model_path(model, "converse-stream"), rest, headers)

    # -- signing -------------------------------------------------------------------------------------

    async def sign(
        self, method: str, url: str, content: bytes, headers: Mapping[str, str]
    ) -> Mapping[str, str]:
        """The headers with SigV4 added (or a Bearer key when `settings.api_key` is set)."""
        out = dict(headers)
        if self.settings.api_key:
            out["authorization"] = f"Bearer {self.settings.api_key}"
            return out
        return await anyio.to_thread.run_sync(self._sign, method, url, content, out)

    def _sign(
        self, method: str, url: str, content: bytes, headers: dict[str, str]
    ) -> dict[str, str]:
        source = self._credentials
        if source is None:
            source = self._credentials = self._boto_session().get_credentials()
        if source is None:
            raise UpstreamError(
                ErrorKind.AUTHENTICATION,
                f"backend {self.settings.name}: no AWS credentials found (env, profile, SSO, role)",
                status=401,
            )
        frozen = (
            source.get_frozen_credentials() if hasattr(source, "get_frozen_credentials") else source
        )
        request = _botocore("awsrequest").AWSRequest(
            method=method, url=url, data=content, headers=headers
        )
        _botocore("auth").SigV4Auth(frozen, SERVICE, self.region).add_auth(request)
        return {k: str(v) for k, v in request.headers.items()}

    def _boto_session(self) -> Any:
        if self._session is None:
            self._session = _botocore("session").Session()
        return self._session

    # -- helpers -------------------------------------------------------------------------------------

    def _headers(self, caller: Mapping[str, str], defaults: Mapping[str, str]) -> dict[str, str]:
        """Only Bedrock's own request headers pass from the caller; ours and the configured win."""
        out = {k.lower(): v for k, v in caller.items() if k.lower().startswith("x-amzn-bedrock-")}
        out.update(defaults)
        out["user-agent"] = f"anyllm/{__version__}"
        out.update({k.lower(): v for k, v in self.settings.extra_headers.items()})
        return out

    @asynccontextmanager
    async def _decoded(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> AsyncIterator[UpstreamStream]:
        async with self._http.stream_json(path, body, headers) as raw:
            if path.endswith("/invoke-with-response-stream"):
                yield _EventStream(raw, _anthropic_sse)
            elif path.endswith("/converse-stream"):
                yield _EventStream(raw, _converse_sse)
            else:
                yield raw


def _split_model(body: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    model = body.get("modelId")
    if not isinstance(model, str) or not model:
        raise ConfigError("a Converse body needs its modelId")
    return model, {k: v for k, v in body.items() if k != "modelId"}


def _region_from_url(url: str) -> str:
    match = _HOST.match(urlsplit(url).hostname or "") if url else None
    return match.group(1) if match else ""


def _region_from_env(env: Mapping[str, str] | None) -> str:
    env = env or {}
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ""


# -- the event stream, re-framed as SSE -------------------------------------------------------------


class _EventStream:
    """An `UpstreamStream` that decodes event-stream bytes and yields SSE bytes instead."""

    def __init__(self, raw: UpstreamStream, frame: Any) -> None:
        self.status = raw.status
        self.headers: Mapping[str, str] = {
            **{
                k: v
                for k, v in raw.headers.items()
                if k.lower() not in ("content-type", "content-length")
            },
            "content-type": "text/event-stream",
        }
        self._raw = raw
        self._frame = frame

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        decoder = EventStreamDecoder()
        async for chunk in self._raw:
            out = b"".join(self._frame(m) for m in decoder.feed(chunk))
            if out:
                yield out
        if decoder.pending:
            raise UpstreamError(
                ErrorKind.API_ERROR,
                f"the event stream ended inside a message ({decoder.pending} bytes held)",
            )


def _exception(message: EventMessage) -> tuple[str, dict[str, Any]]:
    """An exception or error message as (member name, payload)."""
    if message.header(":message-type") == "error":
        code = message.header(":error-code") or "InternalServerException"
        text = message.header(":error-message") or code
        name = code[:1].lower() + code[1:]
        return (name if bedrock_error(name) else "internalServerException"), {
            "message": f"{code}: {text}"
        }
    name = message.header(":exception-type") or "internalServerException"
    return name, _payload(message)


def _payload(message: EventMessage) -> dict[str, Any]:
    try:
        value = json.loads(message.payload) if message.payload else {}
    except ValueError:
        raise UpstreamError(ErrorKind.API_ERROR, "an event-stream payload is not JSON") from None
    if not isinstance(value, dict):
        raise UpstreamError(ErrorKind.API_ERROR, "an event-stream payload is not a JSON object")
    return value


def _anthropic_sse(message: EventMessage) -> bytes:
    if message.header(":message-type") != "event":
        name, payload = _exception(message)
        kind = (bedrock_error(name) or (ErrorKind.API_ERROR, 500))[0]
        text = f"{name}: {payload.get('message') or payload.get('Message') or 'stream error'}"
        return encode_anthropic(anthropic_error(kind, text)[1])
    if message.header(":event-type") != "chunk":
        return b""
    try:
        inner = json.loads(base64.b64decode(_payload(message).get("bytes") or "", validate=True))
    except (binascii.Error, ValueError):
        raise UpstreamError(ErrorKind.API_ERROR, "a chunk event holds no Anthropic event") from None
    if not isinstance(inner, dict) or not isinstance(inner.get("type"), str):
        raise UpstreamError(ErrorKind.API_ERROR, "a chunk event holds no Anthropic event")
    inner.pop("amazon-bedrock-invocationMetrics", None)
    return encode_anthropic(inner)


def _converse_sse(message: EventMessage) -> bytes:
    if message.header(":message-type") != "event":
        name, payload = _exception(message)
        return encode(dumps({name: payload}))
    payload = _payload(message)
    payload.pop("p", None)  # padding
    return encode(dumps({message.header(":event-type"): payload}))
