"""Request metrics kept in memory and rendered in the Prometheus text exposition format (0.0.4).

One `Metrics` per process; the server calls `observe()` once per finished request (after the last
byte of a stream) and serves `render()` at `GET /metrics`. Families:

| name                                   | type      | labels                            |
| -------------------------------------- | --------- | --------------------------------- |
| anyllm_requests_total                  | counter   | backend, model, route, status     |
| anyllm_errors_total                    | counter   | backend, model, route, error_type |
| anyllm_tokens_total                    | counter   | backend, model, direction (in/out)|
| anyllm_request_duration_seconds        | histogram | backend, model, route             |
| anyllm_time_to_first_token_seconds     | histogram | backend, model, route             |

`observe()` is pure bookkeeping: a few dict updates and one bisect, no I/O and no lock: the server
calls `observe()` and `render()` from its one event loop, so neither sees the other half done.

Labels are bounded: clients choose the model string and the URL, so only the models the proxy
knows (`models`: the Claude ids it lists, each backend's big/small models and model map, both
sides) become a `model` label, and every other name is counted as model="other"; routes are the
handlers' templates (`/v1beta/models:{action}` only for the three actions served). Without a
`models` set (tests), at most `max_models` names are kept, then "other".

What it gives up: no gauges, no per-process merging when `--workers N` runs several processes (each
worker answers with its own figures); a model passed through by a name the proxy was not told about
is counted as "other".
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60)
OTHER_MODEL = "other"

_REQUESTS = "anyllm_requests_total"
_ERRORS = "anyllm_errors_total"
_TOKENS = "anyllm_tokens_total"
_DURATION = "anyllm_request_duration_seconds"
_TTFT = "anyllm_time_to_first_token_seconds"

_HELP = {
    _REQUESTS: "Requests answered, by backend, model, route and HTTP status.",
    _ERRORS: "Requests that failed, by error type (the client API's error type).",
    _TOKENS: "Tokens sent to (in) and received from (out) the upstream model.",
    _DURATION: "Time from request received to last byte sent, in seconds.",
    _TTFT: "Time from request received to the first content byte of a response, in seconds.",
}

Labels = tuple[str, ...]


@dataclass(slots=True)
class _Histogram:
    buckets: Sequence[float]
    counts: list[int] = field(default_factory=list)  # per bucket (not cumulative) + one for +Inf
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1


class Metrics:
    """Counters and histograms for the proxy; see the module docstring for the families."""

    def __init__(
        self,
        *,
        duration_buckets: Sequence[float] = DURATION_BUCKETS,
        ttft_buckets: Sequence[float] = TTFT_BUCKETS,
        max_models: int = 500,
        models: Iterable[str] | None = None,
    ) -> None:
        self._duration_buckets = tuple(sorted(duration_buckets))
        self._ttft_buckets = tuple(sorted(ttft_buckets))
        self._known = None if models is None else frozenset(models) | {"-"}
        self._max_models = max_models
        self._models: set[str] = set()
        self._requests: dict[Labels, int] = {}
        self._errors: dict[Labels, int] = {}
        self._tokens: dict[Labels, int] = {}
        self._duration: dict[Labels, _Histogram] = {}
        self._ttft: dict[Labels, _Histogram] = {}

    def observe(
        self,
        *,
        backend: str,
        model: str,
        route: str,
        status: int,
        error_type: str | None,
        latency_s: float,
        ttft_s: float | None,
        tokens_in: int,
        tokens_out: int,
    ) -> None:
        """Record one finished request."""
        model = self._model_label(model)
        key = (backend, model, route, str(status))
        self._requests[key] = self._requests.get(key, 0) + 1
        if error_type is not None:
            key = (backend, model, route, error_type)
            self._errors[key] = self._errors.get(key, 0) + 1
        if tokens_in:
            tokens_key = (backend, model, "in")
            self._tokens[tokens_key] = self._tokens.get(tokens_key, 0) + tokens_in
        if tokens_out:
            tokens_key = (backend, model, "out")
            self._tokens[tokens_key] = self._tokens.get(tokens_key, 0) + tokens_out
        series = (backend, model, route)
        histogram = self._duration.get(series)
        if histogram is None:
            histogram = self._duration[series] = _Histogram(self._duration_buckets)
        histogram.observe(latency_s)
        if ttft_s is not None:
            histogram = self._ttft.get(series)
            if histogram is None:
                histogram = self._ttft[series] = _Histogram(self._ttft_buckets)
            histogram.observe(ttft_s)

    def _model_label(self, model: str) -> str:
        if self._known is not None:
            return model if model in self._known else OTHER_MODEL
        if model in self._models:
            return model
        if len(self._models) >= self._max_models:
            return OTHER_MODEL
        self._models.add(model)
        return model

    def render(self) -> str:
        """All families in the Prometheus text format, ending with a newline."""
        lines: list[str] = []
        _counter(lines, _REQUESTS, ("backend", "model", "route", "status"), self._requests)
        _counter(lines, _ERRORS, ("backend", "model", "route", "error_type"), self._errors)
        _counter(lines, _TOKENS, ("backend", "model", "direction"), self._tokens)
        names = ("backend", "model", "route")
        _histogram(lines, _DURATION, names, self._duration_buckets, self._duration)
        _histogram(lines, _TTFT, names, self._ttft_buckets, self._ttft)
        return "\n".join(lines) + "\n"


def _header(lines: list[str], name: str, kind: str) -> None:
    lines.append(f"# HELP {name} {_HELP[name]}")
    lines.append(f"# TYPE {name} {kind}")


def _counter(lines: list[str], name: str, names: Sequence[str], values: dict[Labels, int]) -> None:
    _header(lines, name, "counter")
    for labels, value in sorted(values.items()):
        lines.append(f"{name}{{{_labels(names, labels)}}} {value}")


def _histogram(
    lines: list[str],
    name: str,
    names: Sequence[str],
    buckets: Sequence[float],
    series: dict[Labels, _Histogram],
) -> None:
    _header(lines, name, "histogram")
    bounds = [*(_number(b) for b in buckets), "+Inf"]
    for labels, histogram in sorted(series.items()):
        prefix = _labels(names, labels)
        cumulative = 0
        for bound, count in zip(bounds, histogram.counts, strict=True):
            cumulative += count
            lines.append(f'{name}_bucket{{{prefix},le="{bound}"}} {cumulative}')
        lines.append(f"{name}_sum{{{prefix}}} {_number(histogram.total)}")
        lines.append(f"{name}_count{{{prefix}}} {histogram.count}")


def _labels(names: Iterable[str], values: Iterable[str]) -> str:
    return ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))


def _escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def _number(value: float) -> str:
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value.is_integer() else repr(value)
