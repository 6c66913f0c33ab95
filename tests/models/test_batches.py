from __future__ import annotations

import pytest

from anyllm_cli.errors import InvalidInput
from anyllm_cli.models.batches import (
    BatchRequestCounts,
    FileObject,
    MessageBatchRequest,
    OpenAIBatchLine,
)


def test_custom_ids_follow_anthropics_rule() -> None:
    assert MessageBatchRequest.parse({"custom_id": "a-1_B", "params": {}}).custom_id == "a-1_B"
    for bad in ("", "has space", "x" * 65):
        with pytest.raises(InvalidInput, match="custom_id"):
            MessageBatchRequest.parse({"custom_id": bad, "params": {}})


def test_openai_lines_are_posts_with_a_body() -> None:
    line = OpenAIBatchLine.parse(
        {"custom_id": "a", "method": "POST", "url": "/v1/x", "body": {}, "extra": 1}
    )
    assert line.dump()["extra"] == 1  # unknown fields survive
    with pytest.raises(InvalidInput, match="method"):
        OpenAIBatchLine.parse({"custom_id": "a", "method": "GET", "url": "/v1/x", "body": {}})


def test_built_objects_dump_every_field_nulls_and_defaults_included() -> None:
    obj = FileObject(id="file-1", bytes=1, created_at=2, filename="f", purpose="batch").dump()
    assert obj["object"] == "file" and obj["status"] == "processed"
    assert obj["expires_at"] is None and obj["status_details"] is None
    assert BatchRequestCounts(total=1, completed=1, failed=0).dump() == {
        "total": 1,
        "completed": 1,
        "failed": 0,
    }
