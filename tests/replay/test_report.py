"""The summary: counts, status mix, errors by kind, nearest-rank percentiles, comparisons, the
--json shape, and the pass/fail line at --max-error-rate."""

from __future__ import annotations

from anyllm_cli.replay.cassette import Exchange
from anyllm_cli.replay.client import Sent
from anyllm_cli.replay.compare import Diff
from anyllm_cli.replay.engine import Result
from anyllm_cli.replay.report import Summary, percentiles, result_line, table

REPLY = {
    "choices": [{"message": {"content": "x"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 4, "completion_tokens": 2},
}
KEYS = {
    "target",
    "compare_with",
    "count",
    "ok",
    "errors",
    "error_rate",
    "max_error_rate",
    "passed",
    "elapsed_s",
    "requests_per_s",
    "skipped",
    "status",
    "errors_by_type",
    "latency_s",
    "ttft_s",
    "tokens",
    "cost_usd",
    "recorded",
    "compare",
}


def result(n: int, sent: Sent, diff: Diff | None = None) -> Result:
    ex = Exchange(
        api="chat",
        body={},
        id=f"r{n}",
        status=200,
        usage={"input_tokens": 1, "output_tokens": 1},
        cost_usd=0.25,
    )
    return Result(n, ex, sent, None, diff)


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentiles(values) == {"p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
    assert percentiles([]) is None
    assert percentiles([2.0]) == {"p50": 2.0, "p95": 2.0, "p99": 2.0, "max": 2.0}


def test_the_summary_adds_up() -> None:
    summary = Summary("echo", "recorded", max_error_rate=0.3)
    summary.add(
        result(
            0,
            Sent(200, REPLY, None, "", 0.1, 0.05),
            Diff(
                stop=("end", "tool"), tools=("call 0: get added",), similarity=0.5, output_delta=3
            ),
        )
    )
    summary.add(result(1, Sent(200, REPLY, None, "", 0.2), Diff()))
    summary.add(result(2, Sent(429, None, "rate_limit", "slow", 0.3)))
    summary.elapsed_s = 2.0
    out = summary.to_json()
    assert set(out) == KEYS
    assert (out["count"], out["ok"], out["errors"], out["error_rate"]) == (3, 2, 1, 0.333333)
    assert out["passed"] is False and out["requests_per_s"] == 1.5
    assert out["status"] == {"200": 2, "429": 1} and out["errors_by_type"] == {"rate_limit": 1}
    assert out["latency_s"]["p50"] == 0.2 and out["ttft_s"]["p99"] == 0.05
    assert out["tokens"] == {"input": 8, "output": 4}
    assert out["recorded"] == {
        "count": 3,
        "errors": 0,
        "tokens": {"input": 3, "output": 3},
        "cost_usd": 0.75,
    }
    compare = out["compare"]
    assert (compare["compared"], compare["stop_reason_changed"], compare["tool_calls_changed"]) == (
        2,
        1,
        1,
    )
    assert compare["text_similarity"] == {"mean": 0.75, "min": 0.5}
    assert compare["usage_delta"] == {"input": 0, "output": 3}
    assert compare["changed"] == [
        {
            "index": 0,
            "id": "r0",
            "stop_reason": ["end", "tool"],
            "tool_calls": ["call 0: get added"],
            "text_similarity": 0.5,
            "usage_delta": {"input": 0, "output": 3},
        }
    ]
    labels = [label for label, _ in table(out)]
    assert "  rate_limit" in labels and "tool calls changed" in labels


def test_fail_on_change_fails_a_run_whose_tool_calls_changed() -> None:
    for fail, passed in ((False, True), (True, False)):
        summary = Summary("a", "recorded", fail_on_change=fail)
        summary.add(result(0, Sent(200, REPLY, None, "", 0.1), Diff(tools=("call 0: x gone",))))
        summary.add(result(1, Sent(200, REPLY, None, "", 0.1), Diff(similarity=0.1)))
        out = summary.to_json()
        assert out["passed"] is passed and out["compare"]["changed_count"] == 1


def test_an_empty_run_passes_and_has_no_percentiles() -> None:
    out = Summary("x").to_json()
    assert out["passed"] is True and out["latency_s"] is None and out["compare"] is None
    assert dict(table(out))["latency p50/p95/p99"] == "-"


def test_a_results_line_carries_both_sides() -> None:
    summary = Summary("a", "b")
    summary.add(
        Result(
            0,
            Exchange(api="chat", body={}),
            Sent(200, REPLY, None, "", 0.1),
            Sent(429, None, "rate_limit", "", 0.1),
        )
    )
    assert summary.to_json()["compare"]["errors_by_type"] == {"rate_limit": 1}
    assert dict(table(summary.to_json()))["  its errors"] == "rate_limit: 1"
    line = result_line(
        Result(
            3,
            Exchange(api="chat", body={}, id="r3", model="m"),
            Sent(200, REPLY, None, "", 0.1),
            Sent(500, None, "api_error", "x", 0.2),
            None,
        )
    )
    assert line["index"] == 3 and line["id"] == "r3" and line["response"] == REPLY
    assert line["other"]["error"] == "api_error" and line["diff"] is None


def test_metered_tokens_win_over_the_reply_s_usage() -> None:
    summary = Summary("x")
    summary.add(result(0, Sent(200, REPLY, None, "", 0.1, tokens=(40, 9), cost_usd=0.5)))
    out = summary.to_json()
    assert out["tokens"] == {"input": 40, "output": 9} and out["cost_usd"] == 0.5
