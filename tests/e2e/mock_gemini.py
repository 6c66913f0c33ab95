"""A real Gemini API upstream on 127.0.0.1 for end-to-end tests, run in a thread.

`POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse` answer like
Gemini 3: a thought part, then the answer; with tools and no `functionResponse` in the last turn, a
`functionCall` whose part carries a `thoughtSignature` (a model whose name holds "preamble" says
"Checking." first). Like the real API, for gemini-3 models it REJECTS (400 "Function call is
missing a thought_signature") a history whose model-turn `functionCall` parts lack the signature
it gave. A text answer carries TEXT_SIGNATURE, in streams on an empty text part in the last chunk,
as Gemini 3 does. Streams are incremental: each chunk holds only new parts; a functionCall comes
whole with its signature; usageMetadata repeats on every chunk. `:countTokens` answers COUNT
(Vertex's body shape with a Bearer token, the Gemini API's otherwise). `mock-429` is
RESOURCE_EXHAUSTED, `mock-503` UNAVAILABLE. Requests are recorded with their headers.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.e2e.mock_upstream import LoopbackMock, Recorded

COUNT = 1234  # countTokens' answer: a number no local count would give
SIGNATURE = "CiRtb2NrLWdlbWluaS10aG91Z2h0LXNpZ25hdHVyZQ=="  # valid base64, as real ones are
TEXT_SIGNATURE = "Ci10ZXh0LWFuc3dlci1zaWduYXR1cmU/Pz8+Pg=="  # a text answer's ("+" and "/" too)


class MockGemini(LoopbackMock):
    root = "/v1beta"

    @property
    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _Handler


def _missing_signature(body: dict[str, Any]) -> bool:
    for content in body.get("contents", []):
        if content.get("role") != "model":
            continue
        for part in content.get("parts", []):
            if "functionCall" in part and part.get("thoughtSignature") != SIGNATURE:
                return True
    return False


def _parts(body: dict[str, Any], model: str) -> list[dict[str, Any]]:
    contents = body.get("contents", [])
    last = contents[-1]["parts"] if contents else []
    responses = [p["functionResponse"] for p in last if "functionResponse" in p]
    thought = {"text": "Weighing it up.", "thought": True}
    declarations = [d for t in body.get("tools", []) for d in t.get("functionDeclarations", [])]
    if declarations and not responses:
        call = {"name": declarations[0]["name"], "args": {"city": "Paris"}}
        preamble = [{"text": "Checking."}] if "preamble" in model else []
        return [thought, *preamble, {"functionCall": call, "thoughtSignature": SIGNATURE}]
    if responses:
        said = f"tool said: {json.dumps(responses[0]['response'], sort_keys=True)}"
    else:
        said = "gemini says: " + " ".join(p.get("text", "") for p in last if "text" in p)
    return [thought, {"text": said, "thoughtSignature": TEXT_SIGNATURE}]


def _usage(done: bool) -> dict[str, Any]:
    usage = {"promptTokenCount": 40, "cachedContentTokenCount": 8, "totalTokenCount": 40}
    if done:
        usage.update(candidatesTokenCount=10, thoughtsTokenCount=5, totalTokenCount=55)
    return usage


def _reply(parts: list[dict[str, Any]], finish: str | None, done: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "usageMetadata": _usage(done),
        "modelVersion": "gemini-3-pro-preview",
        "responseId": "gem-resp-1",
    }


def _chunks(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in parts:
        if "functionCall" in part:  # whole in one chunk, with its signature, as Gemini 3 sends it
            out.append(_reply([part], None, False))
        else:
            text = part["text"]
            plain = {k: v for k, v in part.items() if k != "thoughtSignature"}
            for i in range(0, len(text), 6):
                out.append(_reply([{**plain, "text": text[i : i + 6]}], None, False))
            if "thoughtSignature" in part:  # Gemini 3: on an empty text part, at the end
                out.append(
                    _reply(
                        [{"text": "", "thoughtSignature": part["thoughtSignature"]}], None, False
                    )
                )
    out.append(_reply([], "STOP", True))
    return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mock: MockGemini

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _json(self, status: int, body: Any) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _error(self, code: int, status: str, message: str) -> None:
        self._json(code, {"error": {"code": code, "message": message, "status": status}})

    def _count_tokens(self, body: dict[str, Any], model: str) -> None:
        """Vertex (a Bearer token) takes contents/systemInstruction/tools at the top level; the
        Gemini API (x-goog-api-key) one generateContentRequest naming the model."""
        if (self.headers.get("authorization") or "").startswith("Bearer "):
            extra = sorted(
                set(body) - {"contents", "systemInstruction", "tools", "generationConfig"}
            )
            if extra or not body.get("contents"):
                self._error(400, "INVALID_ARGUMENT", f"Invalid JSON payload: unknown {extra}")
                return
        else:
            request = body.get("generateContentRequest", {})
            if set(body) != {"generateContentRequest"} or request.get("model") != f"models/{model}":
                self._error(400, "INVALID_ARGUMENT", "generateContentRequest.model/contents")
                return
            if not request.get("contents"):
                self._error(400, "INVALID_ARGUMENT", "generateContentRequest.contents")
                return
        self._json(200, {"totalTokens": COUNT})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.mock.record(Recorded("POST", self.path, dict(self.headers.items()), body))
        path, _, query = self.path.partition("?")
        model, _, action = path.removeprefix("/v1beta/models/").partition(":")
        if action == "countTokens":
            self._count_tokens(body, model)
            return
        if action not in ("generateContent", "streamGenerateContent"):
            self._error(404, "NOT_FOUND", f"no method {action!r}")
            return
        if model == "mock-429":
            self._error(429, "RESOURCE_EXHAUSTED", "quota exceeded")
            return
        if model == "mock-503":
            self._error(503, "UNAVAILABLE", "the model is overloaded")
            return
        if model.startswith("gemini-3") and _missing_signature(body):
            self._error(400, "INVALID_ARGUMENT", "Function call is missing a thought_signature")
            return
        parts = _parts(body, model)
        if action == "generateContent":
            self._json(200, _reply(parts, "STOP", True))
            return
        if query != "alt=sse":
            self._error(400, "INVALID_ARGUMENT", "this mock streams only with alt=sse")
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for chunk in _chunks(parts):
            data = f"data: {json.dumps(chunk)}\r\n\r\n".encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
