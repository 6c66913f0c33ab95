"""Backends: `BackendSettings`, the kinds, and building one from a preset or a `[backends.NAME]` table.

A table names a `kind` (wire format and auth), a `preset` (URL, key variables, limits), or both; a
bare `[backends.deepseek]` is that preset. `_kind_values` adds what each kind needs (Azure deployment
and api-version, Vertex project and location, Bedrock region) and the normalised base URL. Keys are
`api_key = "env:VAR"` (a literal is allowed, discouraged); a preset reads its own variables.

What it gives up: presets are fixed in `config/presets.py`; a table cannot define a new one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from anyllm_cli.config._files import _KEY, ENV_FILE, _show, _Table
from anyllm_cli.config._urls import normalize_base_url
from anyllm_cli.config.model_map import ModelMap
from anyllm_cli.config.presets import PRESETS, Preset
from anyllm_cli.errors import ConfigError

KINDS = ("openai", "anthropic", "azure", "gemini", "vertex", "bedrock", "echo")
API_FORMATS = ("chat", "responses")
ECHO_BASE_URL = "echo://offline"  # the echo backend has no network; this only names it

THINKING_STYLES = ("effort", "openrouter", "google", "glm")
BATCH_MODES = ("local", "native")
# The kinds with a batch API of their own: OpenAI's Files + /v1/batches, Anthropic's Message Batches.
BATCH_KINDS = ("openai", "anthropic")


@dataclass(frozen=True, slots=True)
class BackendSettings:
    name: str
    kind: str  # one of KINDS: the upstream's wire format and auth
    base_url: str  # normalised, with the API version root, no trailing slash
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str | None = None
    preset: str | None = None
    big_model: str | None = None
    small_model: str | None = None
    model_map: Mapping[str, str] = field(default_factory=dict)
    extra_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    connect_timeout: float = 10.0
    read_timeout: float = 600.0  # also the idle timeout between stream chunks
    max_retries: int = 2
    omit_stream_options: bool = False
    max_output_tokens: Mapping[str, int] = field(default_factory=dict)  # "*" = default
    reasoning_field: str | None = "reasoning_content"
    api_format: str = "chat"  # openai and azure kinds: "chat" (Completions) or "responses"
    api_version: str | None = None  # azure: the api-version of classic deployment URLs
    deployment: str | None = None  # azure: the deployment in the URL (else the model in the body)
    token_command: str | None = field(default=None, repr=False)  # prints a bearer token (vertex)
    thinking_style: str = "effort"  # how a Chat upstream is asked to think (see presets.Preset)
    region: str | None = None  # bedrock: the AWS region
    reasoning_models: tuple[str, ...] = ()  # upstream model prefixes of o-series-like models
    batch: str = (
        "local"  # "native": batches of its own format go to its batch API (see BATCH_KINDS)
    )

    def model_map_fn(self) -> ModelMap:
        return ModelMap(self.model_map, self.big_model, self.small_model)

    def is_reasoning_model(self, upstream_model: str) -> bool:
        name = upstream_model.rsplit("/", 1)[-1].lower()
        return name.startswith(self.reasoning_models)

    def output_limit(self, upstream_model: str) -> int | None:
        limits = self.max_output_tokens
        return limits.get(upstream_model, limits.get("*"))


_BACKEND_KEYS = frozenset(
    {
        "kind",
        "preset",
        "base_url",
        "api_key",
        "big_model",
        "small_model",
        "model_map",
        "extra_headers",
        "connect_timeout",
        "read_timeout",
        "max_retries",
        "omit_stream_options",
        "max_output_tokens",
        "reasoning_field",
        "api_format",
        "api_version",
        "deployment",
        "project",
        "location",
        "token_command",
        "thinking_style",
        "region",
        "batch",
    }
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def backend_names() -> tuple[str, ...]:
    """Every name `--backend` takes without a config file: the presets and `echo`."""
    return (*PRESETS, "echo")


def _preset_key(preset: Preset, envs: Mapping[str, str]) -> tuple[str | None, str | None]:
    for var in preset.key_names():
        if envs.get(var):
            return envs[var], var
    return None, preset.key_env


def _echo(name: str) -> BackendSettings:
    return BackendSettings(name=name, kind="echo", base_url=ECHO_BASE_URL, reasoning_field=None)


def _preset_backend(name: str, envs: Mapping[str, str]) -> BackendSettings:
    """A backend from a preset name alone (simple mode): URL and key from the environment."""
    if name == "echo":
        return _echo(name)
    preset = PRESETS[name]
    url_var = next((v for v in preset.base_url_env if envs.get(v)), None)
    raw_url = envs[url_var] if url_var else preset.base_url or None

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"backend {name}: {key}: {problem}")

    values = _kind_values(preset.kind, raw_url, lambda key: None, envs, fail)
    key, key_env = _preset_key(preset, envs)
    return BackendSettings(
        name=name,
        kind=preset.kind,
        api_key=key,
        api_key_env=key_env,
        preset=name,
        max_output_tokens=preset.max_output_tokens,
        reasoning_field=preset.reasoning_field,
        omit_stream_options=preset.omit_stream_options,
        thinking_style=preset.thinking_style,
        reasoning_models=preset.reasoning_models,
        **values,
    )


def _root(kind: str, api_version: str | None) -> str:
    """The path a bare host gets: Gemini's /v1beta, Azure's /openai (classic) or /openai/v1."""
    if kind == "gemini":
        return "/v1beta"
    if kind == "azure":
        return "/openai" if api_version else "/openai/v1"
    return "" if kind == "bedrock" else "/v1"


def _env(envs: Mapping[str, str], *names: str) -> str | None:
    return next((envs[n] for n in names if envs.get(n)), None)


def _kind_values(
    kind: str,
    raw_url: str | None,
    given: Callable[[str], str | None],
    envs: Mapping[str, str],
    fail: Callable[[str, str], ConfigError],
) -> dict[str, Any]:
    """The base URL and the kind's own settings (Azure deployments, Vertex projects, API format)."""
    out: dict[str, Any] = {}
    api_format = given("api_format") or "chat"
    if api_format not in API_FORMATS:
        raise fail("api_format", f'expected "chat" or "responses", got {_show(api_format)}')
    if api_format != "chat" and kind not in ("openai", "azure"):
        raise fail("api_format", f'only the openai and azure kinds have one, not "{kind}"')
    out["api_format"] = api_format
    if kind == "azure":
        out["api_version"] = given("api_version") or _env(
            envs, "AZURE_OPENAI_API_VERSION", "AZURE_API_VERSION", "OPENAI_API_VERSION"
        )
        out["deployment"] = given("deployment") or _env(envs, "AZURE_OPENAI_DEPLOYMENT")
        if raw_url is None:
            raise fail(
                "base_url",
                "required: your resource's endpoint, e.g. set AZURE_OPENAI_ENDPOINT="
                "https://NAME.openai.azure.com",
            )
    if kind == "vertex":
        project = given("project") or _env(envs, "GOOGLE_CLOUD_PROJECT", "VERTEXAI_PROJECT")
        location = (
            given("location")
            or _env(envs, "GOOGLE_CLOUD_LOCATION", "VERTEXAI_LOCATION")
            or "global"
        )
        if raw_url is None:
            if not project:
                raise fail(
                    "project", 'required: set project = "my-project" or GOOGLE_CLOUD_PROJECT'
                )
            host = "aiplatform.googleapis.com"
            host = host if location == "global" else f"{location}-{host}"
            raw_url = f"https://{host}/v1/projects/{project}/locations/{location}/publishers/google"
        out["token_command"] = given("token_command") or "gcloud auth print-access-token"
    if kind == "bedrock":
        out["region"] = given("region") or _env(envs, "AWS_REGION", "AWS_DEFAULT_REGION")
        if raw_url is None:
            if not out["region"]:
                raise fail("region", 'required: set region = "us-east-1" or AWS_REGION')
            raw_url = f"https://bedrock-runtime.{out['region']}.amazonaws.com"
    if raw_url is None:
        raise fail(
            "base_url", f'required for kind "{kind}"; e.g. base_url = "http://localhost:8000/v1"'
        )
    try:
        out["base_url"] = normalize_base_url(raw_url, _root(kind, out.get("api_version")))
    except ValueError as exc:
        raise fail("base_url", str(exc)) from None
    return out


def _toml_key(
    table: _Table, preset: Preset | None, envs: Mapping[str, str]
) -> tuple[str | None, str | None]:
    raw = table.text("api_key", secret=True)
    if raw is None:
        return _preset_key(preset, envs) if preset else (None, None)
    if not raw.startswith("env:"):
        return raw, None  # a literal key: allowed, discouraged
    var = raw[4:].strip()
    if not _KEY.fullmatch(var):
        raise table.error("api_key", f'expected "env:VARIABLE", got "env:{var}"')
    if not envs.get(var):
        raise table.error(
            "api_key",
            f"environment variable {var} is not set; export {var}=... or add it to {ENV_FILE}",
        )
    return envs[var], var


def _kind_and_preset(table: _Table, name: str) -> tuple[str, Preset | None]:
    kind, preset_name = table.text("kind"), table.text("preset")
    if preset_name == "echo" and kind in (None, "echo"):
        return "echo", None  # `preset = "echo"`, as `--backend echo` takes it
    if kind is not None and kind in PRESETS and kind not in KINDS and preset_name is None:
        kind, preset_name = PRESETS[kind].kind, kind
    if preset_name is None and name in PRESETS and kind in (None, PRESETS[name].kind):
        preset_name = name  # [backends.deepseek] alone is the deepseek preset
    if preset_name is None and kind is not None and kind in PRESETS and kind != "openai":
        preset_name = kind  # kind = "gemini": its URL and key variable, unless the table sets them
    if preset_name is not None and preset_name not in PRESETS:
        raise table.error(
            "preset",
            f"unknown preset {_show(preset_name)}; choose one of {', '.join((*PRESETS, 'echo'))}",
        )
    preset = PRESETS[preset_name] if preset_name else None
    if kind is None:
        kind = preset.kind if preset else "echo" if name == "echo" else "openai"
    if kind not in KINDS:
        choices = ", ".join(dict.fromkeys((*KINDS, *PRESETS)))  # each name once
        raise table.error("kind", f"expected one of {choices}, got {_show(kind)}")
    if preset is not None and preset.kind != kind:
        raise table.error(
            "preset", f'preset {preset.name} speaks "{preset.kind}", not kind "{kind}"'
        )
    return kind, preset


def _thinking_style(table: _Table, preset: Preset | None) -> str:
    style = table.text("thinking_style")
    if style is None:
        return preset.thinking_style if preset else "effort"
    if style not in THINKING_STYLES:
        raise table.error(
            "thinking_style", f"expected one of {', '.join(THINKING_STYLES)}, got {_show(style)}"
        )
    return style


def _reasoning_field(table: _Table, preset: Preset | None) -> str | None:
    if "reasoning_field" not in table.data:
        return preset.reasoning_field if preset else "reasoning_content"
    value = table.data["reasoning_field"]
    if value is False or value in ("", "none"):
        return None
    if not isinstance(value, str):
        raise table.error("reasoning_field", f'expected a field name or "none", got {_show(value)}')
    return value


def _batch_mode(table: _Table, kind: str) -> str | None:
    mode = table.text("batch")
    if mode is None:
        return None
    if mode not in BATCH_MODES:
        raise table.error("batch", f'expected "local" or "native", got {_show(mode)}')
    if mode == "native" and kind not in BATCH_KINDS:
        raise table.error(
            "batch",
            f'kind "{kind}" has no native batch API; "native" works with kind "openai" '
            '(OpenAI\'s /v1/batches) or "anthropic" (Message Batches); use "local"',
        )
    return mode


def _toml_backend(table: _Table, name: str, envs: Mapping[str, str]) -> BackendSettings:
    table.only(_BACKEND_KEYS)
    if not _NAME.fullmatch(name) or name == "v1":
        raise table.error("", "a backend name is a URL segment: letters, digits, - _ . (not v1)")
    kind, preset = _kind_and_preset(table, name)
    common: dict[str, Any] = {
        "big_model": table.text("big_model"),
        "small_model": table.text("small_model"),
        "model_map": table.mapping("model_map", str, "a model name"),
    }
    if kind == "echo":
        _batch_mode(table, kind)  # "native" is refused: echo has no batch API
        return replace(_echo(name), **_given(common))
    raw_url = table.text("base_url")
    url_var = next((v for v in preset.base_url_env if envs.get(v)), None) if preset else None
    raw_url = raw_url or (envs[url_var] if url_var else preset.base_url if preset else None)
    values = _kind_values(kind, raw_url or None, table.text, envs, table.error)
    key, key_env = _toml_key(table, preset, envs)
    limits = dict(preset.max_output_tokens) if preset else {}
    extra_limits = table.mapping("max_output_tokens", int, "an integer") or {}
    for model, limit in extra_limits.items():
        if isinstance(limit, bool) or limit < 1:
            raise table.error(
                f"max_output_tokens.{model}", f"expected an integer >= 1, got {limit}"
            )
    limits.update(extra_limits)
    settings: dict[str, Any] = {
        **common,
        "extra_headers": table.mapping("extra_headers", str, "a string", secret=True),
        "connect_timeout": table.number("connect_timeout", 0.1),
        "read_timeout": table.number("read_timeout", 0.1),
        "max_retries": table.integer("max_retries", 0, 10),
        "omit_stream_options": table.flag("omit_stream_options"),
        "batch": _batch_mode(table, kind),
    }
    if settings["omit_stream_options"] is None and preset:
        settings["omit_stream_options"] = preset.omit_stream_options
    backend = BackendSettings(
        name=name,
        kind=kind,
        api_key=key,
        api_key_env=key_env,
        preset=preset.name if preset else None,
        max_output_tokens=MappingProxyType(limits),
        reasoning_field=_reasoning_field(table, preset),
        thinking_style=_thinking_style(table, preset),
        reasoning_models=preset.reasoning_models if preset else (),
        **values,
    )
    return replace(backend, **_given(settings))


def _given(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values a table set, tables frozen."""
    return {
        k: MappingProxyType(v) if isinstance(v, dict) else v
        for k, v in values.items()
        if v is not None
    }
