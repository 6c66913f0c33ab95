"""The JSON codec: the same bytes whichever library ran, and the standard library's errors."""

from __future__ import annotations

import json

import pytest

from anyllm_cli.models import codec


def test_compact_utf8_as_both_apis_send_it() -> None:
    body = {"text": "héllo ☃", "n": [1, 2.5, None, True]}
    out = codec.dumps(body)
    assert out == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    assert codec.loads(out) == body


def test_values_orjson_refuses_fall_back() -> None:
    huge = {"n": 2**70}
    assert codec.loads(codec.dumps(huge)) == huge
    assert codec.loads("NaN") != codec.loads("NaN")  # the standard library parses NaN


def test_bad_json_raises_the_standard_error() -> None:
    with pytest.raises(json.JSONDecodeError) as info:
        codec.loads(b"{not json}")
    assert info.value.msg == "Expecting property name enclosed in double quotes"
