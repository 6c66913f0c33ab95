from __future__ import annotations

import json

import pytest
from anthropic.types.messages import MessageBatch, MessageBatchIndividualResponse

from anyllm_cli.batch import anthropic
from anyllm_cli.batch.job import BatchInvalid, ItemResult
from anyllm_cli.errors import ErrorKind
from anyllm_cli.stores.batches import BatchRecord, Counts

PARAMS = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def _jsonl(*rows: object) -> bytes:
    return b"\n".join(json.dumps(r).encode() for r in rows) + b"\n"


def test_lines_become_items_with_their_params() -> None:
    job = anthropic.from_jsonl(
        _jsonl({"custom_id": "a", "params": PARAMS}, {"custom_id": "b", "params": PARAMS})
    )
    assert job.api == "messages"
    assert [(i.custom_id, i.line) for i in job.items] == [("a", 1), ("b", 2)]
    assert json.loads(job.items[0].body) == PARAMS
    assert job.models == {"m"}


def test_every_bad_line_is_named() -> None:
    data = (
        _jsonl(
            {"custom_id": "a", "params": PARAMS},
            {"custom_id": "a", "params": PARAMS},
            {"custom_id": "bad id!", "params": PARAMS},
            {"custom_id": "c", "params": {"model": "m", "messages": []}},
            {"custom_id": "d", "params": {**PARAMS, "stream": True}},
        )
        + b"{nope\n"
    )
    with pytest.raises(BatchInvalid) as err:
        anthropic.from_jsonl(data)
    lines = [line for line, _ in err.value.problems]
    assert lines == [2, 3, 4, 5, 6]
    text = str(err.value)
    assert "repeats line 1" in text
    assert "line 4: params.max_tokens" in text
    assert "stream" in text and "not valid JSON" in text


def test_create_body_positions_are_lines() -> None:
    body = json.dumps({"requests": [{"custom_id": "a", "params": PARAMS}, {"custom_id": "b"}]})
    with pytest.raises(BatchInvalid) as err:
        anthropic.from_create(body.encode())
    assert err.value.problems[0][0] == 2


def test_results_parse_as_the_sdk_types() -> None:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [{"type": "text", "text": "yo"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    cases = [
        ItemResult("succeeded", body=message),
        ItemResult("errored", status=429, error_kind=ErrorKind.RATE_LIMIT, message="slow down"),
        ItemResult("canceled"),
        ItemResult("expired"),
    ]
    for case in cases:
        line = anthropic.result_line("x", case)
        parsed = MessageBatchIndividualResponse.model_validate(line)
        assert parsed.result.type == case.type
    errored = anthropic.result_line("x", cases[1])["result"]["error"]
    assert errored == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow down"},
    }


def _record(**kw: object) -> BatchRecord:
    base: dict[str, object] = dict(
        id="msgbatch_1",
        owner="o",
        owner_kind="static",
        format="anthropic",
        api="messages",
        endpoint="/v1/messages",
        created=1_700_000_000.0,
        expires=1_700_086_400.0,
        counts=Counts(total=3, succeeded=1, errored=1),
    )
    base.update(kw)
    return BatchRecord(**base)  # type: ignore[arg-type]


def test_a_running_batch_counts_everything_as_processing() -> None:
    obj = MessageBatch.model_validate(anthropic.message_batch(_record(), "http://h"))
    assert obj.processing_status == "in_progress"
    assert obj.request_counts.processing == 3 and obj.request_counts.succeeded == 0
    assert obj.results_url is None and obj.ended_at is None
    live = anthropic.message_batch(_record(), "http://h")["anyllm_counts"]
    assert live == {"total": 3, "done": 2, "failed": 1}
    canceling = anthropic.message_batch(_record(cancel_requested=1_700_000_100.0), "http://h")
    assert canceling["processing_status"] == "canceling"
    assert canceling["cancel_initiated_at"] == "2023-11-14T22:15:00Z"


def test_an_ended_batch_has_counts_and_a_results_url() -> None:
    counts = Counts(total=3, succeeded=1, errored=1, canceled=1)
    data = anthropic.message_batch(
        _record(ended=1_700_000_200.0, end_reason="canceled", counts=counts), "http://h"
    )
    obj = MessageBatch.model_validate(data)
    assert obj.processing_status == "ended"
    assert obj.request_counts.model_dump() == {
        "canceled": 1,
        "errored": 1,
        "expired": 0,
        "processing": 0,
        "succeeded": 1,
    }
    assert obj.results_url == "http://h/v1/messages/batches/msgbatch_1/results"
    assert data["archived_at"] is None
