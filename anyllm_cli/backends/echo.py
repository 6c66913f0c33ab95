"""The offline backend: no key, no network; it answers with the last user message's text.

It speaks OpenAI Chat, like a real upstream, so the whole proxy path (translation, streaming, usage,
tools) runs for a new user trying `anyllm serve --backend echo`, or a client developer's CI:

* `send` returns a `chat.completion` whose text is exactly the last user message's text parts,
  joined with a newline (no prefix, so tests can compare it).
* `stream` yields real SSE bytes: a role chunk, the text cut at word boundaries into several content
  chunks, a finish chunk, then (when `stream_options.include_usage` is set) a usage chunk with empty
  `choices`, then `data: [DONE]`.
* When the request has `tools` and the text is `/tool NAME {json}` naming one of them, the answer is
  a call to that tool with those arguments (`finish_reason: tool_calls`).

Usage: `prompt_tokens` is what `count_tokens` says for the same request (the Chat body is read
back as the Messages request it came from and counted by `tokens.count_tokens`, framing and tool
costs included), so a client sees one figure for both; `completion_tokens` is the BPE count of the
answer. A body that cannot be read back is counted text by text. What it gives up: no images, no
reasoning, no `n > 1`, no `max_tokens` cut-off.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from anyio.lowlevel import checkpoint

from anyllm_cli.backends.base import NO_HEADERS, Api, StreamContext, UpstreamReply, UpstreamStream
from anyllm_cli.errors import ErrorKind, InvalidInput, UpstreamError
from anyllm_cli.models.anthropic import CountTokensRequest
from anyllm_cli.models.openai_chat import ChatRequest
from anyllm_cli.tokens import count_tokens, estimate_tokens
from anyllm_cli.translate import chat_via_messages
from anyllm_cli.translate.streams.sse import encode_openai

if TYPE_CHECKING:
    import httpx

    from anyllm_cli.config import BackendSettings

CHAT_PATH = "/chat/completions"
_PIECE = re.compile(r"\S+\s*|\s+")


def _new_id() -> str:
    return uuid.uuid4().hex


def count(text: str) -> int:
    """The echo backend's usage figure for one text: its BPE token count."""
    return estimate_tokens(text)


def prompt_tokens(body: dict[str, Any], messages: list[dict[str, Any]]) -> int:
    """The request's input tokens as `count_tokens` counts its Messages form."""
    try:
        request = chat_via_messages.request(ChatRequest.parse(body)).body
        return count_tokens(CountTokensRequest.parse(request))
    except InvalidInput:
        return sum(count(_text(m.get("content"))) for m in messages)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            p["text"]
            for p in content
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        )
    return ""


def _messages(body: Any) -> list[dict[str, Any]]:
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise UpstreamError(
            ErrorKind.INVALID_REQUEST, "messages: expected a list of message objects", status=400
        )
    return messages


def _tool_call(body: dict[str, Any], text: str) -> tuple[str, str] | None:
    """(name, arguments JSON) when the text is `/tool NAME {json}` and NAME is an offered tool."""
    if not text.startswith("/tool ") or not isinstance(body.get("tools"), list):
        return None
    name, _, raw = text.removeprefix("/tool ").strip().partition(" ")
    offered = {
        t["function"].get("name")
        for t in body["tools"]
        if isinstance(t, dict) and isinstance(t.get("function"), dict)
    }
    try:
        args = json.loads(raw or "{}")
    except ValueError:
        return None
    if name not in offered or not isinstance(args, dict):
        return None
    return name, json.dumps(args, ensure_ascii=False, separators=(",", ":"))


class _Reply:
    """What the echo answers to one request, shared by send and stream."""

    def __init__(self, body: dict[str, Any], new_id: Callable[[], str], created: int) -> None:
        messages = _messages(body)
        users = [m for m in messages if m.get("role") == "user"]
        self.text = _text(users[-1].get("content")) if users else ""
        self.model = str(body.get("model") or "echo")
        self.id = f"chatcmpl-{new_id()}"
        self.created = created
        self.tool = _tool_call(body, self.text)
        self.call_id = f"call_{new_id()[:24]}" if self.tool else ""
        prompt = prompt_tokens(body, messages)
        completion = count(self.tool[1]) + 1 if self.tool else count(self.text)
        self.usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        self.finish = "tool_calls" if self.tool else "stop"

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool:
            name, arguments = self.tool
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": self.call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ]
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": self.finish, "logprobs": None}
            ],
            "usage": self.usage,
        }

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def chunks(self, include_usage: bool) -> list[dict[str, Any] | None]:
        out: list[dict[str, Any] | None] = [self._chunk({"role": "assistant", "content": ""})]
        if self.tool:
            name, arguments = self.tool
            head = {"index": 0, "id": self.call_id, "type": "function"}
            call = {**head, "function": {"name": name, "arguments": ""}}
            out.append(self._chunk({"tool_calls": [call]}))
            for piece in re.findall(r".{1,16}", arguments, re.S):
                out.append(
                    self._chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                )
        else:
            out.extend(self._chunk({"content": piece}) for piece in _PIECE.findall(self.text))
        out.append(self._chunk({}, self.finish))
        if include_usage:
            usage = self._chunk({})
            usage["choices"] = []
            usage["usage"] = self.usage
            out.append(usage)
        out.append(None)
        return out


class _EchoStream:
    status = 200

    def __init__(self, frames: list[bytes]) -> None:
        self.headers: Mapping[str, str] = {"content-type": "text/event-stream"}
        self._frames = frames

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for frame in self._frames:
            await checkpoint()
            yield frame


class EchoBackend:
    api: Api = "chat"

    def __init__(
        self,
        settings: BackendSettings,
        client: httpx.AsyncClient | None = None,
        *,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = _new_id,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._new_id = new_id

    def _reply(self, path: str, body: dict[str, Any]) -> _Reply:
        if path.split("?", 1)[0].rstrip("/") != CHAT_PATH:
            raise UpstreamError(
                ErrorKind.NOT_FOUND, f"the echo backend answers only {CHAT_PATH}", status=404
            )
        return _Reply(body, self._new_id, int(self._clock()))

    async def send(
        self, path: str, body: dict[str, Any], headers: Mapping[str, str] = NO_HEADERS
    ) -> UpstreamReply:
        reply = self._reply(path, body)
        return UpstreamReply(200, {"content-type": "application/json"}, reply.completion())

    def stream(
        self, path: str, body: dict[str, Any], headers: Mapping[str, str] = NO_HEADERS
    ) -> AbstractAsyncContextManager[UpstreamStream]:
        return StreamContext(self._stream(path, body))

    @asynccontextmanager
    async def _stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[UpstreamStream]:
        reply = self._reply(path, body)
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        yield _EchoStream([encode_openai(c) for c in reply.chunks(include_usage)])

    def forward(
        self, method: str, path: str, content: bytes, headers: Mapping[str, str]
    ) -> StreamContext:
        return StreamContext(self._forward(path))

    @asynccontextmanager
    async def _forward(self, path: str) -> AsyncIterator[UpstreamStream]:
        raise UpstreamError(
            ErrorKind.NOT_FOUND, f"the echo backend has no {path.split('?', 1)[0]}", status=404
        )
        yield _EchoStream([])  # pragma: no cover - makes this a generator

    async def aclose(self) -> None:
        """Nothing to close."""
