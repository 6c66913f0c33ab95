"""A stream that looks complete is complete, and upstream errors keep their status: the real SDKs
against a scripted loopback upstream that misbehaves (ends cleanly without its finish signal,
answers 200 with HTML, refuses the proxy's key and echoes it, answers 404/503).

The upstream picks its behaviour from the model name (Chat, Responses, Anthropic bodies) or the
URL (Gemini), whatever path it is asked on, so one server stands in for every backend kind.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.e2e.conftest import PROXY_KEY, Closing, ProxyProcess

pytestmark = pytest.mark.e2e

ECHOED_KEY = "sk-proj-****************************abcd"


def _chat_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [choice]}  # fmt: skip


def _anthropic_events(stop: bool) -> list[tuple[str, dict[str, Any]]]:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
               "content": [], "stop_reason": None, "stop_sequence": None,
               "usage": {"input_tokens": 3, "output_tokens": 1}}  # fmt: skip
    events = [
        ("message_start", {"type": "message_start", "message": message}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "half an"},
            },
        ),
    ]
    if stop:
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "usage": {"output_tokens": 2},
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
    return events


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        body = json.loads(raw) if raw else {}
        model = str(body.get("model") or self.path)
        if "cookie" in model:  # sets a cookie, and reports the one it was sent
            sent = self.headers.get("cookie") or ""
            reply = {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": f"cookie={sent}"}}]}  # fmt: skip
            self.send_response(200)
            self.send_header("set-cookie", "session=alice-secret; Path=/")
            payload = json.dumps(reply).encode()
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return None
        for status in (401, 404, 503):
            if f"e{status}" in model:
                text = f"Incorrect API key provided: {ECHOED_KEY}." if status == 401 else "no"
                etype = "invalid_request_error" if status != 503 else "server_error"
                return self._send(status, "application/json",
                                  json.dumps({"error": {"message": text, "type": etype}}).encode())  # fmt: skip
        if "html" in model:
            return self._send(200, "text/html", b"<html><body>Sign in to the Wi-Fi</body></html>")
        if "slowtail" in model:
            return self._slow_tail(body)
        if "errchunk" in model:  # an in-stream error, then a [DONE] that must not reach the client
            error = {"error": {"message": "upstream broke", "type": "server_error"}}
            frames = [
                b"data: " + json.dumps(_chat_chunk({"content": "a"})).encode() + b"\n\n",
                b"data: " + json.dumps(error).encode() + b"\n\n",
                b"data: [DONE]\n\n",
            ]
            return self._send(200, "text/event-stream", b"".join(frames))
        if "gemini" in self.path:
            chunk = {"candidates": [{"content": {"role": "model", "parts": [{"text": "half an"}]}}]}
            frames = [b"data: " + json.dumps(chunk).encode() + b"\n\n"]
        elif self.path.endswith("/responses"):
            resp = {"id": "resp_1", "object": "response", "status": "in_progress", "output": []}
            item = {"id": "m1", "type": "message", "role": "assistant", "content": []}
            part = {"type": "output_text", "text": ""}
            events = [
                {"type": "response.created", "response": resp},
                {"type": "response.output_item.added", "output_index": 0, "item": item},
                {
                    "type": "response.content_part.added",
                    "output_index": 0,
                    "item_id": "m1",
                    "content_index": 0,
                    "part": part,
                },
                {
                    "type": "response.output_text.delta",
                    "output_index": 0,
                    "item_id": "m1",
                    "content_index": 0,
                    "delta": "half an",
                },
            ]
            frames = [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]
        elif self.path.endswith("/messages"):
            frames = [
                f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
                for name, data in _anthropic_events(stop=False)
            ]
        else:
            first = _chat_chunk({"role": "assistant", "content": "half an"})
            frames = [b"data: " + json.dumps(first).encode() + b"\n\n"]
            if "badchunk" in model:  # a good event and a bad one in the same network chunk
                frames = [frames[0] + b"data: {not json\n\n"]
        # a clean end (chunked terminator), but never a finish signal
        self._send(200, "text/event-stream", b"".join(frames))

    def _slow_tail(self, body: dict[str, Any]) -> None:
        """A whole answer whose last bytes come late: the proxy must not ping after the end."""
        if self.path.endswith("/messages"):
            frames = [
                f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
                for name, data in _anthropic_events(stop=True)
            ]
            tail = [b": trailing\n\n"]
        else:
            usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
            frames = [
                b"data: " + json.dumps(c).encode() + b"\n\n"
                for c in (
                    _chat_chunk({"role": "assistant", "content": "whole"}),
                    _chat_chunk({}, "stop"),
                    {**_chat_chunk({}), "choices": [], "usage": usage},
                )
            ]
            tail = [b"data: [DONE]\n\n"]
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        self.wfile.write(b"".join(frames))
        self.wfile.flush()
        time.sleep(0.7)  # several ping intervals
        self.wfile.write(b"".join(tail))
        self.wfile.flush()
        self.close_connection = True

    def _send(self, status: int, ctype: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()


@pytest.fixture(scope="module")
def scripted() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture(scope="module")
def proxy(scripted: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    backends = "".join(
        f'\n[backends.{name}]\nkind = "{kind}"\nbase_url = "{scripted}{root}"\n'
        f'api_key = "upstream-key"\nmax_retries = 0\nread_timeout = 2.0\n{extra}'
        for name, kind, root, extra in [
            ("chat", "openai", "/v1", ""),
            ("resp", "openai", "/v1", 'api_format = "responses"\n'),
            ("anth", "anthropic", "/v1", ""),
            ("gem", "gemini", "/v1beta", ""),
        ]
    )
    config = (
        f'default_backend = "chat"\n[server]\nproxy_api_keys = ["{PROXY_KEY}"]\n'
        f'ping_interval = 0.2\nlog_format = "json"\n{backends}'
    )
    process = ProxyProcess.start(tmp_path_factory.mktemp("integrity"), config)
    yield process
    assert process.stop() == 0, "\n".join(process.lines[-30:])


def _anthropic(proxy: ProxyProcess, backend: str, closing: Closing) -> anthropic.Anthropic:  # type: ignore[type-arg]
    return closing(
        anthropic.Anthropic(base_url=f"{proxy.url}/{backend}", api_key=PROXY_KEY, max_retries=0)
    )


def _openai(proxy: ProxyProcess, backend: str, closing: Closing) -> openai.OpenAI:  # type: ignore[type-arg]
    return closing(
        openai.OpenAI(base_url=f"{proxy.url}/{backend}/v1", api_key=PROXY_KEY, max_retries=0)
    )


def _sse(text: str) -> list[str]:
    return [line[6:] for line in text.splitlines() if line.startswith("data: ")]


# -- a clean end without the finish signal -----------------------------------------------------------


@pytest.mark.parametrize("backend", ["chat", "resp", "anth", "gem"])
def test_anthropic_clients_get_an_error_event_never_end_turn(
    proxy: ProxyProcess,
    closing: Closing,
    backend: str,  # type: ignore[type-arg]
) -> None:
    client = _anthropic(proxy, backend, closing)
    seen: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        client.messages.stream(
            model="m", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        for event in stream:
            seen.append(event.type)
    assert "message_stop" not in seen and "message_delta" not in seen
    assert "upstream stream ended before it finished" in str(info.value)


@pytest.mark.parametrize("backend", ["chat", "resp", "anth", "gem"])
def test_openai_clients_get_an_error_chunk_and_no_done(proxy: ProxyProcess, backend: str) -> None:
    r = httpx.post(
        f"{proxy.url}/{backend}/v1/chat/completions",
        json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {PROXY_KEY}"},
        timeout=10,
    )
    data = _sse(r.text)
    assert data[-1] != "[DONE]" and "[DONE]" not in data
    last = json.loads(data[-1])
    assert last["error"]["message"] == "upstream stream ended before it finished"
    finishes = [c["choices"][0].get("finish_reason") for c in map(json.loads, data[:-1])
                if c.get("choices")]  # fmt: skip
    assert not any(finishes)


def test_the_openai_sdk_raises_on_the_cut_stream(proxy: ProxyProcess, closing: Closing) -> None:  # type: ignore[type-arg]
    client = _openai(proxy, "chat", closing)
    with pytest.raises(openai.APIError, match="ended before it finished"):
        for _ in client.chat.completions.create(
            model="m", stream=True, messages=[{"role": "user", "content": "hi"}]
        ):
            pass


@pytest.mark.parametrize("backend", ["chat", "anth", "gem"])
def test_gemini_clients_get_an_error_chunk_never_stop(proxy: ProxyProcess, backend: str) -> None:
    r = httpx.post(
        f"{proxy.url}/{backend}/v1beta/models/gemini-x:streamGenerateContent?alt=sse",
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        headers={"x-goog-api-key": PROXY_KEY},
        timeout=10,
    )
    chunks = [json.loads(d) for d in _sse(r.text)]
    assert chunks[-1]["error"]["message"] == "upstream stream ended before it finished"
    assert not any(c.get("finishReason") for x in chunks for c in x.get("candidates", []))


def test_output_before_a_bad_event_in_the_same_chunk_still_arrives(proxy: ProxyProcess) -> None:
    r = httpx.post(
        f"{proxy.url}/chat/v1/messages",
        json={
            "model": "badchunk",
            "max_tokens": 8,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers={"x-api-key": PROXY_KEY, "anthropic-version": "2023-06-01"},
        timeout=10,
    )
    events = [json.loads(d) for d in _sse(r.text)]
    assert next(e["type"] for e in events) == "message_start"
    assert any(e.get("delta", {}).get("text") == "half an" for e in events)
    assert events[-1]["type"] == "error"


@pytest.mark.parametrize("backend", ["chat", "anth"])
def test_nothing_follows_message_stop_even_when_the_upstream_lingers(
    proxy: ProxyProcess, backend: str
) -> None:
    r = httpx.post(
        f"{proxy.url}/{backend}/v1/messages",
        json={
            "model": "slowtail",
            "max_tokens": 8,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers={"x-api-key": PROXY_KEY, "anthropic-version": "2023-06-01"},
        timeout=10,
    )
    names = [line[7:] for line in r.text.splitlines() if line.startswith("event: ")]
    assert names[-1] == "message_stop", names
    assert names.count("message_stop") == 1


def test_no_done_after_an_error_chunk_for_openai_clients(proxy: ProxyProcess) -> None:
    r = httpx.post(
        f"{proxy.url}/chat/v1/chat/completions",
        json={"model": "errchunk", "stream": True, "messages": [{"role": "user", "content": "x"}]},
        headers={"authorization": f"Bearer {PROXY_KEY}"},
        timeout=10,
    )
    data = _sse(r.text)
    assert "[DONE]" not in data
    assert json.loads(data[-1])["error"]["message"] == "upstream broke"


# -- 200 with another media type ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["chat", "resp", "anth"])
def test_html_for_a_stream_is_a_502_before_the_first_byte(
    proxy: ProxyProcess,
    closing: Closing,
    backend: str,  # type: ignore[type-arg]
) -> None:
    client = _anthropic(proxy, backend, closing)
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        client.messages.stream(
            model="html", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        for _ in stream:
            pass
    assert info.value.status_code == 502
    assert info.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    assert "text/html" in info.value.message


def test_html_for_a_gemini_stream_is_a_502(proxy: ProxyProcess) -> None:
    r = httpx.post(
        f"{proxy.url}/gem/v1beta/models/html:streamGenerateContent?alt=sse",
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        headers={"x-goog-api-key": PROXY_KEY},
        timeout=10,
    )
    assert r.status_code == 502 and "text/html" in r.json()["error"]["message"]


def test_one_callers_upstream_cookie_never_reaches_another(
    proxy: ProxyProcess,
    closing: Closing,  # type: ignore[type-arg]
) -> None:
    client = _openai(proxy, "chat", closing)
    texts = [
        client.chat.completions.create(model="cookie", messages=[{"role": "user", "content": "x"}])
        .choices[0]
        .message.content
        for _ in range(3)
    ]
    assert texts == ["cookie="] * 3


# -- upstream statuses -------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "status"), [("e404", 404), ("e503", 503)])
def test_upstream_status_is_kept(
    proxy: ProxyProcess,
    closing: Closing,
    model: str,
    status: int,  # type: ignore[type-arg]
) -> None:
    with pytest.raises(anthropic.APIStatusError) as a:
        _anthropic(proxy, "chat", closing).messages.create(
            model=model, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    assert a.value.status_code == status
    if status == 404:
        assert a.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(openai.APIStatusError) as o:
        _openai(proxy, "anth", closing).chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}]
        )
    assert o.value.status_code == status


def test_refused_upstream_key_is_a_502_that_leaks_nothing(
    proxy: ProxyProcess,
    closing: Closing,
    tmp_path: Path,  # type: ignore[type-arg]
) -> None:
    with pytest.raises(anthropic.APIStatusError) as info:
        _anthropic(proxy, "chat", closing).messages.create(
            model="e401", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.status_code == 502
    assert info.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    assert "backend chat refused the proxy's upstream credentials" in info.value.message
    assert "abcd" not in json.dumps(info.value.body)


def test_an_unreachable_backend_names_it_without_its_address(tmp_path: Path) -> None:
    config = (
        f'default_backend = "gone"\n[server]\nproxy_api_keys = ["{PROXY_KEY}"]\n'
        '[backends.gone]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
        'api_key = "k"\nmax_retries = 0\n'
    )
    process = ProxyProcess.start(tmp_path, config)
    try:
        r = httpx.post(
            f"{process.url}/v1/messages",
            json={"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]},
            headers={"x-api-key": PROXY_KEY, "anthropic-version": "2023-06-01"},
            timeout=10,
        )
    finally:
        assert process.stop() == 0
    assert r.status_code == 502
    assert "backend gone" in r.json()["error"]["message"]
    assert "127.0.0.1" not in r.text and ":9" not in r.text


@pytest.mark.parametrize(
    "reply",
    [
        b"garbage that is not HTTP\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: nine\r\n\r\n{}",
    ],
)
def test_a_malformed_upstream_reply_is_a_502_not_a_500(tmp_path: Path, reply: bytes) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def answer() -> None:
        for _ in range(2):  # the request, and one retry at most
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(reply)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    config = (
        f'default_backend = "bad"\n[server]\nproxy_api_keys = ["{PROXY_KEY}"]\n'
        f'[backends.bad]\nkind = "openai"\nbase_url = "http://127.0.0.1:{port}/v1"\n'
        'api_key = "k"\nmax_retries = 0\nread_timeout = 2.0\n'
    )
    process = ProxyProcess.start(tmp_path, config)
    try:
        r = httpx.post(
            f"{process.url}/v1/messages",
            json={"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]},
            headers={"x-api-key": PROXY_KEY, "anthropic-version": "2023-06-01"},
            timeout=10,
        )
    finally:
        assert process.stop() == 0
        listener.close()
        thread.join(5)
    assert r.status_code == 502, r.text
    assert r.json()["error"]["type"] == "api_error"
    assert "backend bad" in r.json()["error"]["message"]
    assert str(port) not in r.text
