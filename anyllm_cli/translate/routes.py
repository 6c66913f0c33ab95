"""The dispatch table of `anyllm translate`: (from, to, kind) -> the pure function that does it.

| from      | to        | kind     | input model       | translator                                       |
| --------- | --------- | -------- | ----------------- | ------------------------------------------------ |
| anthropic | openai    | request  | MessagesRequest   | messages_via_chat.request                        |
| openai    | anthropic | response | ChatResponse      | messages_via_chat.response                       |
| openai    | anthropic | stream   | chunk dicts       | streams.messages_via_chat.MessagesViaChatStream  |
| openai    | anthropic | request  | ChatRequest       | chat_via_messages.request                        |
| anthropic | openai    | response | MessagesResponse  | chat_via_messages.response                       |
| anthropic | openai    | stream   | event dicts       | streams.chat_via_messages.ChatViaMessagesStream  |
| anthropic | responses | request  | MessagesRequest   | messages_via_responses.request (and back: the    |
|           |           |          |                   | response and its stream)                         |
| anthropic | gemini    | request  | MessagesRequest   | messages_via_gemini.request (and back)           |
| gemini    | anthropic | request  | generateContent   | gemini_via_messages.request (the model from a    |
|           |           |          |                   | `model` key or --model-map; and back)            |
| anthropic | bedrock   | request  | MessagesRequest   | messages_via_converse.request (and back; a       |
|           |           |          |                   | stream is `data: {"<event>": payload}` lines)    |

An input already in the target API (`--to openai` given an OpenAI request) takes an identity route:
the body is checked with its own API's wire model and written back unchanged (so no input is ever
parsed with the other API's schema); such a stream is refused with a message saying so.

A body route parses the JSON value with the wire model (bad input -> `InvalidInput` with a JSON path)
and returns a `Translated` body. A stream route returns an `SSEPump` (bytes in, bytes out) whose
translator is built on the first event, because the model name to announce is in that event.

`map_model` renames the model of the input, whichever its kind: `claude-x=gpt-y` turns a request for
`claude-x` into one for `gpt-y`, and `gpt-y=claude-x` gives an OpenAI response back as `claude-x`.
What it gives up: the stream and response routes cannot know what the original client asked for, so
they announce the (mapped) model the input names; translator options other than `map_model` keep
their defaults (an OpenAI request asks for usage in streams; an Anthropic stream keeps its usage).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from anyllm_cli.errors import InvalidInput
from anyllm_cli.models._base import Wire
from anyllm_cli.models.anthropic import MessagesRequest, MessagesResponse
from anyllm_cli.models.gemini import GenerateContentRequest, GenerateContentResponse
from anyllm_cli.models.openai_chat import ChatRequest, ChatResponse
from anyllm_cli.models.openai_responses import ResponsesRequest, ResponsesResponse
from anyllm_cli.translate import (
    chat_via_messages,
    gemini_via_messages,
    messages_via_chat,
    messages_via_converse,
    messages_via_gemini,
    messages_via_responses,
)
from anyllm_cli.translate.degradation import Degradation, Translated
from anyllm_cli.translate.detect import Api, Kind
from anyllm_cli.translate.streams.chat_via_messages import ChatViaMessagesStream
from anyllm_cli.translate.streams.gemini_via_messages import GeminiViaMessagesStream
from anyllm_cli.translate.streams.messages_via_chat import MessagesViaChatStream
from anyllm_cli.translate.streams.messages_via_converse import MessagesViaConverseStream
from anyllm_cli.translate.streams.messages_via_gemini import MessagesViaGeminiStream
from anyllm_cli.translate.streams.messages_via_responses import MessagesViaResponsesStream
from anyllm_cli.translate.streams.pump import OutEvent, SSEPump
from anyllm_cli.translate.streams.sse import encode_anthropic, encode_openai

RouteKey = tuple[Api, Api, Kind]


def _identity(name: str) -> str:
    return name


@dataclass(frozen=True, slots=True)
class RouteOptions:
    map_model: Callable[[str], str] = _identity
    created: int = (
        0  # `created` of OpenAI responses and chunks made from Anthropic ones (a clock reading)
    )


@dataclass(frozen=True, slots=True)
class BodyRoute:
    run: Callable[[Any, RouteOptions], Translated[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class StreamRoute:
    open: Callable[[RouteOptions], SSEPump]


# -- bodies ------------------------------------------------------------------------------------------


def _anthropic_request(body: Any, options: RouteOptions) -> Translated[dict[str, Any]]:
    chat_options = messages_via_chat.ChatOptions(map_model=options.map_model)
    return messages_via_chat.request(MessagesRequest.parse(body), chat_options)


def _openai_response(body: Any, options: RouteOptions) -> Translated[dict[str, Any]]:
    resp = ChatResponse.parse(body)
    return messages_via_chat.response(resp, requested_model=options.map_model(resp.model))


def _openai_request(body: Any, options: RouteOptions) -> Translated[dict[str, Any]]:
    messages_options = chat_via_messages.MessagesOptions(map_model=options.map_model)
    return chat_via_messages.request(ChatRequest.parse(body), messages_options)


def _anthropic_response(body: Any, options: RouteOptions) -> Translated[dict[str, Any]]:
    resp = MessagesResponse.parse(body)
    model = options.map_model(resp.model)
    return chat_via_messages.response(resp, requested_model=model, created=options.created)


def _to_responses(body: Any, options: RouteOptions) -> Translated[dict[str, Any]]:
    opts = messages_via_responses.ResponsesOptions(map_model=options.map_model)
    return messages_via_responses.request(MessagesRequest.parse(body), opts)


def _from_responses(body: Any, options: RouteOptions) -> Translated[dict[str, Any]]:
    resp = ResponsesResponse.parse(body)
    return messages_via_responses.response(resp, requested_model=options.map_model(resp.model))


def _to_gemini(body: Any, options: RouteOptions) -> Translated[dict[str, Any]]:
    opts = messages_via_gemini.GeminiOptions(map_model=options.map_model)
    return messages_via_gemini.request(MessagesRequest.parse(body), opts)


def _from_gemini(body: Any, options: RouteOptions) -> Translated[dict[str, Any]]:
    resp = GenerateContentResponse.parse(body)
    model = options.map_model(resp.modelVersion or "")
    return messages_via_gemini.response(resp, requested_model=model)


def _gemini_request(body: Any, options: RouteOptions) -> Translated[dict[str, Any]]:
    req = gemini_via_messages.parse_request(body)
    model = options.map_model(_model(body.get("model")) if isinstance(body, dict) else "")
    if not model:
        raise InvalidInput(
            "a generateContent body names no model (its URL does): pass --model NAME", "model"
        )
    return gemini_via_messages.request(req, model=model, stream=False)


def _gemini_response(body: Any, options: RouteOptions) -> Translated[dict[str, Any]]:
    resp = MessagesResponse.parse(body)
    return gemini_via_messages.response(resp, model=options.map_model(resp.model))


def _to_bedrock(body: Any, options: RouteOptions) -> Translated[dict[str, Any]]:
    opts = messages_via_converse.ConverseOptions(map_model=options.map_model)
    return messages_via_converse.request(MessagesRequest.parse(body), opts)


def _from_bedrock(body: Any, options: RouteOptions) -> Translated[dict[str, Any]]:
    return messages_via_converse.response(body, requested_model=options.map_model(""))


# -- streams -----------------------------------------------------------------------------------------


class _Translator(Protocol):
    degradations: list[Degradation]

    def feed(self, event: dict[str, Any]) -> Sequence[OutEvent]: ...

    def finish(self) -> Sequence[OutEvent]: ...


class _OnFirstEvent:
    """A stream translator made when the first event arrives (it names the model)."""

    def __init__(self, make: Callable[[dict[str, Any]], _Translator]) -> None:
        self._make = make
        self._inner: _Translator | None = None
        self.degradations: list[Degradation] = []

    def _start(self, event: dict[str, Any]) -> _Translator:
        self._inner = self._make(event)
        self.degradations = self._inner.degradations
        return self._inner

    def feed(self, event: dict[str, Any]) -> list[OutEvent]:
        inner = self._inner or self._start(event)
        return [*inner.feed(event)]

    def finish(self) -> list[OutEvent]:
        inner = self._inner or self._start({})
        return [*inner.finish()]


def _model(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _openai_stream(options: RouteOptions) -> SSEPump:
    def make(first: dict[str, Any]) -> MessagesViaChatStream:
        return MessagesViaChatStream(requested_model=options.map_model(_model(first.get("model"))))

    return SSEPump(_OnFirstEvent(make), _encode_anthropic)


def _anthropic_stream(options: RouteOptions) -> SSEPump:
    def make(first: dict[str, Any]) -> ChatViaMessagesStream:
        message = first.get("message")
        model = _model(message.get("model")) if isinstance(message, dict) else ""
        return ChatViaMessagesStream(
            requested_model=options.map_model(model), created=options.created, include_usage=True
        )

    return SSEPump(_OnFirstEvent(make), encode_openai)


def _responses_stream(options: RouteOptions) -> SSEPump:
    def make(first: dict[str, Any]) -> MessagesViaResponsesStream:
        response = first.get("response")
        model = _model(response.get("model")) if isinstance(response, dict) else ""
        return MessagesViaResponsesStream(requested_model=options.map_model(model))

    return SSEPump(_OnFirstEvent(make), _encode_anthropic)


def _gemini_stream(options: RouteOptions) -> SSEPump:
    def make(first: dict[str, Any]) -> MessagesViaGeminiStream:
        model = options.map_model(_model(first.get("modelVersion")))
        return MessagesViaGeminiStream(requested_model=model)

    return SSEPump(_OnFirstEvent(make), _encode_anthropic)


def _to_gemini_stream(options: RouteOptions) -> SSEPump:
    def make(first: dict[str, Any]) -> GeminiViaMessagesStream:
        message = first.get("message")
        model = _model(message.get("model")) if isinstance(message, dict) else ""
        return GeminiViaMessagesStream(model=options.map_model(model))

    return SSEPump(_OnFirstEvent(make), encode_openai)  # `data:` lines; it never ends with [DONE]


def _bedrock_stream(options: RouteOptions) -> SSEPump:
    def make(first: dict[str, Any]) -> MessagesViaConverseStream:
        return MessagesViaConverseStream(requested_model=options.map_model(""))

    return SSEPump(_OnFirstEvent(make), _encode_anthropic)


def _encode_anthropic(event: OutEvent) -> bytes:
    # An Anthropic stream has no [DONE] sentinel; its translator never asks for one.
    return b"" if event is None else encode_anthropic(event)


# -- the table ---------------------------------------------------------------------------------------

ROUTES: dict[RouteKey, BodyRoute | StreamRoute] = {
    ("anthropic", "openai", "request"): BodyRoute(_anthropic_request),
    ("openai", "anthropic", "response"): BodyRoute(_openai_response),
    ("openai", "anthropic", "stream"): StreamRoute(_openai_stream),
    ("openai", "anthropic", "request"): BodyRoute(_openai_request),
    ("anthropic", "openai", "response"): BodyRoute(_anthropic_response),
    ("anthropic", "openai", "stream"): StreamRoute(_anthropic_stream),
    ("anthropic", "responses", "request"): BodyRoute(_to_responses),
    ("responses", "anthropic", "response"): BodyRoute(_from_responses),
    ("responses", "anthropic", "stream"): StreamRoute(_responses_stream),
    ("anthropic", "gemini", "request"): BodyRoute(_to_gemini),
    ("gemini", "anthropic", "response"): BodyRoute(_from_gemini),
    ("gemini", "anthropic", "stream"): StreamRoute(_gemini_stream),
    ("gemini", "anthropic", "request"): BodyRoute(_gemini_request),
    ("anthropic", "gemini", "response"): BodyRoute(_gemini_response),
    ("anthropic", "gemini", "stream"): StreamRoute(_to_gemini_stream),
    ("anthropic", "bedrock", "request"): BodyRoute(_to_bedrock),
    ("bedrock", "anthropic", "response"): BodyRoute(_from_bedrock),
    ("bedrock", "anthropic", "stream"): StreamRoute(_bedrock_stream),
}


# The wire model an identity route checks a body with (Bedrock bodies have none: kept as they are).
_MODELS: dict[tuple[Api, Kind], type[Wire]] = {
    ("anthropic", "request"): MessagesRequest,
    ("anthropic", "response"): MessagesResponse,
    ("openai", "request"): ChatRequest,
    ("openai", "response"): ChatResponse,
    ("responses", "request"): ResponsesRequest,
    ("responses", "response"): ResponsesResponse,
    ("gemini", "request"): GenerateContentRequest,
    ("gemini", "response"): GenerateContentResponse,
}


def _identity_body(api: Api, kind: Kind) -> BodyRoute:
    def run(body: Any, options: RouteOptions) -> Translated[dict[str, Any]]:
        model = _MODELS.get((api, kind))
        if model is not None:
            model.parse(body)  # an InvalidInput names the JSON path, in this API's terms
        return Translated(body)

    return BodyRoute(run)


def supported() -> str:
    """The routes, one line per pair of APIs: `  anthropic -> openai: request, response, stream`."""
    pairs: dict[tuple[Api, Api], list[Kind]] = {}
    for source, target, kind in ROUTES:
        pairs.setdefault((source, target), []).append(kind)
    order = ("request", "response", "stream")
    return "\n".join(
        f"  {s} -> {t}: {', '.join(sorted(kinds, key=order.index))}"
        for (s, t), kinds in pairs.items()
    )


def route(key: RouteKey) -> BodyRoute | StreamRoute:
    source, target, kind = key
    if source == target:
        if kind == "stream":
            raise InvalidInput(f"this stream is already {source}'s: nothing to translate")
        return _identity_body(source, kind)
    try:
        return ROUTES[key]
    except KeyError:
        via = (
            f"\n(go through Anthropic: --from {source} --to anthropic, then --from anthropic "
            f"--to {target})"
            if (source, "anthropic", kind) in ROUTES and ("anthropic", target, kind) in ROUTES
            else ""
        )
        raise InvalidInput(
            f"no route from {source} to {target} for a {kind}. Routes:\n{supported()}{via}"
        ) from None


def translate(body: Any, key: RouteKey, options: RouteOptions) -> Translated[dict[str, Any]]:
    """One request or response body (a JSON value) translated along `key`."""
    found = route(key)
    if not isinstance(found, BodyRoute):
        raise InvalidInput(f"a {key[2]} is SSE text, not one JSON body")
    return found.run(body, options)


def open_stream(key: RouteKey, options: RouteOptions) -> SSEPump:
    """A pump that translates an SSE stream along `key`: feed it bytes, write what it returns."""
    found = route(key)
    if not isinstance(found, StreamRoute):
        raise InvalidInput(f"a {key[2]} is one JSON body, not an SSE stream")
    return found.open(options)


def degradations(pump: SSEPump) -> list[Degradation]:
    return pump.translator.degradations
