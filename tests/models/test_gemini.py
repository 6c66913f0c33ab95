from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from anyllm_cli.errors import InvalidInput
from anyllm_cli.models.gemini import (
    ErrorResponse,
    GenerateContentRequest,
    GenerateContentResponse,
    Part,
)
from anyllm_cli.translate.streams.sse import SSEDecoder

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "messages_via_gemini"
RESPONSES = sorted(CORPUS.glob("*.response.json"))
STREAMS = sorted(CORPUS.glob("*.sse"))


@pytest.mark.parametrize("path", RESPONSES, ids=lambda p: p.stem)
def test_every_response_fixture_round_trips(path: Path) -> None:
    raw = json.loads(path.read_text())
    assert GenerateContentResponse.parse(raw).dump() == raw


def _chunks(path: Path) -> list[dict[str, Any]]:
    decoder = SSEDecoder()
    frames = decoder.decode(path.read_bytes()) + decoder.flush()
    return [json.loads(frame.data) for frame in frames]


@pytest.mark.parametrize("path", STREAMS, ids=lambda p: p.stem)
def test_every_stream_chunk_round_trips(path: Path) -> None:
    for chunk in _chunks(path):
        model = ErrorResponse if "error" in chunk else GenerateContentResponse
        assert model.parse(chunk).dump() == chunk


def test_request_round_trips_with_unknown_fields_and_explicit_nulls() -> None:
    raw = {
        "contents": [
            {
                "role": "model",
                "parts": [
                    {"text": "t", "thought": True, "thoughtSignature": "c2ln"},
                    {"functionCall": {"name": "f", "args": {"a": 1}, "id": "x"}},
                    {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
                    {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://b/f.pdf"}},
                    {"videoMetadata": {"fps": 1}, "text": "v"},
                ],
            },
            {"parts": [{"functionResponse": {"name": "f", "response": {"result": 1}}}]},
        ],
        "systemInstruction": {"parts": [{"text": "sys"}]},
        "tools": [{"functionDeclarations": [{"name": "f"}]}, {"googleSearch": {}}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}},
        "generationConfig": {
            "maxOutputTokens": 10,
            "temperature": None,
            "thinkingConfig": {"thinkingLevel": "HIGH", "includeThoughts": True},
            "seed": 7,
        },
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"}],
        "labels": {"team": "a"},
    }
    assert GenerateContentRequest.parse(raw).dump() == raw


def test_absent_stays_absent() -> None:
    part = Part.parse({"text": "hi"})
    assert part.dump() == {"text": "hi"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "contents: Field required"),
        ({"contents": [{"parts": [{"functionCall": {"args": {}}}]}]}, "contents[0].parts[0]"),
        ({"contents": [{"parts": [{"text": 3}]}]}, "contents[0].parts[0].text"),
        ("{nope", "invalid JSON"),
    ],
)
def test_errors_name_the_json_path(raw: object, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        GenerateContentRequest.parse(raw)
    assert str(err.value).startswith(message)


def test_error_body_parses() -> None:
    raw = {"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT", "details": []}}
    assert ErrorResponse.parse(raw).dump() == raw
