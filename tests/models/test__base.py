"""The wire base: a byte order mark is skipped; JSON the proxy cannot carry is `InvalidInput` naming
what and where, never a crash."""

from __future__ import annotations

import pytest

from anyllm_cli.errors import InvalidInput
from anyllm_cli.models._base import load_json
from anyllm_cli.models.anthropic import MessagesRequest
from anyllm_cli.models.openai_chat import ChatRequest
from anyllm_cli.models.openai_responses import ResponsesRequest

DEEP = b'{"model":"m","max_tokens":1,"messages":' + b"[" * 10_000 + b"]" * 10_000 + b"}"


def test_deep_nesting_is_invalid_input_not_a_recursion_error() -> None:
    for parse in (load_json, MessagesRequest.parse, ChatRequest.parse, ResponsesRequest.parse):
        with pytest.raises(InvalidInput, match="nested deeper than 200 levels"):
            parse(DEEP)


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (b'{"contents":[{"parts":[{"text":"\\ud800"}]}]}', "contents[0].parts[0].text"),
        (b'{"a":{"b":"x\\udfffy"}}', "a.b"),
        (b'{"a":["ok","\\ud83d"]}', "a[1]"),
        (b'{"\\ud800":1}', "$"),
    ],
)
def test_lone_surrogates_name_their_field(raw: bytes, path: str) -> None:
    with pytest.raises(InvalidInput, match="lone UTF-16 surrogate") as info:
        load_json(raw)
    assert info.value.path == path


def test_a_surrogate_pair_is_text() -> None:
    assert load_json(b'{"a":"\\ud83d\\ude00"}') == {"a": "\N{GRINNING FACE}"}


def test_invalid_json_says_so_once() -> None:
    with pytest.raises(InvalidInput) as info:
        MessagesRequest.parse(b'{"model":')
    assert info.value.message.startswith("invalid JSON: ")
    assert "Invalid JSON" not in info.value.message


@pytest.mark.parametrize("bad", [["text"], {"type": "text"}, 3, None])
def test_a_type_that_is_not_a_string_names_the_field(bad: object) -> None:
    block = {"type": bad, "text": "x"}
    with pytest.raises(InvalidInput) as info:
        MessagesRequest.parse(
            {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [block]}]}
        )
    assert info.value.path == "messages[0].content[0].type"
    with pytest.raises(InvalidInput) as info:
        ChatRequest.parse({"model": "m", "messages": [{"role": "user", "content": [block]}]})
    assert info.value.path == "messages[0].content[0].type"
    with pytest.raises(InvalidInput) as info:
        ResponsesRequest.parse(
            {"model": "m", "input": [{"type": "message", "role": "user", "content": [{**block}]}]}
        )
    assert info.value.path.startswith("input[0].content[0]")


BODY = '{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}'


@pytest.mark.parametrize("data", [b"\xef\xbb\xbf" + BODY.encode(), "\ufeff" + BODY])
def test_a_utf8_byte_order_mark_is_skipped(data: str | bytes) -> None:
    assert MessagesRequest.parse(data).model == "m"
    assert ChatRequest.parse(data).model == "m"


def test_invalid_json_is_one_message_with_line_and_column() -> None:
    with pytest.raises(InvalidInput) as info:
        MessagesRequest.parse(b'{"model":\n  "m",')
    message = str(info.value)
    assert message.startswith("invalid JSON: ")
    assert message.lower().count("invalid json") == 1
    assert "line 2 column" in message
