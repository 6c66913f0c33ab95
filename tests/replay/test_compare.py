"""Comparison: stop reasons on one scale, tool call changes named, the stated text similarity."""

from __future__ import annotations

import pytest

from anyllm_cli.replay.compare import Answer, answer, compare, similarity, tool_changes


def anthropic(
    text: str, stop: str = "end_turn", tools: list[tuple[str, dict[str, object]]] = ()
) -> dict[str, object]:  # type: ignore[assignment]
    content: list[dict[str, object]] = [{"type": "text", "text": text}]
    content += [
        {"type": "tool_use", "id": f"t{i}", "name": n, "input": a} for i, (n, a) in enumerate(tools)
    ]
    return {
        "type": "message",
        "content": content,
        "stop_reason": stop,
        "usage": {"input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 3},
    }


def test_each_api_reads_into_one_answer() -> None:
    assert answer(anthropic("hi", "tool_use", [("get", {"city": "Paris"})])) == Answer(
        "tool", "hi", (("get", {"city": "Paris"}),), 15, 3
    )
    chat = {
        "choices": [
            {
                "message": {
                    "content": "hi",
                    "tool_calls": [{"function": {"name": "get", "arguments": '{"city": "Paris"}'}}],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 15, "completion_tokens": 3},
    }
    assert answer(chat) == Answer("tool", "hi", (("get", {"city": "Paris"}),), 15, 3)
    gemini = {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {"text": "hmm", "thought": True},
                        {"text": "hi"},
                        {"functionCall": {"name": "get", "args": {"city": "Paris"}}},
                    ]
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 15,
            "candidatesTokenCount": 2,
            "thoughtsTokenCount": 1,
        },
    }
    assert answer(gemini) == Answer("tool", "hi", (("get", {"city": "Paris"}),), 15, 3)
    assert answer(None) == Answer() == answer({"unknown": 1})
    assert answer({"choices": [{"message": {}, "finish_reason": "length"}]}).stop == "length"


def test_same_reply_across_apis_shows_no_change() -> None:
    a = answer(anthropic("Hello  World"))
    b = answer(
        {
            "choices": [{"message": {"content": "hello world"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 15, "completion_tokens": 3},
        }
    )
    diff = compare(a, b)
    assert (
        not diff.changed
        and diff.similarity == 1.0
        and (diff.input_delta, diff.output_delta) == (0, 0)
    )


def test_stop_reason_and_tool_calls_changes_are_named() -> None:
    a = answer(anthropic("", "tool_use", [("get", {"city": "Paris", "unit": "c"}), ("log", {})]))
    b = answer(anthropic("done", "end_turn", [("get", {"city": "Lyon", "day": 1})]))
    diff = compare(a, b)
    assert diff.stop == ("tool", "end")
    assert diff.tools == (
        'call 0 get: city "Paris" -> "Lyon"',
        "call 0 get: argument day added",
        "call 0 get: argument unit gone",
        "call 1: log gone",
    )
    assert diff.to_json()["stop_reason"] == ["tool", "end"]
    assert tool_changes((("a", {}),), (("b", {}),)) == ["call 0: name a -> b"]
    assert tool_changes((("a", "x"),), (("a", "y"),)) == ["call 0 a: arguments changed"]
    assert tool_changes((), (("a", {}),)) == ["call 0: a added"]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("", "", 1.0),
        ("same words here", "SAME words\nhere", 1.0),
        ("a b c d", "", 0.0),
        ("a b c d", "a b x y", 0.5),
        ("one two", "three four", 0.0),
    ],
)
def test_similarity_is_the_word_sequence_ratio(a: str, b: str, expected: float) -> None:
    assert similarity(a, b) == expected
