"""Which batches go native: one backend with `batch = "native"` and a batch API of the format."""

from __future__ import annotations

import json
import logging

import pytest

from anyllm_cli.batch import anthropic, openai
from anyllm_cli.batch.job import BatchJob
from anyllm_cli.batch.native import NativeSettings, choose
from anyllm_cli.config import BatchSettings
from anyllm_cli.pipeline.seams import ANONYMOUS
from anyllm_cli.routing import StaticRouter
from tests.conftest import backend_settings

BACKENDS = {
    "oai": backend_settings("oai", batch="native"),
    "claude": backend_settings("claude", kind="anthropic", batch="native"),
    "plain": backend_settings("plain"),
}


def _anthropic_job(model: str = "claude-x") -> BatchJob:
    params = {"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    return anthropic.from_create(
        json.dumps({"requests": [{"custom_id": "a", "params": params}]}).encode()
    )


def _openai_job() -> BatchJob:
    line = {
        "custom_id": "a",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    }
    return openai.from_jsonl(json.dumps(line).encode())


def _router(default: str) -> StaticRouter:
    return StaticRouter(BACKENDS, default)


def test_a_batch_of_the_backends_own_format_goes_native() -> None:
    assert choose(_anthropic_job(), None, ANONYMOUS, _router("claude"), BACKENDS) == "claude"
    assert choose(_openai_job(), None, ANONYMOUS, _router("oai"), BACKENDS) == "oai"
    assert choose(_openai_job(), "oai", ANONYMOUS, _router("plain"), BACKENDS) == "oai"


def test_local_backends_and_other_formats_run_locally(caplog: pytest.LogCaptureFixture) -> None:
    assert choose(_openai_job(), None, ANONYMOUS, _router("plain"), BACKENDS) is None
    with caplog.at_level(logging.INFO, logger="anyllm.batch"):
        assert choose(_anthropic_job(), None, ANONYMOUS, _router("oai"), BACKENDS) is None
        assert choose(_openai_job(), "claude", ANONYMOUS, _router("oai"), BACKENDS) is None
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and all("runs locally" in m for m in said)
    assert "backend oai (kind openai)" in said[0] and "anthropic batches" in said[0]


def test_poll_settings_come_from_the_batch_table() -> None:
    got = NativeSettings.of(
        BatchSettings(lease_seconds=7, native_poll_seconds=2, native_poll_max_seconds=9)
    )
    assert (got.poll_s, got.poll_max_s, got.lease_s) == (2, 9, 7)
