"""The Recorder: lines as the cassette says, 0600 files, sampling, body levels, rotation, no secrets,
and a full queue drops rather than blocks."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from anyllm_cli.errors import ConfigError, ErrorKind
from anyllm_cli.pipeline.seams import Candidate, ClientRequest, Outcome, Usage
from anyllm_cli.replay.cassette import Skipped, read
from anyllm_cli.replay.recorder import Recorder, RecordOptions, outcome_line

BODY = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 10,
    "messages": [{"role": "user", "content": "use sk-ant-api03-leakedleakedleaked"}],
}


def outcome(n: int = 0, **kw: Any) -> Outcome:
    values: dict[str, Any] = {
        "request": ClientRequest(
            api="messages",
            body=json.dumps({**BODY, "metadata": {"n": n}}).encode(),
            headers={
                "anthropic-version": "2023-06-01",
                "x-api-key": "proxy-secret-key",
                "host": "h",
            },
            request_id=f"req_{n}",
        ),
        "candidate": Candidate("mock", "claude-sonnet-4-6", "mock-model"),
        "status": 200,
        "usage": Usage(input_tokens=5, output_tokens=7),
        "cost_usd": 0.001,
        "stream": True,
        "duration_s": 0.5,
        "ttft_s": 0.1,
        "upstream_body": b'{"model": "mock-model"}',
        "response": {
            "type": "message",
            "content": [{"type": "text", "text": "hi"}],
            "stop_reason": "end_turn",
        },
        "degradations": ("thinking_dropped",),
    }
    values.update(kw)
    return Outcome(**values)


def lines(path: Path) -> list[dict[str, Any]]:
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


@pytest.mark.anyio
async def test_a_line_per_call_redacted_in_a_0600_file(tmp_path: Path) -> None:
    target = tmp_path / "rec" / "session.jsonl"
    with Recorder(
        RecordOptions(target), secrets=["proxy-secret-key"], wall_clock=lambda: 1_800_000_000.0
    ) as rec:
        await rec.on_complete(outcome(1))
        await rec.on_complete(outcome(2, error=ErrorKind.RATE_LIMIT, status=429, candidate=None))
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    text = target.read_text()
    assert "leaked" not in text and "proxy-secret-key" not in text
    first, second = lines(target)
    assert first["v"] == 1 and first["id"] == "req_1" and first["api"] == "messages"
    assert first["time"] == "2027-01-15T07:59:59.500+00:00"  # ended minus duration
    assert first["headers"] == {"anthropic-version": "2023-06-01", "x-api-key": "[REDACTED]"}
    assert first["body"]["messages"][0]["content"] == "use [REDACTED]"
    assert (first["backend"], first["model"], first["upstream_model"], first["stream"]) == (
        "mock",
        "claude-sonnet-4-6",
        "mock-model",
        True,
    )
    assert first["upstream_request"] == {"model": "mock-model"}
    assert first["response"]["stop_reason"] == "end_turn"
    assert first["usage"]["input_tokens"] == 5 and first["usage"]["output_tokens"] == 7
    assert (first["cost_usd"], first["ttft_s"], first["duration_s"]) == (0.001, 0.1, 0.5)
    assert first["degradations"] == ["thinking_dropped"]
    assert (second["status"], second["error"], second["backend"]) == (429, "rate_limit", None)
    exchanges = list(read(target, Skipped()))
    assert [e.id for e in exchanges] == ["req_1", "req_2"]


@pytest.mark.parametrize(
    ("bodies", "kept"),
    [
        ("none", (False, False, False)),
        ("requests", (True, True, False)),
        ("all", (True, True, True)),
    ],
)
def test_body_levels(bodies: Any, kept: tuple[bool, bool, bool]) -> None:
    line = outcome_line(outcome(), bodies, 0.0)
    assert (
        line["body"] is not None,
        line["upstream_request"] is not None,
        line["response"] is not None,
    ) == kept
    assert Recorder(RecordOptions(Path("x"), bodies=bodies)).wants_bodies == (bodies != "none")


def test_sampling_keeps_the_share_asked(tmp_path: Path) -> None:
    draws = iter([0.05, 0.5, 0.09, 0.95])
    with Recorder(RecordOptions(tmp_path / "s.jsonl", sample=0.1), rng=lambda: next(draws)) as rec:
        for n in range(4):
            rec.observe(outcome(n))
    assert [line["id"] for line in lines(tmp_path / "s.jsonl")] == ["req_0", "req_2"]


def test_a_file_rotates_by_size_newest_keeping_the_name(tmp_path: Path) -> None:
    target = tmp_path / "r.jsonl"
    size = len(json.dumps(outcome_line(outcome(0), "all", 0.0))) + 50
    with Recorder(RecordOptions(target, max_bytes=size * 2, batch=1)) as rec:
        for n in range(5):
            rec.observe(outcome(n))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["r.0001.jsonl", "r.0002.jsonl", "r.jsonl"]
    assert all(stat.S_IMODE((tmp_path / n).stat().st_mode) == 0o600 for n in names)
    assert [e.id for e in read(tmp_path, Skipped())] == [f"req_{n}" for n in range(5)]


def test_a_directory_gets_files_of_its_own(tmp_path: Path) -> None:
    with Recorder(RecordOptions(tmp_path / "dir", max_bytes=10, batch=1)) as rec:
        for n in range(3):
            rec.observe(outcome(n))
    files = sorted((tmp_path / "dir").glob("anyllm-*.jsonl"))
    assert len(files) == 3
    assert [line["id"] for line in lines(tmp_path / "dir")] == ["req_0", "req_1", "req_2"]


def test_a_full_queue_drops_and_counts_never_blocks(tmp_path: Path) -> None:
    rec = Recorder(RecordOptions(tmp_path / "q.jsonl", queue_size=2))  # not started: nothing drains
    for n in range(5):
        rec.observe(outcome(n))
    assert rec.dropped == 3
    rec.start()
    rec.close()
    assert rec.written == 2 and len(lines(tmp_path / "q.jsonl")) == 2


def test_an_unwritable_target_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="cannot write there"):
        Recorder(RecordOptions(tmp_path / "file" / "under-a-file.jsonl")).start()


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="bodies"):
        Recorder(RecordOptions(Path("x"), bodies="some"))  # type: ignore[arg-type]


def test_a_stream_kept_as_events_is_folded_and_kept() -> None:
    events = [
        {"id": "c", "choices": [{"index": 0, "delta": {"content": "he"}}]},
        {"id": "c", "choices": [{"index": 0, "delta": {"content": "y"}, "finish_reason": "stop"}]},
    ]
    chat = ClientRequest(api="chat", body=b'{"model": "m", "stream": true, "messages": []}')
    kept = tuple(json.dumps(e).encode() for e in events)
    line = outcome_line(outcome(request=chat, response=None, events=kept), "all", 0.0)
    assert line["events"] == events
    assert line["response"]["choices"][0]["message"]["content"] == "hey"
    assert outcome_line(outcome(), "all", 0.0)["events"] is None


def test_calls_that_cannot_be_replayed_are_recorded_and_skipped(tmp_path: Path) -> None:
    target = tmp_path / "f.jsonl"
    forward = ClientRequest(api="forward", body=b"\x00binary", path="/embeddings")
    with Recorder(RecordOptions(target)) as rec:
        rec.observe(outcome(request=forward, response=None))
        rec.observe(outcome(1))
    assert lines(target)[0]["body"] == {"_text": "\x00binary"}
    skipped = Skipped()
    assert [e.id for e in read(target, skipped)] == ["req_1"]
    assert skipped.reasons == {"api forward not replayed": 1}


def test_recorder_for_names_every_key_the_proxy_knows(tmp_path: Path) -> None:
    from anyllm_cli.config import RecordSettings
    from anyllm_cli.replay.recorder import recorder_for
    from tests.conftest import backend_settings, make_settings

    settings = make_settings(
        backend_settings("a", api_key="upstream-key-123"),
        proxy_api_keys=("proxy-key-456",),
        record=RecordSettings(tmp_path / "r.jsonl", "requests", 0.5, 4096),
    )
    rec = recorder_for(settings)
    assert (rec.options.bodies, rec.options.sample, rec.options.max_bytes) == (
        "requests",
        0.5,
        4096,
    )
    body = json.dumps({"messages": [{"role": "user", "content": "upstream-key-123 proxy-key-456"}]})
    with rec:
        rec.observe(outcome(request=ClientRequest(api="chat", body=body.encode())))
    text = (tmp_path / "r.jsonl").read_text()
    assert "upstream-key-123" not in text and "proxy-key-456" not in text
    with pytest.raises(ValueError, match="off"):
        recorder_for(make_settings())


def test_credential_headers_go_by_name_whatever_they_look_like(tmp_path: Path) -> None:
    headers = {"Authorization": "Bearer opaque", "X-Goog-Api-Key": "g", "Cookie": "s=1", "a": "b"}
    request = ClientRequest(api="messages", body=json.dumps(BODY).encode(), headers=headers)
    line = outcome_line(outcome(request=request), "all", 0.0)
    assert line["headers"] == {
        "Authorization": "[REDACTED]",
        "X-Goog-Api-Key": "[REDACTED]",
        "Cookie": "[REDACTED]",
        "a": "b",
    }


def test_the_writer_wakes_for_a_full_batch_not_for_each_call(tmp_path: Path) -> None:
    import time

    target = tmp_path / "b.jsonl"
    with Recorder(RecordOptions(target, batch=3, flush_s=60)) as rec:
        rec.observe(outcome(1))
        rec.observe(outcome(2))
        time.sleep(0.2)
        assert rec.written == 0  # two calls: nobody woke the writer
        rec.observe(outcome(3))
        deadline = time.monotonic() + 5
        while rec.written < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert rec.written == 3  # the third filled a batch: written long before flush_s
        rec.observe(outcome(4))
    assert [line["id"] for line in lines(target)] == ["req_1", "req_2", "req_3", "req_4"]
