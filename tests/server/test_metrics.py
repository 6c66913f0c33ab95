"""Prometheus metrics: counters, histograms, label escaping, and a well-formed exposition."""

from __future__ import annotations

import re
from typing import Any

import pytest

from anyllm_cli.server.metrics import Metrics

_SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_]\w*="(\\.|[^"\\])*",?)*\})? \S+$')


def _observe(metrics: Metrics, **overrides: Any) -> None:
    values: dict[str, Any] = {
        "backend": "openai",
        "model": "gpt-4o",
        "route": "/v1/messages",
        "status": 200,
        "error_type": None,
        "latency_s": 0.2,
        "ttft_s": 0.05,
        "tokens_in": 100,
        "tokens_out": 20,
    }
    values.update(overrides)
    metrics.observe(**values)


def _samples(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = value
    return out


def test_empty_render_has_help_and_type_for_every_family() -> None:
    text = Metrics().render()
    assert text.endswith("\n")
    for name, kind in [
        ("anyllm_requests_total", "counter"),
        ("anyllm_errors_total", "counter"),
        ("anyllm_tokens_total", "counter"),
        ("anyllm_request_duration_seconds", "histogram"),
        ("anyllm_time_to_first_token_seconds", "histogram"),
    ]:
        assert f"# TYPE {name} {kind}\n" in text
        assert f"# HELP {name} " in text


def test_counters_accumulate_per_label_set() -> None:
    metrics = Metrics()
    _observe(metrics)
    _observe(metrics)
    _observe(metrics, status=429, error_type="rate_limit_error", tokens_in=0, tokens_out=0)
    samples = _samples(metrics.render())
    base = 'backend="openai",model="gpt-4o",route="/v1/messages"'
    assert samples[f'anyllm_requests_total{{{base},status="200"}}'] == "2"
    assert samples[f'anyllm_requests_total{{{base},status="429"}}'] == "1"
    assert samples[f'anyllm_errors_total{{{base},error_type="rate_limit_error"}}'] == "1"
    tokens = 'anyllm_tokens_total{backend="openai",model="gpt-4o",direction="%s"}'
    assert samples[tokens % "in"] == "200"
    assert samples[tokens % "out"] == "40"


def test_histograms_are_cumulative_with_sum_and_count() -> None:
    metrics = Metrics(duration_buckets=(0.1, 1.0), ttft_buckets=(0.5,))
    _observe(metrics, latency_s=0.05, ttft_s=None)
    _observe(metrics, latency_s=0.1, ttft_s=0.2)  # a value on a bound falls in that bucket
    _observe(metrics, latency_s=3.0, ttft_s=2.0)
    samples = _samples(metrics.render())
    base = 'backend="openai",model="gpt-4o",route="/v1/messages"'
    duration = "anyllm_request_duration_seconds"
    assert samples[f'{duration}_bucket{{{base},le="0.1"}}'] == "2"
    assert samples[f'{duration}_bucket{{{base},le="1"}}'] == "2"
    assert samples[f'{duration}_bucket{{{base},le="+Inf"}}'] == "3"
    assert samples[f"{duration}_count{{{base}}}"] == "3"
    assert float(samples[f"{duration}_sum{{{base}}}"]) == pytest.approx(3.15)
    ttft = "anyllm_time_to_first_token_seconds"
    assert samples[f'{ttft}_bucket{{{base},le="0.5"}}'] == "1"
    assert (
        samples[f"{ttft}_count{{{base}}}"] == "2"
    )  # the request without a first token is left out


def test_label_values_are_escaped() -> None:
    metrics = Metrics()
    _observe(metrics, model='we"ird\\model\nname')
    text = metrics.render()
    assert 'model="we\\"ird\\\\model\\nname"' in text
    for line in text.splitlines():
        assert line.startswith("#") or _SAMPLE.match(line), line


def test_model_names_beyond_the_limit_are_folded_into_other() -> None:
    metrics = Metrics(max_models=2)
    for model in ("a", "b", "c", "d", "a"):
        _observe(metrics, model=model)
    samples = _samples(metrics.render())
    requests = (
        'anyllm_requests_total{backend="openai",model="%s",route="/v1/messages",status="200"}'
    )
    assert samples[requests % "a"] == "2"
    assert samples[requests % "b"] == "1"
    assert samples[requests % "other"] == "2"
    assert requests % "c" not in samples


def test_every_line_is_well_formed() -> None:
    metrics = Metrics()
    _observe(metrics)
    _observe(metrics, backend="ollama", route="/v1/chat/completions", latency_s=12.5, ttft_s=None)
    for line in metrics.render().splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or _SAMPLE.match(line), line


def test_official_parser_accepts_the_exposition() -> None:
    parser = pytest.importorskip("prometheus_client.parser")
    metrics = Metrics()
    _observe(metrics)
    _observe(metrics, model='q"uote', status=500, error_type="api_error", ttft_s=None)
    families = {f.name: f for f in parser.text_string_to_metric_families(metrics.render())}
    assert families["anyllm_requests"].type == "counter"
    assert families["anyllm_request_duration_seconds"].type == "histogram"
    models = {s.labels["model"] for s in families["anyllm_requests"].samples}
    assert models == {"gpt-4o", 'q"uote'}


def test_only_known_models_become_labels() -> None:
    metrics = Metrics(models=["claude-sonnet-4-6", "qwen3"])
    for model in ("claude-sonnet-4-6", "qwen3", "anything", "else", "-"):
        _observe(metrics, model=model)
    models = {
        line.split('model="')[1].split('"')[0]
        for line in metrics.render().splitlines()
        if line.startswith("anyllm_requests_total")
    }
    assert models == {"claude-sonnet-4-6", "qwen3", "other", "-"}


@pytest.mark.anyio
async def test_client_chosen_names_do_not_grow_the_scrape() -> None:
    """Hundreds of requested model names and Gemini actions: the series stay the same."""
    import httpx

    from anyllm_cli.server.app import create_app
    from tests.conftest import backend_settings, make_settings

    settings = make_settings(
        backend_settings("echo", kind="echo", base_url="echo://offline", big_model="big"),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
            sizes = []
            for round_ in range(2):
                for i in range(150):
                    name = f"model-{round_}-{i}"
                    body = {
                        "model": name,
                        "max_tokens": 5,
                        "messages": [{"role": "user", "content": "x"}],
                    }
                    await client.post("/v1/messages", json=body, headers={"anthropic-version": "1"})
                    await client.post(f"/v1beta/models/{name}:act{i}", json={})
                    await client.post(
                        f"/v1beta/models/{name}:generateContent", json={"contents": []}
                    )
                scrape = (await client.get("/metrics")).text
                sizes.append(len(scrape.splitlines()))  # one line per series
            text = (await client.get("/metrics")).text
    assert sizes[0] == sizes[1]
    assert "model-" not in text and ":act" not in text
    assert 'model="other"' in text and 'route="/v1beta/models:*"' in text
