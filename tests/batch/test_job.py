from __future__ import annotations

import json

import pytest

from anyllm_cli.batch import job
from anyllm_cli.batch.job import BatchInvalid, ItemResult
from anyllm_cli.errors import ErrorKind

A = {
    "custom_id": "a",
    "params": {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]},
}
OPENAI = {
    "custom_id": "a",
    "method": "POST",
    "url": "/v1/chat/completions",
    "body": {"model": "m", "messages": []},
}


def test_the_first_line_names_the_format() -> None:
    assert job.detect(b"\n" + json.dumps(A).encode()) == "anthropic"
    assert job.detect(json.dumps(OPENAI).encode()) == "openai"
    assert job.load(json.dumps(OPENAI).encode()).format == "openai"
    with pytest.raises(BatchInvalid, match="line 1: neither"):
        job.detect(b'{"custom_id": "a"}')
    with pytest.raises(BatchInvalid, match="empty"):
        job.detect(b"\n\n")
    with pytest.raises(BatchInvalid, match="line 2: not valid JSON"):
        job.detect(b"\n[\n")


def test_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job, "MAX_REQUESTS", 2)
    data = b"\n".join(json.dumps({**A, "custom_id": f"c{i}"}).encode() for i in range(3))
    with pytest.raises(BatchInvalid, match="has 3 requests; the limit is 2"):
        job.load(data)
    monkeypatch.setattr(job, "MAX_BYTES", 10)
    with pytest.raises(BatchInvalid) as err:
        job.load(data)
    assert err.value.kind == ErrorKind.REQUEST_TOO_LARGE


def test_problems_stop_at_a_bound() -> None:
    data = b"\n".join(b"nope" for _ in range(100))
    with pytest.raises(BatchInvalid, match=r"\(and more\)") as err:
        job.load(b"\n".join([json.dumps(A).encode(), data]))
    assert len(err.value.problems) == job.MAX_PROBLEMS


def test_item_results_round_trip() -> None:
    for result in (
        ItemResult("succeeded", body={"id": "x"}),
        ItemResult("errored", status=503, error_kind=ErrorKind.OVERLOADED, message="busy"),
        ItemResult("expired"),
    ):
        assert ItemResult.from_json(json.loads(json.dumps(result.to_json()))) == result
