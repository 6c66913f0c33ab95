"""The dispatch table of `anyllm translate`: (from, to, kind) -> the pure function that does it.

The rows between Anthropic and an upstream API (openai = chat, responses, gemini, bedrock =
converse) are the hops of `hops.py`, the same the proxy's pipeline drives; the rows from the other
clients' APIs (OpenAI Chat and Gemini requests to Anthropic) are the client sides.

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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anyllm_cli.errors import ErrorKind, InvalidInput
from anyllm_cli.models._base import Wire
from anyllm_cli.models.anthropic import MessagesRequest, MessagesResponse
from anyllm_cli.models.gemini import GenerateContentRequest, GenerateContentResponse
from anyllm_cli.models.openai_chat import ChatRequest, ChatResponse
from anyllm_cli.models.openai_responses import ResponsesRequest, ResponsesResponse
from anyllm_cli.translate import (
    chat_via_messages,
    gemini_via_messages,
)
from anyllm_cli.translate.degradation import Degradation, Translated
from anyllm_cli.translate.detect import Api, Kind
from anyllm_cli.translate.hops import HOPS, HopOptions
from anyllm_cli.translate.streams.chat_via_messages import ChatViaMessagesStream
from anyllm_cli.translate.streams.gemini_via_messages import GeminiViaMessagesStream
from anyllm_cli.translate.streams.pump import OutEvent, SSEPump, StreamTranslator
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


def _hop_request(api: str) -> Callable[[Any, RouteOptions], Translated[dict[str, Any]]]:
    def run(body: Any, options: RouteOptions) -> Translated[dict[str, Any]]:
        hop_options = HopOptions(map_model=options.map_model)
        return HOPS[api].request(MessagesRequest.parse(body), hop_options)

    return run


def _hop_response(
    api: str, model_of: Callable[[Any], str]
) -> Callable[[Any, RouteOptions], Translated[dict[str, Any]]]:
    def run(body: Any, options: RouteOptions) -> Translated[dict[str, Any]]:
        return HOPS[api].response(body, requested_model=options.map_model(model_of(body)))

    return run


def _body_model(key: str) -> Callable[[Any], str]:
    def model_of(body: Any) -> str:
        return _model(body.get(key)) if isinstance(body, dict) else ""

    return model_of


def _no_model(body: Any) -> str:
    return ""


def _openai_request(body: Any, options: RouteOptions) -> Translated[dict[str, Any]]:
    messages_options = chat_via_messages.MessagesOptions(map_model=options.map_model)
    return chat_via_messages.request(ChatRequest.parse(body), messages_options)


def _anthropic_response(body: Any, options: RouteOptions) -> Translated[dict[str, Any]]:
    resp = MessagesResponse.parse(body)
    model = options.map_model(resp.model)
    return chat_via_messages.response(resp, requested_model=model, created=options.created)


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


# -- streams -----------------------------------------------------------------------------------------


class _OnFirstEvent:
    """A stream translator made when the first event arrives (it names the model)."""

    def __init__(self, make: Callable[[dict[str, Any]], StreamTranslator]) -> None:
        self._make = make
        self._inner: StreamTranslator | None = None
        self.degradations: list[Degradation] = []

    def _start(self, event: dict[str, Any]) -> StreamTranslator:
        self._inner = self._make(event)
        self.degradations = self._inner.degradations
        return self._inner

    def feed(self, event: dict[str, Any]) -> list[OutEvent]:
        inner = self._inner or self._start(event)
        return [*inner.feed(event)]

    def finish(self) -> list[OutEvent]:
        inner = self._inner or self._start({})
        return [*inner.finish()]

    def fail(self, kind: ErrorKind, message: str) -> list[OutEvent]:
        inner = self._inner or self._start({})
        return [*inner.fail(kind, message)]


def _model(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _anthropic_stream(options: RouteOptions) -> SSEPump:
    def make(first: dict[str, Any]) -> ChatViaMessagesStream:
        message = first.get("message")
        model = _model(message.get("model")) if isinstance(message, dict) else ""
        return ChatViaMessagesStream(
            requested_model=options.map_model(model), created=options.created, include_usage=True
        )

    return SSEPump(_OnFirstEvent(make), encode_openai)


def _to_gemini_stream(options: RouteOptions) -> SSEPump:
    def make(first: dict[str, Any]) -> GeminiViaMessagesStream:
        message = first.get("message")
        model = _model(message.get("model")) if isinstance(message, dict) else ""
        return GeminiViaMessagesStream(model=options.map_model(model))

    return SSEPump(_OnFirstEvent(make), encode_openai)  # `data:` lines; it never ends with [DONE]


def _hop_stream(
    api: str, model_of: Callable[[dict[str, Any]], str]
) -> Callable[[RouteOptions], SSEPump]:
    """An upstream API's stream to Anthropic events; the model is read from the first event."""

    def open_pump(options: RouteOptions) -> SSEPump:
        def make(first: dict[str, Any]) -> StreamTranslator:
            return HOPS[api].stream(requested_model=options.map_model(model_of(first)))

        return SSEPump(_OnFirstEvent(make), _encode_anthropic)

    return open_pump


def _response_model(first: dict[str, Any]) -> str:
    response = first.get("response")
    return _model(response.get("model")) if isinstance(response, dict) else ""


def _encode_anthropic(event: OutEvent) -> bytes:
    # An Anthropic stream has no [DONE] sentinel; its translator never asks for one.
    return b"" if event is None else encode_anthropic(event)


# -- the table ---------------------------------------------------------------------------------------

ROUTES: dict[RouteKey, BodyRoute | StreamRoute] = {
    ("anthropic", "openai", "request"): BodyRoute(_hop_request("chat")),
    ("openai", "anthropic", "response"): BodyRoute(_hop_response("chat", _body_model("model"))),
    ("openai", "anthropic", "stream"): StreamRoute(_hop_stream("chat", _body_model("model"))),
    ("openai", "anthropic", "request"): BodyRoute(_openai_request),
    ("anthropic", "openai", "response"): BodyRoute(_anthropic_response),
    ("anthropic", "openai", "stream"): StreamRoute(_anthropic_stream),
    ("anthropic", "responses", "request"): BodyRoute(_hop_request("responses")),
    ("responses", "anthropic", "response"): BodyRoute(
        _hop_response("responses", _body_model("model"))
    ),
    ("responses", "anthropic", "stream"): StreamRoute(_hop_stream("responses", _response_model)),
    ("anthropic", "gemini", "request"): BodyRoute(_hop_request("gemini")),
    ("gemini", "anthropic", "response"): BodyRoute(
        _hop_response("gemini", _body_model("modelVersion"))
    ),
    ("gemini", "anthropic", "stream"): StreamRoute(
        _hop_stream("gemini", _body_model("modelVersion"))
    ),
    ("gemini", "anthropic", "request"): BodyRoute(_gemini_request),
    ("anthropic", "gemini", "response"): BodyRoute(_gemini_response),
    ("anthropic", "gemini", "stream"): StreamRoute(_to_gemini_stream),
    ("anthropic", "bedrock", "request"): BodyRoute(_hop_request("converse")),
    ("bedrock", "anthropic", "response"): BodyRoute(_hop_response("converse", _no_model)),
    ("bedrock", "anthropic", "stream"): StreamRoute(_hop_stream("converse", _no_model)),
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
