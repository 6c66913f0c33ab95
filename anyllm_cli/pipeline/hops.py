"""The upstream hop of a call: translate/hops.py's rows bound to a backend, with their HTTP paths.

| backend api | hop (translate/hops.py)  | path                                                        |
| ----------- | ------------------------ | ----------------------------------------------------------- |
| chat        | chat                     | /chat/completions                                           |
| responses   | responses                | /responses                                                  |
| gemini      | gemini                   | /models/{m}:generateContent / :streamGenerateContent?alt=sse |
| bedrock     | Claude: messages_via_    | /model/{id}/invoke[-with-response-stream] (PassThrough)     |
|             | invoke (Bedrock's body); |                                                             |
|             | others: converse         | /model/{id}/converse[-stream]                               |

`Target` is what a hop needs of this call (the backend's settings, the upstream model, Claude Code's
session id, the client's betas); `options()` turns it into the pure hop's `HopOptions`. A reply that
does not parse is the upstream's fault: `parse_upstream` makes it a 502, never the client's 400. No
I/O here: the pipeline sends.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from anyllm_cli.backends import bedrock
from anyllm_cli.config import BackendSettings
from anyllm_cli.errors import ErrorKind, InvalidInput, UpstreamError
from anyllm_cli.models.anthropic import MessagesRequest, MessagesResponse
from anyllm_cli.translate import messages_via_invoke
from anyllm_cli.translate.degradation import Translated
from anyllm_cli.translate.hops import HOPS, ChainedStream, HopOptions, PassThrough
from anyllm_cli.translate.messages_via_converse import is_anthropic_model
from anyllm_cli.translate.streams.pump import StreamTranslator

__all__ = ["ROUTES", "ChainedStream", "PassThrough", "Target", "UpstreamRoute", "parse_upstream"]

SESSION_HEADER = "x-claude-code-session-id"


@dataclass(frozen=True, slots=True)
class Target:
    """What a hop needs to know about this call."""

    settings: BackendSettings
    upstream_model: str
    session_id: str | None = None  # Claude Code's x-claude-code-session-id
    betas: tuple[str, ...] = ()  # the client's anthropic-beta values

    @classmethod
    def of(
        cls, settings: BackendSettings, upstream_model: str, headers: Mapping[str, str]
    ) -> Target:
        betas = tuple(b.strip() for b in headers.get("anthropic-beta", "").split(",") if b.strip())
        return cls(settings, upstream_model, headers.get(SESSION_HEADER) or None, betas)

    def options(self) -> HopOptions:
        settings = self.settings
        return HopOptions(
            map_model=settings.model_map_fn(),
            max_output_tokens=settings.output_limit(self.upstream_model),
            prompt_cache_key=self.session_id,
            include_usage=not settings.omit_stream_options,
            reasoning_field=settings.reasoning_field,
            reasoning_model=settings.is_reasoning_model(self.upstream_model),
            thinking_style=settings.thinking_style,
            betas=self.betas,
        )


class UpstreamRoute(Protocol):
    def request(self, req: MessagesRequest, target: Target) -> Translated[dict[str, Any]]: ...

    def path(self, target: Target, *, stream: bool) -> str: ...

    def response(
        self, body: Any, target: Target, *, requested_model: str
    ) -> Translated[dict[str, Any]]: ...

    def stream(
        self, target: Target, *, requested_model: str, input_tokens: int
    ) -> StreamTranslator: ...


_M = TypeVar("_M")


def parse_upstream(parse: Callable[[Any], _M], body: Any) -> _M:
    """An upstream reply that does not parse is the upstream's fault: a 502, not the client's 400."""
    try:
        return parse(body)
    except InvalidInput as exc:
        raise UpstreamError(
            ErrorKind.API_ERROR, f"the upstream's reply does not parse: {exc}", status=502
        ) from None


class _Bound:
    """A pure hop bound to the backend's settings, at a fixed path."""

    def __init__(self, api: str, path: str, id_prefix: str = "msg_") -> None:
        self._hop = HOPS[api]
        self._path = path
        self._id_prefix = id_prefix

    def request(self, req: MessagesRequest, target: Target) -> Translated[dict[str, Any]]:
        return self._hop.request(req, target.options())

    def path(self, target: Target, *, stream: bool) -> str:
        return self._path

    def response(
        self, body: Any, target: Target, *, requested_model: str
    ) -> Translated[dict[str, Any]]:
        return parse_upstream(
            lambda b: self._hop.response(b, requested_model=requested_model), body
        )

    def stream(
        self, target: Target, *, requested_model: str, input_tokens: int
    ) -> StreamTranslator:
        # Converse and Gemini streams may carry no message id: each stream gets its own, made here
        # (the translators stay pure), never a shared constant.
        message_id = f"{self._id_prefix}{uuid.uuid4().hex[:24]}"
        return self._hop.stream(
            requested_model=requested_model, input_tokens=input_tokens, message_id=message_id
        )


class _GeminiRoute(_Bound):
    def __init__(self) -> None:
        super().__init__("gemini", "")

    def path(self, target: Target, *, stream: bool) -> str:
        model = quote(target.upstream_model.removeprefix("models/"), safe="")
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"/models/{model}:{action}"


class _BedrockRoute(_Bound):
    """Bedrock: Claude models through InvokeModel (the Anthropic body), others through Converse."""

    def __init__(self) -> None:
        super().__init__("converse", "", "msg_bdrk_")

    def request(self, req: MessagesRequest, target: Target) -> Translated[dict[str, Any]]:
        if is_anthropic_model(target.upstream_model):
            return messages_via_invoke.request(req.dump(), target.betas)
        return super().request(req, target)

    def path(self, target: Target, *, stream: bool) -> str:
        if is_anthropic_model(target.upstream_model):
            operation: bedrock.Operation = "invoke-with-response-stream" if stream else "invoke"
        else:
            operation = "converse-stream" if stream else "converse"
        return bedrock.model_path(target.upstream_model, operation)

    def response(
        self, body: Any, target: Target, *, requested_model: str
    ) -> Translated[dict[str, Any]]:
        if is_anthropic_model(target.upstream_model):
            return Translated(parse_upstream(MessagesResponse.parse, body).dump())
        return super().response(body, target, requested_model=requested_model)

    def stream(
        self, target: Target, *, requested_model: str, input_tokens: int
    ) -> StreamTranslator:
        if is_anthropic_model(target.upstream_model):
            return PassThrough()
        return super().stream(target, requested_model=requested_model, input_tokens=input_tokens)


ROUTES: Mapping[str, UpstreamRoute] = {
    "chat": _Bound("chat", "/chat/completions"),
    "responses": _Bound("responses", "/responses"),
    "gemini": _GeminiRoute(),
    "bedrock": _BedrockRoute(),
}
