"""How fast `anyllm translate` does its work: run on demand, `python tests/bench/bench_translate.py`.

Not collected by pytest (the file is not named test_*.py), and it asserts nothing: it prints a table
and says whether each goal is met.

- request: a ~50 KB Claude Code-style request (the subagent fixture plus a few tool turns), bytes in
  to bytes out: json.loads, MessagesRequest.parse, messages_via_chat.request, json.dumps. Median and
  p99 over 2,000 runs, each stage on its own and the whole. Goal: whole <= 1 ms median. The reverse
  (the translated OpenAI request back to Anthropic) is timed the same way, for comparison.
- streams: a synthetic 10,000-chunk OpenAI stream through SSEPump(MessagesViaChatStream) and a
  10,000-event Anthropic stream through SSEPump(ChatViaMessagesStream), bytes in (cut in 16 KB
  network-sized pieces) to bytes out. Goal: >= 50,000 chunks/s.

`--profile` adds the top of a cProfile run of each.
"""

from __future__ import annotations

import copy
import cProfile
import json
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from anyllm_cli.models.anthropic import MessagesRequest
from anyllm_cli.models.openai_chat import ChatRequest
from anyllm_cli.translate import chat_via_messages, messages_via_chat
from anyllm_cli.translate.streams.chat_via_messages import ChatViaMessagesStream
from anyllm_cli.translate.streams.messages_via_chat import MessagesViaChatStream
from anyllm_cli.translate.streams.pump import SSEPump
from anyllm_cli.translate.streams.sse import dumps, encode_anthropic, encode_openai

FIXTURE = (
    Path(__file__).resolve().parents[1] / "fixtures/anthropic/claude_code_subagent.request.json"
)
RUNS = 2000
CHUNKS = 10_000
PIECE = 16 * 1024
REQUEST_GOAL_MS = 1.0
STREAM_GOAL = 50_000


# -- inputs ------------------------------------------------------------------------------------------


def claude_code_request(target_bytes: int = 50_000) -> bytes:
    """The Claude Code fixture, with tool turns (Read, then Bash) added until ~50 KB compact."""
    body = json.loads(FIXTURE.read_text())
    first = body["messages"][0]
    filler = first["content"][0]["text"]
    turn = 0
    while len(dumps(body)) < target_bytes:
        turn += 1
        call = f"toolu_bench{turn:04d}"
        tool = "Read" if turn % 2 else "Bash"
        args = {"file_path": f"/src/module_{turn}.py"} if tool == "Read" else {"command": "ls -la"}
        body["messages"] += [
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"Step {turn}: {filler[:120]}"},
                    {"type": "tool_use", "id": call, "name": tool, "input": args},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call, "content": filler[: 600 + turn]}
                ],
            },
        ]
    body["messages"].append(copy.deepcopy(first))
    return dumps(body).encode()


def openai_stream(chunks: int = CHUNKS) -> bytes:
    """A text answer, then a tool call streamed in fragments, a finish and a usage chunk."""
    head = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "m"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return b"data: " + dumps({**head, "choices": [choice]}).encode() + b"\n\n"

    text_chunks = chunks * 8 // 10
    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": f"word{i} "}) for i in range(text_chunks)]
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "t", "arguments": ""},
    }
    out.append(chunk({"tool_calls": [call]}))
    args = chunks - text_chunks - 5
    out += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"ab'}}]})] * args
    out.append(chunk({}, "tool_calls"))
    usage = {"prompt_tokens": 10, "completion_tokens": chunks, "total_tokens": chunks + 10}
    out.append(b"data: " + dumps({**head, "choices": [], "usage": usage}).encode() + b"\n\n")
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def anthropic_stream(events: int = CHUNKS) -> bytes:
    def event(data: dict[str, Any]) -> bytes:
        return encode_anthropic(data)

    message: dict[str, Any] = {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 1},
    }
    text_events = events * 8 // 10
    out = [event({"type": "message_start", "message": message})]
    out.append(
        event(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
        )
    )
    out += [
        event(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": f"word{i} "},
            }
        )
        for i in range(text_events)
    ]
    out.append(event({"type": "content_block_stop", "index": 0}))
    tool = {"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}
    out.append(event({"type": "content_block_start", "index": 1, "content_block": tool}))
    delta = {"type": "input_json_delta", "partial_json": '"ab'}
    args = events - text_events - 6
    out += [event({"type": "content_block_delta", "index": 1, "delta": delta})] * args
    out.append(event({"type": "content_block_stop", "index": 1}))
    out.append(
        event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": events},
            }
        )
    )
    out.append(event({"type": "message_stop"}))
    return b"".join(out)


# -- measuring ---------------------------------------------------------------------------------------


def timings(fn: Callable[[], object], runs: int = RUNS) -> list[float]:
    for _ in range(min(50, runs)):  # warm-up
        fn()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def median_p99(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def request_rows(data: bytes) -> list[tuple[str, float, float]]:
    body = json.loads(data)
    req = MessagesRequest.parse(body)
    translated = messages_via_chat.request(req).body
    reverse_bytes = dumps(translated).encode()
    reverse_body = json.loads(reverse_bytes)
    reverse_req = ChatRequest.parse(reverse_body)

    def whole() -> bytes:
        out = messages_via_chat.request(MessagesRequest.parse(json.loads(data))).body
        return dumps(out).encode()

    def reverse_whole() -> bytes:
        out = chat_via_messages.request(ChatRequest.parse(json.loads(reverse_bytes))).body
        return dumps(out).encode()

    stages: list[tuple[str, Callable[[], object]]] = [
        ("  json.loads", lambda: json.loads(data)),
        ("  MessagesRequest.parse", lambda: MessagesRequest.parse(body)),
        ("  messages_via_chat.request", lambda: messages_via_chat.request(req)),
        ("  json.dumps", lambda: dumps(translated).encode()),
        ("anthropic -> openai request (whole)", whole),
        ("  ChatRequest.parse", lambda: ChatRequest.parse(reverse_body)),
        ("  chat_via_messages.request", lambda: chat_via_messages.request(reverse_req)),
        ("openai -> anthropic request (whole)", reverse_whole),
    ]
    return [(name, *median_p99(timings(fn))) for name, fn in stages]


def pump_rate(
    make: Callable[[], SSEPump], data: bytes, count: int, repeats: int = 5
) -> tuple[float, int]:
    """Best chunks/s over `repeats` runs, and the output size."""
    pieces = [data[i : i + PIECE] for i in range(0, len(data), PIECE)]
    best, size = 0.0, 0
    for _ in range(repeats):
        pump = make()
        start = time.perf_counter()
        out = [pump.feed(piece) for piece in pieces]
        out.append(pump.finish())
        elapsed = time.perf_counter() - start
        best = max(best, count / elapsed)
        size = sum(map(len, out))
    return best, size


def forward_pump() -> SSEPump:
    return SSEPump(MessagesViaChatStream(requested_model="claude-sonnet-4-5"), encode_anthropic)


def reverse_pump() -> SSEPump:
    return SSEPump(
        ChatViaMessagesStream(requested_model="gpt-4o", include_usage=True), encode_openai
    )


def profile(title: str, fn: Callable[[], object]) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    print(f"\n-- profile: {title} --")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


def main(argv: list[str]) -> int:
    data = claude_code_request()
    ostream, astream = openai_stream(), anthropic_stream()
    print(
        f"python {sys.version.split()[0]}; request {len(data) / 1000:.1f} KB compact, {RUNS} runs"
    )
    print(f"{'request (bytes in -> bytes out)':<40} {'median ms':>10} {'p99 ms':>10}")
    rows = request_rows(data)
    for name, median, p99 in rows:
        print(f"{name:<40} {median * 1000:>10.3f} {p99 * 1000:>10.3f}")
    whole = next(median for name, median, _ in rows if name.startswith("anthropic -> openai"))
    print(
        f"goal <= {REQUEST_GOAL_MS} ms median: {'met' if whole * 1000 <= REQUEST_GOAL_MS else 'MISSED'}"
    )

    print(f"\n{'stream (bytes in -> bytes out)':<40} {'chunks/s':>10} {'MB in':>7} {'MB out':>7}")
    for name, make, stream in (
        ("openai chunks -> anthropic events", forward_pump, ostream),
        ("anthropic events -> openai chunks", reverse_pump, astream),
    ):
        rate, size = pump_rate(make, stream, CHUNKS)
        verdict = "met" if rate >= STREAM_GOAL else "MISSED"
        print(
            f"{name:<40} {rate:>10,.0f} {len(stream) / 1e6:>7.2f} {size / 1e6:>7.2f}  goal {verdict}"
        )

    if "--profile" in argv:
        profile(
            "anthropic -> openai request x200",
            lambda: [request_rows_once(data) for _ in range(200)],
        )
        profile("openai -> anthropic stream", lambda: pump_rate(forward_pump, ostream, CHUNKS, 1))
        profile("anthropic -> openai stream", lambda: pump_rate(reverse_pump, astream, CHUNKS, 1))
    return 0


def request_rows_once(data: bytes) -> bytes:
    out = messages_via_chat.request(MessagesRequest.parse(json.loads(data))).body
    return dumps(out).encode()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
