"""The hops from the Anthropic shape to each upstream API and back: one table, two users.

| api       | request                          | response                         | stream                      |
| --------- | -------------------------------- | -------------------------------- | --------------------------- |
| chat      | messages_via_chat.request (+ the | messages_via_chat.response       | MessagesViaChatStream       |
|           | provider's thinking field)       |                                  |                             |
| responses | messages_via_responses.request   | messages_via_responses.response  | MessagesViaResponsesStream  |
| gemini    | messages_via_gemini.request      | messages_via_gemini.response     | MessagesViaGeminiStream     |
| converse  | messages_via_converse.request    | messages_via_converse.response   | MessagesViaConverseStream   |

The proxy's pipeline (`pipeline/hops.py` binds a backend's settings into `HopOptions` and adds the
HTTP paths) and `anyllm translate` (`dispatch.py`) both drive these rows, so a hop is right in one
place. A response that does not parse raises `InvalidInput`; whose fault that is (the upstream's, in
the proxy) is the caller's to say. Beside the table: `PassThrough` and `ChainedStream` (stream
translators that relay, or join two hops), the output-token clamp of a Chat body relayed as it is,
and the Gemini countTokens body. Pure: no I/O, no clock.

What it gives up: one hop per API; a backend that needs per-model hops picks its `api` itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from anyllm_cli.errors import ErrorKind, anthropic_error
from anyllm_cli.models.anthropic import CountTokensRequest, MessagesRequest
from anyllm_cli.models.gemini import GenerateContentResponse
from anyllm_cli.models.openai_chat import ChatResponse
from anyllm_cli.models.openai_responses import ResponsesResponse
from anyllm_cli.translate import (
    messages_via_chat,
    messages_via_converse,
    messages_via_gemini,
    messages_via_responses,
)
from anyllm_cli.translate.degradation import Degradation, Translated
from anyllm_cli.translate.streams.messages_via_chat import MessagesViaChatStream
from anyllm_cli.translate.streams.messages_via_converse import MessagesViaConverseStream
from anyllm_cli.translate.streams.messages_via_gemini import MessagesViaGeminiStream
from anyllm_cli.translate.streams.messages_via_responses import MessagesViaResponsesStream
from anyllm_cli.translate.streams.pump import OutEvent, StreamTranslator


def _identity(name: str) -> str:
    return name


@dataclass(frozen=True, slots=True)
class HopOptions:
    """What a hop needs to know about the upstream (a backend's settings, or the CLI's flags)."""

    map_model: Callable[[str], str] = _identity
    max_output_tokens: int | None = None  # clamp max_tokens to this
    prompt_cache_key: str | None = None  # Claude Code's session id
    include_usage: bool = True  # Chat streams: ask for the usage chunk
    reasoning_field: str | None = "reasoning_content"
    reasoning_model: bool = False
    thinking_style: str = "effort"  # how a Chat upstream is asked to think (presets)
    betas: tuple[str, ...] = ()  # the client's anthropic-beta values


class Hop(Protocol):
    def request(self, req: MessagesRequest, options: HopOptions) -> Translated[dict[str, Any]]: ...

    def response(self, body: Any, *, requested_model: str) -> Translated[dict[str, Any]]: ...

    def stream(
        self, *, requested_model: str, input_tokens: int = 0, message_id: str | None = None
    ) -> StreamTranslator:
        """`message_id`: for upstreams whose stream carries no id of its own (a fresh one per
        stream, made by the caller: the hop stays pure)."""
        ...


class ChatHop:
    """OpenAI Chat Completions (OpenAI, the presets, local servers, echo)."""

    def request(self, req: MessagesRequest, options: HopOptions) -> Translated[dict[str, Any]]:
        chat = messages_via_chat.ChatOptions(
            map_model=options.map_model,
            max_output_tokens=options.max_output_tokens,
            prompt_cache_key=options.prompt_cache_key,
            include_usage=options.include_usage,
            reasoning_field=options.reasoning_field,
            reasoning_model=options.reasoning_model,
        )
        translated = messages_via_chat.request(req, chat)
        ask_to_think(translated.body, options.thinking_style, req)
        return translated

    def response(self, body: Any, *, requested_model: str) -> Translated[dict[str, Any]]:
        return messages_via_chat.response(ChatResponse.parse(body), requested_model=requested_model)

    def stream(
        self, *, requested_model: str, input_tokens: int = 0, message_id: str | None = None
    ) -> StreamTranslator:
        return MessagesViaChatStream(requested_model=requested_model, input_tokens=input_tokens)


def ask_to_think(body: dict[str, Any], style: str, req: MessagesRequest) -> None:
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


class ResponsesHop:
    """The OpenAI Responses API."""

    def request(self, req: MessagesRequest, options: HopOptions) -> Translated[dict[str, Any]]:
        responses = messages_via_responses.ResponsesOptions(
            map_model=options.map_model,
            max_output_tokens=options.max_output_tokens,
            prompt_cache_key=options.prompt_cache_key,
            reasoning_model=options.reasoning_model,
        )
        return messages_via_responses.request(req, responses)

    def response(self, body: Any, *, requested_model: str) -> Translated[dict[str, Any]]:
        resp = ResponsesResponse.parse(body)
        return messages_via_responses.response(resp, requested_model=requested_model)

    def stream(
        self, *, requested_model: str, input_tokens: int = 0, message_id: str | None = None
    ) -> StreamTranslator:
        return MessagesViaResponsesStream(
            requested_model=requested_model, input_tokens=input_tokens
        )


class GeminiHop:
    """Gemini and Vertex generateContent (the model goes in the URL, not the body)."""

    def request(self, req: MessagesRequest, options: HopOptions) -> Translated[dict[str, Any]]:
        gemini = messages_via_gemini.GeminiOptions(
            map_model=options.map_model, max_output_tokens=options.max_output_tokens
        )
        return messages_via_gemini.request(req, gemini)

    def response(self, body: Any, *, requested_model: str) -> Translated[dict[str, Any]]:
        resp = GenerateContentResponse.parse(body)
        return messages_via_gemini.response(resp, requested_model=requested_model)

    def stream(
        self, *, requested_model: str, input_tokens: int = 0, message_id: str | None = None
    ) -> StreamTranslator:
        return MessagesViaGeminiStream(  # the fallback is used only when no responseId comes
            requested_model=requested_model, input_tokens=input_tokens, fallback_id=message_id
        )


class ConverseHop:
    """Bedrock Converse (the model id goes in the URL, not the body)."""

    def request(self, req: MessagesRequest, options: HopOptions) -> Translated[dict[str, Any]]:
        converse = messages_via_converse.ConverseOptions(
            map_model=options.map_model,
            max_output_tokens=options.max_output_tokens,
            anthropic_beta=options.betas,
        )
        translated = messages_via_converse.request(req, converse)
        translated.body.pop("modelId", None)  # it goes in the path
        return translated

    def response(self, body: Any, *, requested_model: str) -> Translated[dict[str, Any]]:
        return messages_via_converse.response(body, requested_model=requested_model)

    def stream(
        self, *, requested_model: str, input_tokens: int = 0, message_id: str | None = None
    ) -> StreamTranslator:
        return MessagesViaConverseStream(
            requested_model=requested_model, message_id=message_id, input_tokens=input_tokens
        )


HOPS: Mapping[str, Hop] = {
    "chat": ChatHop(),
    "responses": ResponsesHop(),
    "gemini": GeminiHop(),
    "converse": ConverseHop(),
}


# -- stream translators that relay or join ----------------------------------------------------------


def _anthropic_error_event(kind: ErrorKind, message: str) -> dict[str, Any]:
    return anthropic_error(kind, message)[1]


class PassThrough:
    """Events relayed as they are (same API both sides); a failure in the stream's own shape."""

    def __init__(
        self, error: Callable[[ErrorKind, str], dict[str, Any]] = _anthropic_error_event
    ) -> None:
        self.degradations: list[Degradation] = []
        self._error = error

    def feed(self, event: dict[str, Any]) -> list[OutEvent]:
        return [event]

    def finish(self) -> list[OutEvent]:
        return []

    def fail(self, kind: ErrorKind, message: str) -> list[OutEvent]:
        return [self._error(kind, message)]


class ChainedStream:
    """`first`'s output events are `second`'s input: upstream -> Anthropic -> the client's API."""

    def __init__(self, first: StreamTranslator, second: StreamTranslator) -> None:
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


# -- wire shaping outside the table -------------------------------------------------------------------


def clamp_chat_body(body: dict[str, Any], limit: int | None, model: str) -> list[Degradation]:
    """A Chat body relayed as it is (OpenAI clients of Chat upstreams): its output-token fields
    clamped to the model's limit, the way the hops clamp `max_tokens`."""
    found: list[Degradation] = []
    for key in ("max_completion_tokens", "max_tokens"):
        asked = body.get(key)
        if limit is not None and isinstance(asked, int) and asked > limit:
            body[key] = limit
            detail = f"{key} {asked} is above {model}'s output limit; sent {limit}"
            found.append(Degradation("max_tokens_clamped", detail, key))
    return found


def gemini_count_body(
    req: CountTokensRequest, options: HopOptions, model: str, *, vertex: bool = False
) -> dict[str, Any]:
    """Gemini's countTokens body for a Messages count request: the generateContent request it
    would send, in the shape the Gemini API (wrapped) or Vertex (top level) reads."""
    full = MessagesRequest.parse({**req.dump(), "max_tokens": 1})
    content = HOPS["gemini"].request(full, options).body
    return messages_via_gemini.count_tokens_body(content, model, vertex=vertex)
