"""Credentials never survive redaction: by header name, by the look of a key, by exact value."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from anyllm_cli.replay.redact import REDACTED, Redactor

KEYS = [
    "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789",
    "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
    "sk-0123456789abcdef0123456789abcdef",
    "AIzaSyA1234567890abcdefghijklmnopqrstuv",
    "AKIAIOSFODNN7EXAMPLE",
]


def test_secret_headers_are_redacted_in_any_case() -> None:
    headers = {
        "Authorization": "Bearer x",
        "X-Api-Key": "k",
        "x-goog-api-key": "g",
        "Cookie": "session=1",
        "anthropic-version": "2023-06-01",
    }
    out = Redactor().headers(headers)
    assert out == {
        "authorization": REDACTED,
        "x-api-key": REDACTED,
        "x-goog-api-key": REDACTED,
        "cookie": REDACTED,
        "anthropic-version": "2023-06-01",
    }


def test_key_shaped_strings_leave_json_text_and_it_stays_json() -> None:
    body = {"messages": [{"role": "user", "content": f"my key is {k}, keep it"} for k in KEYS]}
    text = Redactor().text(json.dumps(body))
    for key in KEYS:
        assert key not in text
    again = json.loads(text)
    assert again["messages"][0]["content"] == f"my key is {REDACTED}, keep it"


def test_named_secrets_go_too_even_escaped_in_json() -> None:
    secret = 'proxy"key\\with-quote'
    text = Redactor([secret, "short"]).text(json.dumps({"k": f"x {secret} y", "s": "short"}))
    assert json.loads(text) == {"k": f"x {REDACTED} y", "s": "short"}  # < 8 chars: not a secret


def test_ordinary_text_is_kept() -> None:
    text = "ask-me sk-short skeleton AIza and AKIA lowercase"
    assert Redactor().text(text) == text


def test_bytes_are_scrubbed_like_text() -> None:
    secret = "proxé-secret-key"  # non-ASCII: kept as is in JSON bytes, as orjson writes them
    data = json.dumps({"k": f"{secret} and {KEYS[0]}"}, ensure_ascii=False).encode()
    out = Redactor([secret]).data(data)
    assert json.loads(out) == {"k": f"{REDACTED} and {REDACTED}"}


FRAGMENTS = [
    *KEYS,
    "sk-",
    "AIza",
    "AKIA",
    "ASIA",
    "proxy-secret-9",
    "task-list",
    " ",
    '"',
    "é",
    "x",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=20))
def test_the_quick_scan_never_changes_the_result(parts: list[str]) -> None:
    """Skipping the regex when no literal occurs gives what the full regex pass gives, always."""
    text = json.dumps({"k": "".join(parts)}, ensure_ascii=False)
    redactor = Redactor(["proxy-secret-9"])
    assert redactor.text(text) == redactor._pattern.sub(REDACTED, text)
    data = text.encode()
    assert redactor.data(data) == redactor._bytes.sub(REDACTED.encode(), data)
