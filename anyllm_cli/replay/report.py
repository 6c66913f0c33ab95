"""What a replay run adds up to: the summary (`--json` shape) and one results line per request.

`Summary.add(result)` as results arrive; `to_json()` at the end:

    {"target", "compare_with", "count", "ok", "errors", "error_rate", "max_error_rate", "passed",
     "elapsed_s", "requests_per_s", "skipped": {reason: n}, "status": {"200": n, ...},
     "errors_by_type": {kind: n}, "latency_s": {"p50", "p95", "p99", "max"},
     "ttft_s": {... } or null, "tokens": {"input", "output"},
     "cost_usd": float or null (in-process, when the pipeline has a Pricer for the model),
     "recorded": {"count", "errors", "tokens": {...}, "cost_usd"} (what the recording itself saw),
     "compare": null or {"against", "compared", "errors_by_type" (the second target's),
                         "stop_reason_changed", "tool_calls_changed", "changed_count",
                         "text_similarity": {"mean", "min"}, "usage_delta": {"input", "output"},
                         "changed": [{"index", "id", "stop_reason", "tool_calls", ...}, ...]}}

Percentiles are nearest-rank over every latency (a list of floats: 10,000 requests are 80 kB).
`passed` is false when the error rate is above `max_error_rate`, or with `fail_on_change` when any
compared pair changed its stop reason or tool calls; the CLI turns that into exit 1.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from anyllm_cli.replay.client import Sent
from anyllm_cli.replay.compare import answer
from anyllm_cli.replay.engine import Result

MAX_CHANGED = 100  # per-request differences listed in the summary (all of them go to -o)


def percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p * len(ordered)) - 1)], 6)

    return {"p50": rank(0.5), "p95": rank(0.95), "p99": rank(0.99), "max": round(ordered[-1], 6)}


@dataclass(slots=True)
class Summary:
    target: str
    compare_with: str | None = None
    max_error_rate: float = 0.05
    fail_on_change: bool = False
    count: int = 0
    errors: int = 0
    status: Counter[str] = field(default_factory=Counter)
    errors_by_type: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    ttfts: list[float] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float | None = None
    recorded_count: int = 0
    recorded_errors: int = 0
    recorded_in: int = 0
    recorded_out: int = 0
    recorded_cost: float | None = None
    compared: int = 0
    other_errors: Counter[str] = field(default_factory=Counter)
    stop_changed: int = 0
    tools_changed: int = 0
    similarities: list[float] = field(default_factory=list)
    delta_in: int = 0
    delta_out: int = 0
    changed: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    compared_changed: int = 0  # pairs whose stop reason or tool calls changed

    def add(self, result: Result) -> None:
        sent = result.sent
        self.count += 1
        self.status[str(sent.status)] += 1
        if not sent.ok:
            self.errors += 1
            self.errors_by_type[sent.error or "error"] += 1
        self.latencies.append(sent.latency_s)
        if sent.ttft_s is not None:
            self.ttfts.append(sent.ttft_s)
        if sent.tokens is not None:
            self.tokens_in += sent.tokens[0]
            self.tokens_out += sent.tokens[1]
        else:
            got = answer(sent.response)
            self.tokens_in += got.input_tokens
            self.tokens_out += got.output_tokens
        if sent.cost_usd is not None:
            self.cost = (self.cost or 0.0) + sent.cost_usd
        self._recorded(result)
        if result.other is not None and not result.other.ok:
            self.other_errors[result.other.error or "error"] += 1
        if result.diff is not None:
            diff = result.diff
            self.compared += 1
            self.stop_changed += diff.stop is not None
            self.tools_changed += bool(diff.tools)
            self.similarities.append(diff.similarity)
            self.delta_in += diff.input_delta
            self.delta_out += diff.output_delta
            self.compared_changed += diff.changed
            if diff.changed and len(self.changed) < MAX_CHANGED:
                self.changed.append(
                    {"index": result.index, "id": result.exchange.id, **diff.to_json()}
                )

    def _recorded(self, result: Result) -> None:
        ex = result.exchange
        if ex.status is None:
            return
        self.recorded_count += 1
        self.recorded_errors += ex.status >= 400 or ex.error is not None
        self.recorded_in += int(ex.usage.get("input_tokens", 0))
        self.recorded_out += int(ex.usage.get("output_tokens", 0))
        if ex.cost_usd is not None:
            self.recorded_cost = (self.recorded_cost or 0.0) + ex.cost_usd

    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 0.0

    @property
    def passed(self) -> bool:
        changed = self.fail_on_change and self.compared_changed > 0
        return self.error_rate <= self.max_error_rate and not changed

    def to_json(self) -> dict[str, Any]:
        compare = None
        if self.compare_with is not None:
            sims = self.similarities
            compare = {
                "against": self.compare_with,
                "compared": self.compared,
                "errors_by_type": dict(self.other_errors.most_common()),  # the second target's
                "stop_reason_changed": self.stop_changed,
                "tool_calls_changed": self.tools_changed,
                "changed_count": self.compared_changed,
                "text_similarity": {
                    "mean": round(sum(sims) / len(sims), 4) if sims else None,
                    "min": round(min(sims), 4) if sims else None,
                },
                "usage_delta": {"input": self.delta_in, "output": self.delta_out},
                "changed": self.changed,
            }
        return {
            "target": self.target,
            "compare_with": self.compare_with,
            "count": self.count,
            "ok": self.count - self.errors,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 6),
            "max_error_rate": self.max_error_rate,
            "passed": self.passed,
            "elapsed_s": round(self.elapsed_s, 3),
            "requests_per_s": round(self.count / self.elapsed_s, 1) if self.elapsed_s else None,
            "skipped": dict(self.skipped),
            "status": dict(sorted(self.status.items())),
            "errors_by_type": dict(self.errors_by_type.most_common()),
            "latency_s": percentiles(self.latencies),
            "ttft_s": percentiles(self.ttfts),
            "tokens": {"input": self.tokens_in, "output": self.tokens_out},
            "cost_usd": None if self.cost is None else round(self.cost, 6),
            "recorded": {
                "count": self.recorded_count,
                "errors": self.recorded_errors,
                "tokens": {"input": self.recorded_in, "output": self.recorded_out},
                "cost_usd": self.recorded_cost,
            },
            "compare": compare,
        }


def _sent_json(sent: Sent) -> dict[str, Any]:
    return {
        "status": sent.status,
        "error": sent.error,
        "error_message": sent.error_message or None,
        "latency_s": round(sent.latency_s, 6),
        "ttft_s": None if sent.ttft_s is None else round(sent.ttft_s, 6),
        "cost_usd": sent.cost_usd,
        "response": sent.response,
    }


def result_line(result: Result) -> dict[str, Any]:
    """One line of `-o RESULTS.jsonl`: the request's identity, what came back, the differences."""
    ex = result.exchange
    return {
        "index": result.index,
        "id": ex.id,
        "api": ex.api,
        "model": ex.model,
        "stream": ex.stream,
        **_sent_json(result.sent),
        "other": _sent_json(result.other) if result.other is not None else None,
        "diff": result.diff.to_json() if result.diff is not None else None,
    }


def table(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The summary as (label, value) rows for a terminal."""

    def pct(p: dict[str, float] | None) -> str:
        if not p:
            return "-"
        return " / ".join(f"{p[k] * 1000:.1f}" for k in ("p50", "p95", "p99")) + " ms"

    rows = [
        ("target", summary["target"]),
        ("requests", f"{summary['count']} ({summary['requests_per_s'] or '-'} req/s)"),
        ("status", ", ".join(f"{k}: {v}" for k, v in summary["status"].items()) or "-"),
        ("errors", f"{summary['errors']} ({summary['error_rate']:.2%})"),
    ]
    rows += [(f"  {kind}", str(n)) for kind, n in summary["errors_by_type"].items()]
    rows += [
        ("latency p50/p95/p99", pct(summary["latency_s"])),
        ("ttft p50/p95/p99", pct(summary["ttft_s"])),
        ("tokens in / out", f"{summary['tokens']['input']} / {summary['tokens']['output']}"),
        ("cost", "-" if summary["cost_usd"] is None else f"${summary['cost_usd']:.4f}"),
    ]
    if summary["skipped"]:
        rows.append(("skipped", ", ".join(f"{k}: {v}" for k, v in summary["skipped"].items())))
    compare = summary["compare"]
    if compare is not None:
        sim = compare["text_similarity"]
        rows += [
            ("compared with", f"{compare['against']} ({compare['compared']} pairs)"),
            (
                "  its errors",
                ", ".join(f"{k}: {v}" for k, v in compare["errors_by_type"].items()) or "0",
            ),
            ("stop reason changed", str(compare["stop_reason_changed"])),
            ("tool calls changed", str(compare["tool_calls_changed"])),
            (
                "text similarity",
                "-" if sim["mean"] is None else f"mean {sim['mean']}, min {sim['min']}",
            ),
            (
                "usage delta in / out",
                f"{compare['usage_delta']['input']:+d} / {compare['usage_delta']['output']:+d}",
            ),
        ]
    return rows
