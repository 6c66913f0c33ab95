from __future__ import annotations

import json

import pytest
from openai.types import Batch, FileObject

from anyllm_cli.batch import openai
from anyllm_cli.batch.job import BatchInvalid, ItemResult
from anyllm_cli.errors import ErrorKind, InvalidInput
from anyllm_cli.stores.batches import BatchRecord, Counts, FileRecord

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def _line(cid: str, url: str = "/v1/chat/completions", body: object = BODY) -> dict[str, object]:
    return {"custom_id": cid, "method": "POST", "url": url, "body": body}


def _jsonl(*rows: object) -> bytes:
    return b"\n".join(json.dumps(r).encode() for r in rows)


def test_lines_become_chat_items() -> None:
    job = openai.from_jsonl(_jsonl(_line("a"), _line("b")))
    assert (job.format, job.api, job.endpoint) == ("openai", "chat", "/v1/chat/completions")
    assert [i.custom_id for i in job.items] == ["a", "b"]


def test_bad_lines_are_named() -> None:
    data = _jsonl(
        _line("a"),
        _line("b", url="/v1/embeddings"),
        _line("c", body={"messages": []}),
        {"custom_id": "d", "method": "GET", "url": "/v1/chat/completions", "body": BODY},
        _line("a"),
    )
    with pytest.raises(BatchInvalid) as err:
        openai.from_jsonl(data)
    assert [line for line, _ in err.value.problems] == [2, 3, 4, 5]
    assert "body.model" in err.value.problems[1][1]


def test_an_unsupported_endpoint_is_refused_up_front() -> None:
    with pytest.raises(InvalidInput, match="not supported"):
        openai.from_jsonl(_jsonl(_line("a")), endpoint="/v1/completions")
    with pytest.raises(BatchInvalid, match="line 1"):
        openai.from_jsonl(_jsonl(_line("a", url="/v1/moderations")))


RESPONSES = {"model": "m", "input": [{"role": "user", "content": "hi"}], "max_output_tokens": 9}
EMBEDDINGS = {"model": "e", "input": ["a", "b"], "encoding_format": "float"}


def test_responses_and_embeddings_lines_are_passthrough_items() -> None:
    for url, body in (("/v1/responses", RESPONSES), ("/v1/embeddings", EMBEDDINGS)):
        job = openai.from_jsonl(_jsonl(_line("a", url, body)), endpoint=url)
        assert (job.api, job.endpoint, job.models) == ("forward", url, {body["model"]})
        assert json.loads(job.items[0].body) == body


def test_each_endpoint_checks_its_own_body_shape() -> None:
    data = _jsonl(
        _line("a", "/v1/embeddings", EMBEDDINGS),
        _line("b", "/v1/embeddings", {"model": "e"}),
        _line("c", "/v1/embeddings", {"model": "e", "input": {"text": "x"}}),
        _line("d", "/v1/embeddings", BODY),  # a chat body is no embeddings body
        _line("e", "/v1/embeddings", {**EMBEDDINGS, "stream": True}),
    )
    with pytest.raises(BatchInvalid) as err:
        openai.from_jsonl(data)
    assert [line for line, _ in err.value.problems] == [2, 3, 4, 5]
    assert "body.input" in err.value.problems[0][1]
    bad = _line("r", "/v1/responses", {"model": "m", "input": 3})
    with pytest.raises(BatchInvalid, match=r"line 1: body\.input"):
        openai.from_jsonl(_jsonl(bad))


def test_a_passthrough_error_line_keeps_the_upstreams_body() -> None:
    upstream = {"error": {"message": "no such model", "type": "invalid_request_error"}}
    result = ItemResult("errored", 404, body=upstream, error_kind=ErrorKind.NOT_FOUND)
    is_error, line = openai.result_line("batch_1", "a", result)
    assert is_error and line["response"] == {
        "status_code": 404,
        "request_id": line["id"],
        "body": upstream,
    }


def test_completion_window() -> None:
    assert openai.window_seconds("24h") == 86400
    assert openai.window_seconds("2h") == 7200
    with pytest.raises(InvalidInput):
        openai.window_seconds("1d")


def test_result_lines() -> None:
    ok, line = openai.result_line("batch_1", "a", ItemResult("succeeded", body={"id": "c"}))
    assert not ok and line["response"]["status_code"] == 200 and line["error"] is None
    assert line["id"].startswith("batch_req_") and line["response"]["body"] == {"id": "c"}
    err, line = openai.result_line(
        "batch_1",
        "b",
        ItemResult("errored", status=400, error_kind=ErrorKind.INVALID_REQUEST, message="no"),
    )
    assert err and line["response"]["status_code"] == 400
    assert line["response"]["body"]["error"]["message"] == "no"
    err, line = openai.result_line("batch_1", "c", ItemResult("expired"))
    assert err and line["response"] is None and line["error"]["code"] == "batch_expired"


def _record(**kw: object) -> BatchRecord:
    base: dict[str, object] = dict(
        id="batch_1",
        owner="o",
        owner_kind="static",
        format="openai",
        api="chat",
        endpoint="/v1/chat/completions",
        created=1_700_000_000.0,
        expires=1_700_086_400.0,
        input_file_id="file-1",
        counts=Counts(total=4, succeeded=2, errored=1),
    )
    base.update(kw)
    return BatchRecord(**base)  # type: ignore[arg-type]


def test_batch_objects_parse_as_the_sdk_type() -> None:
    running = Batch.model_validate(openai.batch_object(_record()))
    assert running.status == "in_progress"
    assert running.request_counts is not None and running.request_counts.completed == 2
    assert running.output_file_id is None
    done = Batch.model_validate(
        openai.batch_object(_record(ended=1_700_000_500.0, end_reason="completed"))
    )
    assert done.status == "completed" and done.completed_at == 1_700_000_500
    assert done.output_file_id == "batch_1-output" and done.error_file_id == "batch_1-errors"
    assert openai.result_file_of("batch_1-errors") == ("batch_1", True)
    assert openai.result_file_of("file-abc") is None
    gone = openai.batch_object(_record(ended=1.0, end_reason="expired"))
    assert gone["status"] == "expired" and gone["expired_at"] == 1
    stopped = openai.batch_object(_record(ended=1.0, end_reason="canceled"))
    assert stopped["status"] == "cancelled"


def test_file_object_parses_as_the_sdk_type() -> None:
    record = FileRecord(
        id="file-1", owner="o", filename="in.jsonl", purpose="batch", bytes=10, created=5.0
    )
    obj = FileObject.model_validate(openai.file_object(record))
    assert obj.bytes == 10 and obj.purpose == "batch"
