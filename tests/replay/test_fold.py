"""Streams fold into the reply a non-streaming call would have returned, per client API."""

from __future__ import annotations

from anyllm_cli.replay.fold import fold


def test_chat_chunks_fold_text_tools_finish_and_usage() -> None:
    chunks = [
        {
            "id": "c1",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": "He"}}],
        },
        {"id": "c1", "choices": [{"index": 0, "delta": {"content": "llo"}}]},
        {
            "id": "c1",
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "t1",
                                "function": {"name": "get", "arguments": '{"ci'},
                            }
                        ]
                    },
                }
            ],
        },
        {
            "id": "c1",
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]
                    },
                }
            ],
        },
        {"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"id": "c1", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 5}},
    ]
    folded = fold("chat", chunks)
    assert folded.error is None
    assert folded.response == {
        "id": "c1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello",
                    "tool_calls": [
                        {
                            "id": "t1",
                            "type": "function",
                            "function": {"name": "get", "arguments": '{"city": "Paris"}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 5},
    }


def test_anthropic_events_fold_through_the_accumulator() -> None:
    events = [
        {
            "type": "message_start",
            "message": {
                "id": "m1",
                "type": "message",
                "role": "assistant",
                "model": "x",
                "content": [],
                "stop_reason": None,
                "usage": {"input_tokens": 2, "output_tokens": 0},
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 1},
        },
        {"type": "message_stop"},
    ]
    reply = fold("messages", events).response
    assert reply is not None
    assert reply["content"] == [{"type": "text", "text": "hi"}]
    assert reply["stop_reason"] == "end_turn"


def test_an_error_event_is_returned_apart_with_what_came_before() -> None:
    events = [
        {"id": "c", "choices": [{"index": 0, "delta": {"content": "par"}}]},
        {"error": {"type": "server_error", "message": "boom"}},
    ]
    folded = fold("chat", events)
    assert folded.error == {"error": {"type": "server_error", "message": "boom"}}
    assert folded.response is not None
    assert folded.response["choices"][0]["message"]["content"] == "par"
    assert (
        fold("messages", [{"type": "error", "error": {"type": "overloaded_error"}}]).response
        is None
    )


def test_gemini_chunks_join_text_and_keep_calls() -> None:
    chunks = [
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "a"}]}}]},
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "b"}]}}]},
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [{"functionCall": {"name": "f", "args": {"x": 1}}}],
                    },
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {"promptTokenCount": 4},
        },
    ]
    reply = fold("gemini", chunks).response
    assert reply == {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"text": "ab"}, {"functionCall": {"name": "f", "args": {"x": 1}}}],
                },
                "index": 0,
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 4},
    }


def test_no_events_no_reply() -> None:
    assert fold("chat", []).response is None
