"""How an Anthropic Messages request reaches each upstream API, and how its answers come back.

| backend api | request                        | path                          | reply / stream               |
| ----------- | ------------------------------ | ----------------------------- | ---------------------------- |
| chat        | messages_via_chat.request      | /chat/completions             | messages_via_chat.response / |
|             |                                |                               | MessagesViaChatStream        |
| responses   | messages_via_responses.request | /responses                    | messages_via_responses.      |
|             |                                |                               | response / ...ResponsesStream|
| gemini      | messages_via_gemini.request    | /models/{m}:generateContent / | messages_via_gemini.response |
|             |                                | :streamGenerateContent?alt=sse| / MessagesViaGeminiStream    |
| bedrock     | Claude: messages_via_invoke    | /model/{id}/invoke[-with-     | the message / events as they |
|             | (Bedrock's Anthropic body)     | response-stream]              | are (PassThrough)            |
|             | others: messages_via_converse  | /model/{id}/converse[-stream] | messages_via_converse /      |
|             |                                |                               | MessagesViaConverseStream    |

Each `UpstreamRoute` is the pipeline's view of one translation route: a request translator bound to
the backend's settings, the upstream path (which may name the model, as Gemini's does), the reply
translator (an upstream body that does not parse is an upstream error, never the client's) and a
fresh stream translator per request. `ChainedStream` joins two stream translators, so OpenAI clients
reach any non-Chat upstream through the Anthropic shape. No I/O here: the pipeline sends.

What it gives up: one route per API; a backend that needs per-model routes picks its `api` itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from anyllm_cli.backends import bedrock
from anyllm_cli.config import BackendSettings
from anyllm_cli.errors import (
    UNFINISHED,
    ErrorKind,
    InvalidInput,
    UpstreamError,
    anthropic_error,
    parse_error_body,
)
from anyllm_cli.models.anthropic import MessagesRequest, MessagesResponse
from anyllm_cli.models.gemini import GenerateContentResponse
from anyllm_cli.models.openai_chat import ChatResponse
from anyllm_cli.models.openai_responses import ResponsesResponse
from anyllm_cli.translate import (
    messages_via_chat,
    messages_via_converse,
    messages_via_gemini,
    messages_via_invoke,
    messages_via_responses,
)
from anyllm_cli.translate.degradation import Degradation, Translated
from anyllm_cli.translate.messages_via_converse import is_anthropic_model
from anyllm_cli.translate.streams.messages_via_chat import MessagesViaChatStream
from anyllm_cli.translate.streams.messages_via_converse import MessagesViaConverseStream
from anyllm_cli.translate.streams.messages_via_gemini import MessagesViaGeminiStream
from anyllm_cli.translate.streams.messages_via_responses import MessagesViaResponsesStream
from anyllm_cli.translate.streams.pump import OutEvent

SESSION_HEADER = "x-claude-code-session-id"


class Translator(Protocol):
    """A stream translator as the pipeline drives it (pump.StreamTranslator, plus `fail` and
    `done`). `finish()` ends the stream: the client's terminal events when the upstream sent its
    finish signal, else its error event (`errors.UNFINISHED`). `done` turns true once a terminal
    event (success or error) went out: nothing may follow it, and the upstream need not be read on."""

    @property
    def degradations(self) -> list[Degradation]: ...

    @property
    def done(self) -> bool: ...

    @property
    def failure(self) -> tuple[ErrorKind, str] | None:
        """The kind and message of the error event that ended the stream, if one did."""
        ...

    def feed(self, event: dict[str, Any], /) -> Sequence[OutEvent]: ...

    def finish(self) -> Sequence[OutEvent]: ...

    def fail(self, kind: ErrorKind, message: str, /) -> Sequence[OutEvent]: ...


@dataclass(frozen=True, slots=True)
class Target:
    """What a route needs to know about this call."""

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


class UpstreamRoute(Protocol):
    def request(self, req: MessagesRequest, target: Target) -> Translated[dict[str, Any]]: ...

    def path(self, target: Target, *, stream: bool) -> str: ...

    def response(
        self, body: Any, target: Target, *, requested_model: str
    ) -> Translated[dict[str, Any]]: ...

    def stream(self, target: Target, *, requested_model: str, input_tokens: int) -> Translator: ...


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

    def response(
        self, body: Any, target: Target, *, requested_model: str
    ) -> Translated[dict[str, Any]]:
        resp = parse_upstream(ChatResponse.parse, body)
        return messages_via_chat.response(resp, requested_model=requested_model)

    def stream(self, target: Target, *, requested_model: str, input_tokens: int) -> Translator:
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


def _anthropic_error_event(kind: ErrorKind, message: str) -> dict[str, Any]:
    return anthropic_error(kind, message)[1]


def anthropic_finished(event: dict[str, Any]) -> bool:
    """An Anthropic stream's finish signal (it is also its last event)."""
    return event.get("type") == "message_stop"


def anthropic_failed(event: dict[str, Any]) -> bool:
    return event.get("type") == "error"


class PassThrough:
    """Events relayed as they are (same API both sides); a failure in the stream's own shape.

    `finished(event)` recognises the upstream's finish signal and `failed(event)` its error event.
    Ending without the signal is a failure (`finish()` gives the error event), and after the
    signal (when `final`: it is also the last event) or an error event the relay is `done`."""

    def __init__(
        self,
        error: Callable[[ErrorKind, str], dict[str, Any]] = _anthropic_error_event,
        *,
        finished: Callable[[dict[str, Any]], bool] = anthropic_finished,
        failed: Callable[[dict[str, Any]], bool] = anthropic_failed,
        final: bool = True,
    ) -> None:
        self.degradations: list[Degradation] = []
        self._error = error
        self._finished = finished
        self._failed = failed
        self._final = final
        self.signalled = False  # the upstream's finish signal went by
        self.done = False
        self.failure: tuple[ErrorKind, str] | None = None

    def feed(self, event: dict[str, Any]) -> list[OutEvent]:
        if self.done:
            return []
        if self._failed(event):
            self.done = True
            self.failure = parse_error_body(event)
        elif self._finished(event):
            self.signalled = True
            self.done = self._final
        return [event]

    def finish(self) -> list[OutEvent]:
        if self.done or self.signalled:
            self.done = True
            return []
        return self.fail(ErrorKind.API_ERROR, UNFINISHED)

    def fail(self, kind: ErrorKind, message: str) -> list[OutEvent]:
        if self.done:
            return []
        self.done = True
        self.failure = (kind, message)
        return [self._error(kind, message)]


class BedrockRoute:
    """Bedrock: Claude models through InvokeModel (the Anthropic body), others through Converse."""

    def request(self, req: MessagesRequest, target: Target) -> Translated[dict[str, Any]]:
        if is_anthropic_model(target.upstream_model):
            return messages_via_invoke.request(req.dump(), target.betas)
        settings = target.settings
        options = messages_via_converse.ConverseOptions(
            map_model=settings.model_map_fn(),
            max_output_tokens=settings.output_limit(target.upstream_model),
            anthropic_beta=target.betas,
        )
        translated = messages_via_converse.request(req, options)
        translated.body.pop("modelId", None)  # it goes in the path
        return translated

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
        return parse_upstream(
            lambda b: messages_via_converse.response(b, requested_model=requested_model), body
        )

    def stream(self, target: Target, *, requested_model: str, input_tokens: int) -> Translator:
        if is_anthropic_model(target.upstream_model):
            return PassThrough()
        # ConverseStream carries no message id: each stream gets its own, made here (the
        # translator stays pure), never a shared constant.
        message_id = f"msg_bdrk_{uuid.uuid4().hex[:24]}"
        return MessagesViaConverseStream(
            requested_model=requested_model, message_id=message_id, input_tokens=input_tokens
        )


class ResponsesRoute:
    """The OpenAI Responses API (OpenAI and Azure with `api_format = "responses"`)."""

    def request(self, req: MessagesRequest, target: Target) -> Translated[dict[str, Any]]:
        settings = target.settings
        options = messages_via_responses.ResponsesOptions(
            map_model=settings.model_map_fn(),
            max_output_tokens=settings.output_limit(target.upstream_model),
            prompt_cache_key=target.session_id,
            reasoning_model=settings.is_reasoning_model(target.upstream_model),
        )
        return messages_via_responses.request(req, options)

    def path(self, target: Target, *, stream: bool) -> str:
        return "/responses"

    def response(
        self, body: Any, target: Target, *, requested_model: str
    ) -> Translated[dict[str, Any]]:
        resp = parse_upstream(ResponsesResponse.parse, body)
        return messages_via_responses.response(resp, requested_model=requested_model)

    def stream(self, target: Target, *, requested_model: str, input_tokens: int) -> Translator:
        return MessagesViaResponsesStream(
            requested_model=requested_model, input_tokens=input_tokens
        )


class GeminiRoute:
    """Gemini and Vertex generateContent: the model is in the path, not the body."""

    def request(self, req: MessagesRequest, target: Target) -> Translated[dict[str, Any]]:
        settings = target.settings
        options = messages_via_gemini.GeminiOptions(
            map_model=settings.model_map_fn(),
            max_output_tokens=settings.output_limit(target.upstream_model),
        )
        return messages_via_gemini.request(req, options)

    def path(self, target: Target, *, stream: bool) -> str:
        model = quote(target.upstream_model.removeprefix("models/"), safe="")
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"/models/{model}:{action}"

    def response(
        self, body: Any, target: Target, *, requested_model: str
    ) -> Translated[dict[str, Any]]:
        resp = parse_upstream(GenerateContentResponse.parse, body)
        return messages_via_gemini.response(resp, requested_model=requested_model)

    def stream(self, target: Target, *, requested_model: str, input_tokens: int) -> Translator:
        return MessagesViaGeminiStream(  # the fallback is used only when no responseId comes
            requested_model=requested_model,
            input_tokens=input_tokens,
            fallback_id=f"msg_{uuid.uuid4().hex[:24]}",
        )


ROUTES: Mapping[str, UpstreamRoute] = {
    "chat": ChatRoute(),
    "responses": ResponsesRoute(),
    "gemini": GeminiRoute(),
    "bedrock": BedrockRoute(),
}


class ChainedStream:
    """`first`'s output events are `second`'s input: upstream -> Anthropic -> the client's API."""

    def __init__(self, first: Translator, second: Translator) -> None:
        self._first = first
        self._second = second

    @property
    def done(self) -> bool:
        return self._second.done

    @property
    def failure(self) -> tuple[ErrorKind, str] | None:
        return self._second.failure

    @property
    def degradations(self) -> list[Degradation]:
        return [*self._first.degradations, *self._second.degradations]

    def feed(self, event: dict[str, Any]) -> list[OutEvent]:
        return self._pass(self._first.feed(event))

    def finish(self) -> list[OutEvent]:
        # The first's error event (it never saw its finish signal) becomes the second's.
        return [*self._pass(self._first.finish()), *self._second.finish()]

    def fail(self, kind: ErrorKind, message: str) -> list[OutEvent]:
        return list(self._second.fail(kind, message))

    def _pass(self, events: Sequence[OutEvent]) -> list[OutEvent]:
        out: list[OutEvent] = []
        for event in events:
            if event is not None:
                out += self._second.feed(event)
        return out
