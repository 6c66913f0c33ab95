"""Local token counting: exact BPE counts on strings, fixed costs for images, tools and documents."""

from __future__ import annotations

import base64
import json
import struct
import threading
from pathlib import Path
from typing import Any

import pytest

from anyllm_cli import tokens
from anyllm_cli.models.anthropic import CountTokensRequest, ImageBlock

FIXTURE = Path(__file__).parent / "fixtures" / "anthropic" / "claude_code_subagent.request.json"


def _request(messages: list[dict[str, Any]], **extra: Any) -> CountTokensRequest:
    return CountTokensRequest.parse({"model": "claude-sonnet-4-5", "messages": messages, **extra})


def _user(*blocks: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": list(blocks)}]


def _image(data: bytes, media_type: str = "image/png") -> dict[str, Any]:
    encoded = base64.b64encode(data).decode()
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": media_type, "data": encoded},
    }


def _png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">II", width, height) + b"\x08\x02\x00\x00\x00"
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\x00" * 40


def _jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x01" * 9
    app1 = b"\xff\xe1" + struct.pack(">H", 2002) + b"\x00" * 2000  # a big EXIF before the frame
    sof = b"\xff\xc0" + struct.pack(">HBHH", 17, 8, height, width) + b"\x03" + b"\x00" * 9
    return b"\xff\xd8" + app0 + app1 + sof + b"\xff\xd9"


def _gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00" * 20


def _webp(chunk: bytes, width: int, height: int) -> bytes:
    head = b"RIFF" + struct.pack("<I", 100) + b"WEBP" + chunk + struct.pack("<I", 80)
    if chunk == b"VP8 ":
        return head + b"\x00" * 6 + struct.pack("<HH", width, height) + b"\x00" * 20
    if chunk == b"VP8L":
        bits = (width - 1) | ((height - 1) << 14)
        return head + b"\x2f" + struct.pack("<I", bits) + b"\x00" * 20
    return (
        head + b"\x00" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    )


# -- plain text -----------------------------------------------------------------------------------


def test_estimate_tokens_is_an_exact_bpe_count() -> None:
    assert tokens.estimate_tokens("") == 0
    assert tokens.estimate_tokens("Hello, world!") == 4
    assert tokens.estimate_tokens("a" * 8000) == 1000  # not characters divided by four
    assert tokens.estimate_tokens("def f(x):\n    return x + 1\n") == 11


def test_single_message_matches_anthropics_published_count() -> None:
    # Anthropic's count_tokens answers 10 for this request; the framing constants are set from it.
    assert tokens.count_tokens(_request([{"role": "user", "content": "Hello, world"}])) == 10


def test_text_blocks_system_and_thinking_are_counted() -> None:
    base = tokens.count_tokens(_request([{"role": "user", "content": "Hi"}]))
    with_system = _request([{"role": "user", "content": "Hi"}], system="You are terse.")
    assert tokens.count_tokens(with_system) == base + tokens.estimate_tokens("You are terse.")
    blocks = _request(
        [
            {"role": "user", "content": "Hi"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "The user greets me.", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "b3BhcXVl"},
                    {"type": "text", "text": "Hello."},
                ],
            },
        ]
    )
    expected = (
        base
        + tokens.MESSAGE_OVERHEAD
        + tokens.estimate_tokens("The user greets me.")
        + tokens.estimate_tokens("Hello.")
    )
    assert tokens.count_tokens(blocks) == expected


def test_tool_use_and_tool_result_count_their_json_and_content() -> None:
    request = _request(
        [
            {"role": "user", "content": "List files"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls -la"}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": [{"type": "text", "text": "a.txt\nb.txt"}],
                    }
                ],
            },
        ]
    )
    expected = (
        tokens.REQUEST_OVERHEAD
        + 3 * tokens.MESSAGE_OVERHEAD
        + tokens.estimate_tokens("List files")
        + 2 * tokens.BLOCK_OVERHEAD
        + tokens.estimate_tokens("Bash")
        + tokens.estimate_tokens('{"command":"ls -la"}')
        + tokens.estimate_tokens("a.txt\nb.txt")
    )
    assert tokens.count_tokens(request) == expected


def test_tool_definitions_add_the_tool_prompt_and_the_schema() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    tool = {"name": "get_weather", "description": "Weather for a city.", "input_schema": schema}
    messages = [{"role": "user", "content": "Paris?"}]
    bare = tokens.count_tokens(_request(messages))
    definition = (
        tokens.TOOL_OVERHEAD
        + tokens.estimate_tokens("get_weather")
        + tokens.estimate_tokens("Weather for a city.")
        + tokens.estimate_tokens(json.dumps(schema, separators=(",", ":")))
    )
    auto = tokens.count_tokens(_request(messages, tools=[tool]))
    assert auto == bare + tokens.TOOL_PROMPT_AUTO + definition
    forced = _request(messages, tools=[tool], tool_choice={"type": "tool", "name": "get_weather"})
    assert tokens.count_tokens(forced) == bare + tokens.TOOL_PROMPT_FORCED + definition


def test_builtin_tools_have_fixed_costs() -> None:
    messages = [{"role": "user", "content": "x"}]
    bare = tokens.count_tokens(_request(messages))
    bash = tokens.count_tokens(
        _request(messages, tools=[{"type": "bash_20250124", "name": "bash"}])
    )
    assert bash == bare + tokens.TOOL_PROMPT_AUTO + tokens.BUILTIN_TOOL_TOKENS["bash"]


def test_unknown_and_server_blocks_are_counted_not_dropped() -> None:
    bare = tokens.count_tokens(_request(_user({"type": "text", "text": "x"})))
    unknown = {"type": "brand_new_block", "payload": "a fairly long payload " * 20}
    assert tokens.count_tokens(_request(_user({"type": "text", "text": "x"}, unknown))) > bare + 50
    result = {
        "type": "web_search_tool_result",
        "tool_use_id": "s1",
        "content": [{"type": "web_search_result", "title": "Paris weather " * 10}],
    }
    assert tokens.count_tokens(_request(_user({"type": "text", "text": "x"}, result))) > bare + 30


# -- images and documents -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "size"),
    [
        (_png(640, 480), (640, 480)),
        (_jpeg(1024, 768), (1024, 768)),
        (_gif(300, 200), (300, 200)),
        (_webp(b"VP8 ", 800, 600), (800, 600)),
        (_webp(b"VP8L", 320, 240), (320, 240)),
        (_webp(b"VP8X", 2000, 1000), (2000, 1000)),
        (b"not an image", None),
        (b"\xff\xd8\xff\xe0", None),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00", None),
    ],
)
def test_image_size_reads_the_header(data: bytes, size: tuple[int, int] | None) -> None:
    assert tokens.image_size(data) == size


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (200, 200, 54),  # ceil(40000 / 750)
        (1000, 1000, 1334),
        (1092, 1092, 1590),  # Anthropic's largest 1:1 size that needs no resizing
        (4000, 3000, 1600),  # downscaled, capped
        (0, 10, 1600),
    ],
)
def test_image_tokens_follow_anthropics_formula(width: int, height: int, expected: int) -> None:
    assert tokens.image_tokens_for_size(width, height) == expected


def test_images_in_requests_and_tool_results() -> None:
    bare = tokens.count_tokens(_request(_user({"type": "text", "text": "What is this?"})))
    png = _image(_png(200, 200))
    assert tokens.count_tokens(_request(_user({"type": "text", "text": "What is this?"}, png))) == (
        bare + 54
    )
    url = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    assert tokens.count_tokens(_request(_user({"type": "text", "text": "What is this?"}, url))) == (
        bare + tokens.IMAGE_MAX_TOKENS
    )
    in_result = {"type": "tool_result", "tool_use_id": "t", "content": [png]}
    with_result = tokens.count_tokens(
        _request(_user({"type": "text", "text": "What is this?"}, in_result))
    )
    assert with_result == bare + tokens.BLOCK_OVERHEAD + 54


def test_garbage_base64_image_costs_the_maximum() -> None:
    block = ImageBlock.parse(
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "!!!"}}
    )
    assert tokens.image_tokens(block) == tokens.IMAGE_MAX_TOKENS


def _pdf(pages: int, *, with_count: bool = True) -> str:
    kids = " ".join(f"{i + 3} 0 R" for i in range(pages))
    count = f"/Count {pages} " if with_count else ""
    body = "%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    body += f"2 0 obj << /Type /Pages /Kids [{kids}] {count}>> endobj\n"
    for i in range(pages):
        body += f"{i + 3} 0 obj << /Type /Page /Parent 2 0 R >> endobj\n"
    return base64.b64encode(body.encode()).decode()


def test_pdf_pages() -> None:
    assert tokens.pdf_pages(_pdf(3)) == 3
    assert tokens.pdf_pages(_pdf(5, with_count=False)) == 5
    assert tokens.pdf_pages(base64.b64encode(b"%PDF-1.7 compressed").decode()) == 1


def test_documents() -> None:
    bare = tokens.count_tokens(_request(_user({"type": "text", "text": "Summarise"})))

    def with_doc(source: dict[str, Any]) -> int:
        doc = {"type": "document", "source": source}
        return tokens.count_tokens(_request(_user({"type": "text", "text": "Summarise"}, doc)))

    pdf = {"type": "base64", "media_type": "application/pdf", "data": _pdf(2)}
    assert with_doc(pdf) == bare + tokens.BLOCK_OVERHEAD + 2 * tokens.PDF_PAGE_TOKENS
    text = {"type": "text", "media_type": "text/plain", "data": "The quick brown fox."}
    assert with_doc(text) == bare + tokens.BLOCK_OVERHEAD + tokens.estimate_tokens(
        "The quick brown fox."
    )
    url = {"type": "url", "url": "https://example.com/a.pdf"}
    assert with_doc(url) == bare + tokens.BLOCK_OVERHEAD + tokens.PDF_PAGE_TOKENS


# -- a real client's request, and the lazy load ---------------------------------------------------


def test_claude_code_request_is_in_a_sane_range() -> None:
    body = json.loads(FIXTURE.read_text())
    request = CountTokensRequest.parse(body)
    count = tokens.count_tokens(request)
    raw = len(FIXTURE.read_text())
    # 21 tool definitions, a long system prompt: thousands of tokens, fewer than the JSON's bytes / 3.
    assert 5_000 < count < raw // 3
    assert count > tokens.TOOL_PROMPT_AUTO + 21 * tokens.TOOL_OVERHEAD


def test_tokenizer_loads_once_across_threads() -> None:
    seen: list[object] = []

    def load() -> None:
        seen.append(tokens._tokenizer())

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(seen) == 4
    assert all(item is seen[0] for item in seen)


def test_a_long_text_counted_in_pieces_matches_the_whole() -> None:
    """Pieces are cut before whitespace, where the BPE cuts anyway: at most a token per piece off."""
    from anyllm_cli.tokens import _tokenizer, estimate_tokens

    text = 'lorem ipsum 日本語 dolor\n  sit amet {"a": 1} emoji😀 ' * 20_000
    whole = _tokenizer().count(text)
    assert whole - len(text) // 32_768 - 1 <= estimate_tokens(text) <= whole
