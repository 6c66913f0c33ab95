"""The wire base: a byte order mark is skipped, a JSON syntax error is said once with its place."""

from __future__ import annotations

import pytest

from anyllm_cli.errors import InvalidInput
from anyllm_cli.models.anthropic import MessagesRequest
from anyllm_cli.models.openai_chat import ChatRequest

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
