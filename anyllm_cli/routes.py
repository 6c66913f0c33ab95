"""How an Anthropic Messages request reaches each upstream API, and how its answers come back.

| backend api | request                        | path                          | reply / stream               |
| ----------- | ------------------------------ | ----------------------------- | ---------------------------- |
| chat        | messages_via_chat.request      | /chat/completions             | messages_via_chat.response / |
|             |                                |                               | MessagesViaChatStream        |

Each `UpstreamRoute` is the pipeline's view of one translation route: a request translator bound to
the backend's settings, the upstream path (which may name the model, as Gemini's does), the reply
translator (an upstream body that does not parse is an upstream error, never the client's) and a
fresh stream translator per request. `ChainedStream` joins two stream translators, so OpenAI clients
reach any non-Chat upstream through the Anthropic shape. No I/O here: the pipeline sends.

What it gives up: one route per API; a backend that needs per-model routes picks its `api` itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from anyllm_cli.config import BackendSettings
from anyllm_cli.errors import ErrorKind, InvalidInput, UpstreamError
from anyllm_cli.models.anthropic import MessagesRequest
from anyllm_cli.models.openai_chat import ChatResponse
from anyllm_cli.translate import messages_via_chat
from anyllm_cli.translate.degradation import Degradation, Translated
from anyllm_cli.translate.streams.messages_via_chat import MessagesViaChatStream
from anyllm_cli.translate.streams.pump import OutEvent


class Translator(Protocol):
    """A stream translator as the pipeline drives it (pump.StreamTranslator, plus `fail`)."""

    @property
    def degradations(self) -> list[Degradation]: ...

    def feed(self, event: dict[str, Any], /) -> Sequence[OutEvent]: ...

    def finish(self) -> Sequence[OutEvent]: ...

    def fail(self, kind: ErrorKind, message: str, /) -> Sequence[OutEvent]: ...


@dataclass(frozen=True, slots=True)
class Target:
    """What a route needs to know about this call."""

    settings: BackendSettings
    upstream_model: str
    session_id: str | None = None  # Claude Code's x-claude-code-session-id


class UpstreamRoute(Protocol):
    def request(self, req: MessagesRequest, target: Target) -> Translated[dict[str, Any]]: ...

    def path(self, target: Target, *, stream: bool) -> str: ...

    def response(self, body: Any, *, requested_model: str) -> Translated[dict[str, Any]]: ...

    def stream(self, *, requested_model: str, input_tokens: int) -> Translator: ...


_M = TypeVar("_M")


def parse_upstream(parse: Callable[[Any], _M], body: Any) -> _M:
    """An upstream reply that does not parse is the upstream's fault: a 502, not the client's 400."""
    try:
        return parse(body)
    except InvalidInput as exc:
        raise UpstreamError(
            ErrorKind.API_ERROR, f"the upstream's reply does not parse: {exc}", status=502
        ) from None


class ChatRoute:
    """OpenAI Chat Completions upstreams (OpenAI, the presets, local servers, echo)."""

    def request(self, req: MessagesRequest, target: Target) -> Translated[dict[str, Any]]:
        settings = target.settings
        options = messages_via_chat.ChatOptions(
            map_model=settings.model_map_fn(),
            max_output_tokens=settings.output_limit(target.upstream_model),
            prompt_cache_key=target.session_id,
            include_usage=not settings.omit_stream_options,
            reasoning_field=settings.reasoning_field,
            reasoning_model=settings.is_reasoning_model(target.upstream_model),
        )
        translated = messages_via_chat.request(req, options)
        _ask_to_think(translated.body, settings.thinking_style, req)
        return translated

    def path(self, target: Target, *, stream: bool) -> str:
        return "/chat/completions"

    def response(self, body: Any, *, requested_model: str) -> Translated[dict[str, Any]]:
        resp = parse_upstream(ChatResponse.parse, body)
        return messages_via_chat.response(resp, requested_model=requested_model)

    def stream(self, *, requested_model: str, input_tokens: int) -> Translator:
        return MessagesViaChatStream(requested_model=requested_model, input_tokens=input_tokens)


def _ask_to_think(body: dict[str, Any], style: str, req: MessagesRequest) -> None:
    """Rewrite `reasoning_effort` into the field this provider reads (presets' `thinking_style`)."""
    effort = body.get("reasoning_effort")
    if effort is None or style == "effort":
        return
    budget = req.thinking.budget_tokens if req.thinking is not None else None
    if style == "openrouter":
        body["reasoning"] = {"max_tokens": budget} if budget else {"effort": effort}
    elif style == "glm":
        body["thinking"] = {"type": "enabled"}
    elif style == "google":
        if not budget:  # Gemini reads reasoning_effort itself; one of the two, never both
            return
        config = {"thinking_budget": budget, "include_thoughts": True}
        body["extra_body"] = {"google": {"thinking_config": config}}
    del body["reasoning_effort"]


ROUTES: Mapping[str, UpstreamRoute] = {"chat": ChatRoute()}


class ChainedStream:
    """`first`'s output events are `second`'s input: upstream -> Anthropic -> the client's API."""

    def __init__(self, first: Translator, second: Translator) -> None:
        self._first = first
        self._second = second

    @property
    def degradations(self) -> list[Degradation]:
        return [*self._first.degradations, *self._second.degradations]

    def feed(self, event: dict[str, Any]) -> list[OutEvent]:
        return self._pass(self._first.feed(event))

    def finish(self) -> list[OutEvent]:
        return [*self._pass(self._first.finish()), *self._second.finish()]

    def fail(self, kind: ErrorKind, message: str) -> list[OutEvent]:
        return list(self._second.fail(kind, message))

    def _pass(self, events: Sequence[OutEvent]) -> list[OutEvent]:
        out: list[OutEvent] = []
        for event in events:
            if event is not None:
                out += self._second.feed(event)
        return out
