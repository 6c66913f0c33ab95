"""Settings for `anyllm serve`: one frozen value, loaded once, with one precedence.

    defaults < TOML file < .anyllm.env < real environment < command-line flags

`load_settings(flags, env, cwd=...)` is the only reader of the environment besides `cli/` (the caller
passes `os.environ`; tests pass a dict). Two ways to configure:

* Simple mode, no file: `--backend PRESET` (or `OPENAI_API_KEY`/`OPENAI_BASE_URL` for `openai`; with
  none of them the offline `echo` backend) with the key from the preset's variable (`DEEPSEEK_API_KEY`),
  `BIG_MODEL`/`SMALL_MODEL`, `PROXY_API_KEYS`. LiteLLM's names are accepted where they exist
  (`OPENAI_API_BASE`, `TOGETHERAI_API_KEY`, ...). Variables may also come from `.anyllm.env` in the
  working directory (or `--env-file`); the real environment wins over that file.
* A TOML file (`--config`, `ANYLLM_CONFIG`, or `anyllm.toml` in the user config dir: ANYLLM_HOME,
  else XDG_CONFIG_HOME/anyllm or ~/.config/anyllm) with several `[backends.NAME]` (each a preset, or
  `kind = "openai"` with a `base_url`, `kind = "anthropic"` for a Messages upstream, or
  `kind = "echo"`), `default_backend` and `[server]`. Keys are
  written `api_key = "env:VAR"`; `--backend NAME` picks a file backend or adds a preset beside them.

`BIG_MODEL`, `SMALL_MODEL` and the `--base-url`/`--big-model`/`--small-model`/`--model-map` flags
apply to the default backend. Every mistake raises `ConfigError` naming the file, the key and the fix;
secret values never appear in a message. Base URLs are normalised to include the API root once
(`http://localhost:11434` -> `http://localhost:11434/v1`, never `/v1/v1`); loopback and private
networks are allowed, and there a key is optional. Serving beyond loopback needs proxy keys or an
explicit `--open`.

What it gives up: no hot reload, no per-backend server options, no config-file writing.
"""

from __future__ import annotations

import ipaddress
import json
import re
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from difflib import get_close_matches
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from anyllm_cli.backends.presets import PRESETS, Preset
from anyllm_cli.errors import ConfigError
from anyllm_cli.translate.model_map import ModelMap, parse_model_map

KINDS = ("openai", "anthropic", "azure", "gemini", "vertex", "bedrock", "echo")
API_FORMATS = ("chat", "responses")
ECHO_BASE_URL = "echo://offline"  # the echo backend has no network; this only names it
ENV_FILE = ".anyllm.env"
CONFIG_FILE = "anyllm.toml"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("text", "json")


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

    def model_map_fn(self) -> ModelMap:
        return ModelMap(self.model_map, self.big_model, self.small_model)

    def is_reasoning_model(self, upstream_model: str) -> bool:
        name = upstream_model.rsplit("/", 1)[-1].lower()
        return name.startswith(self.reasoning_models)

    def output_limit(self, upstream_model: str) -> int | None:
        limits = self.max_output_tokens
        return limits.get(upstream_model, limits.get("*"))


def _default_home() -> Path:
    return data_home({})


@dataclass(frozen=True, slots=True)
class Settings:
    backends: Mapping[str, BackendSettings]
    default_backend: str
    host: str = "127.0.0.1"
    port: int = 3000
    proxy_api_keys: tuple[str, ...] = field(default=(), repr=False)
    open: bool = False  # allow binding off-loopback without keys
    max_concurrency: int = 512
    max_body_bytes: int = 32 * 1024 * 1024
    ping_interval: float = 10.0
    grace_period: float = 10.0
    log_level: str = "info"
    log_format: str = "text"  # "text" | "json"
    workers: int = 1
    metrics_auth: bool = False
    degradation_header: bool = False
    home: Path = field(default_factory=_default_home)

    def __post_init__(self) -> None:
        if self.default_backend not in self.backends:
            raise ConfigError(
                f"default_backend: {self.default_backend!r} is not a configured backend "
                f"(configured: {', '.join(self.backends) or 'none'})"
            )


# -- paths -------------------------------------------------------------------------------------------


def _user_home(env: Mapping[str, str]) -> Path:
    return Path(env["HOME"]) if env.get("HOME") else Path.home()


def data_home(env: Mapping[str, str], cwd: Path | None = None) -> Path:
    """ANYLLM_HOME, or the platform's user data dir + /anyllm."""
    if env.get("ANYLLM_HOME"):
        home = Path(env["ANYLLM_HOME"]).expanduser()
        return home if home.is_absolute() or cwd is None else cwd / home
    if sys.platform == "win32" and env.get("LOCALAPPDATA"):
        return Path(env["LOCALAPPDATA"]) / "anyllm"
    if env.get("XDG_DATA_HOME"):
        return Path(env["XDG_DATA_HOME"]) / "anyllm"
    return _user_home(env) / ".local" / "share" / "anyllm"


def config_home(env: Mapping[str, str], cwd: Path | None = None) -> Path:
    """Where anyllm.toml lives by default: ANYLLM_HOME, or the user config dir + /anyllm."""
    if env.get("ANYLLM_HOME"):
        return data_home(env, cwd)
    if sys.platform == "win32" and env.get("APPDATA"):
        return Path(env["APPDATA"]) / "anyllm"
    if env.get("XDG_CONFIG_HOME"):
        return Path(env["XDG_CONFIG_HOME"]) / "anyllm"
    return _user_home(env) / ".config" / "anyllm"


# -- base URLs ---------------------------------------------------------------------------------------


def normalize_base_url(url: str, root: str = "/v1") -> str:
    """One API root, no trailing slash: append `root` to a bare host, strip a pasted endpoint path.

    Raises ValueError with the fix when the URL cannot work.
    """
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f'expected an http:// or https:// URL, got "{text}" (e.g. "http://{text}")'
        )
    if parts.query or parts.fragment:
        raise ValueError(f'expected a URL without ?query or #fragment, got "{text}"')
    path = re.sub(r"/+", "/", parts.path).rstrip("/")
    for endpoint in ("/chat/completions", "/completions", "/messages", "/models"):
        if path.endswith(endpoint):
            path = path.removesuffix(endpoint)
            break
    while path.endswith("/v1/v1"):
        path = path.removesuffix("/v1")
    if not path:
        path = root
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def is_local_url(url: str) -> bool:
    """Loopback, private, link-local, or a single-label/.local/.internal host (docker, LAN)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal", ".lan")):
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return bool(host) and "." not in host
    return addr.is_loopback or addr.is_private or addr.is_link_local


# -- the env file ------------------------------------------------------------------------------------

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_env_file(text: str, name: str) -> dict[str, str]:
    """KEY=VALUE lines; `export`, comments, quotes. Errors name the line, never echo a value."""
    out: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not _KEY.fullmatch(key):
            raise ConfigError(f"{name}:{lineno}: expected KEY=VALUE (like OPENAI_API_KEY=sk-...)")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            quote, value = value[0], value[1:-1]
            if quote == '"':
                value = value.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        else:
            value = value.split(" #", 1)[0].rstrip()
        out[key] = value
    return out


def _read_env_file(flags: Mapping[str, Any], cwd: Path) -> dict[str, str]:
    given = flags.get("env_file")
    path = cwd / str(given) if given else cwd / ENV_FILE
    if not path.is_file():
        if given:
            raise ConfigError(f"--env-file {given}: no such file")
        return {}
    try:
        return parse_env_file(path.read_text(encoding="utf-8"), str(given or ENV_FILE))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from None


# -- typed access to a TOML table, with errors that name file and key -------------------------------


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
}


def _show(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)[:80]
    except (TypeError, ValueError):
        return repr(value)[:80]


class _Table:
    def __init__(self, data: Any, where: str, file: str) -> None:
        self.where, self.file = where, file
        if not isinstance(data, dict):  # the value is not shown: it may be a misplaced key
            raise self.error("", f"expected a table, got {_TYPE_NAMES.get(type(data), 'a value')}")
        self.data: dict[str, Any] = data

    def error(self, key: str, problem: str) -> ConfigError:
        path = ".".join(p for p in (self.where, key) if p)
        return ConfigError(f"{self.file}: {path}: {problem}" if path else f"{self.file}: {problem}")

    def only(self, allowed: frozenset[str]) -> None:
        for key in self.data:
            if key not in allowed:
                near = get_close_matches(key, sorted(allowed), n=1)
                hint = (
                    f'did you mean "{near[0]}"?' if near else "known: " + ", ".join(sorted(allowed))
                )
                raise self.error(key, f"unknown key; {hint}")

    def get(self, key: str, want: type | tuple[type, ...], label: str, secret: bool = False) -> Any:
        value = self.data.get(key)
        if value is None:
            return None
        ok = isinstance(value, want) and not (isinstance(value, bool) and bool not in _flat(want))
        if not ok:
            shown = "a secret value" if secret else _show(value)
            raise self.error(key, f"expected {label}, got {shown}")
        return value

    def text(self, key: str, secret: bool = False) -> str | None:
        value: str | None = self.get(key, str, "a string", secret)
        return value

    def number(self, key: str, minimum: float = 0.0) -> float | None:
        value = self.get(key, (int, float), "a number")
        if value is not None and value < minimum:
            raise self.error(key, f"expected a number >= {minimum:g}, got {_show(value)}")
        return None if value is None else float(value)

    def integer(self, key: str, minimum: int = 0, maximum: int | None = None) -> int | None:
        value: int | None = self.get(key, int, "an integer")
        if value is not None and (value < minimum or (maximum is not None and value > maximum)):
            bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise self.error(key, f"expected an integer {bounds}, got {value}")
        return value

    def flag(self, key: str) -> bool | None:
        value: bool | None = self.get(key, bool, "true or false")
        return value

    def mapping(
        self, key: str, value_type: type, label: str, secret: bool = False
    ) -> dict[str, Any] | None:
        table = self.data.get(key)
        if table is None:
            return None
        sub = _Table(table, f"{self.where}.{key}" if self.where else key, self.file)
        for name in sub.data:
            sub.get(name, value_type, label, secret)
        return dict(sub.data)

    def choice(self, key: str, choices: tuple[str, ...]) -> str | None:
        value = self.text(key)
        if value is not None and value not in choices:
            raise self.error(key, f"expected one of {', '.join(choices)}, got {_show(value)}")
        return value


def _flat(want: type | tuple[type, ...]) -> tuple[type, ...]:
    return want if isinstance(want, tuple) else (want,)


def _find_config(flags: Mapping[str, Any], env: Mapping[str, str], cwd: Path) -> Path | None:
    if flags.get("config"):
        path = cwd / str(flags["config"])
        if not path.is_file():
            raise ConfigError(f"--config {flags['config']}: no such file")
        return path
    if env.get("ANYLLM_CONFIG"):
        path = cwd / env["ANYLLM_CONFIG"]
        if not path.is_file():
            raise ConfigError(f"ANYLLM_CONFIG={env['ANYLLM_CONFIG']}: no such file")
        return path
    path = config_home(env, cwd) / CONFIG_FILE
    return path if path.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from None


class _Flags(_Table):
    """The command line, checked like a table; errors read `--port: ...`."""

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"--{key.replace('_', '-')}: {problem}")


# -- [server] ----------------------------------------------------------------------------------------

_SERVER_KEYS = frozenset(
    {
        "host",
        "port",
        "proxy_api_keys",
        "open",
        "max_concurrency",
        "max_body_bytes",
        "ping_interval",
        "grace_period",
        "log_level",
        "log_format",
        "workers",
        "metrics_auth",
        "degradation_header",
    }
)


def _split_keys(text: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in text.split(",") if k.strip())


def _proxy_keys(server: _Table, envs: Mapping[str, str]) -> tuple[str, ...] | None:
    value = server.data.get("proxy_api_keys")
    if value is None:
        return None
    if isinstance(value, str) and value.startswith("env:"):
        var = value[4:].strip()
        if not envs.get(var):
            raise server.error("proxy_api_keys", f"environment variable {var} is not set")
        return _split_keys(envs[var])
    if isinstance(value, list) and all(isinstance(k, str) and k for k in value):
        return tuple(value)
    raise server.error(
        "proxy_api_keys", 'expected a list of strings or "env:VARIABLE", got a secret value'
    )


def _server_values(table: _Table) -> dict[str, Any]:
    level = table.text("log_level")
    if level is not None:
        table.data["log_level"] = level.lower()
    return {
        "host": table.text("host"),
        "port": table.integer("port", 0, 65535),
        "open": table.flag("open"),
        "max_concurrency": table.integer("max_concurrency", 1),
        "max_body_bytes": table.integer("max_body_bytes", 1),
        "ping_interval": table.number("ping_interval", 0.1),
        "grace_period": table.number("grace_period", 0.0),
        "log_level": table.choice("log_level", LOG_LEVELS),
        "log_format": table.choice("log_format", LOG_FORMATS),
        "workers": table.integer("workers", 1),
        "metrics_auth": table.flag("metrics_auth"),
        "degradation_header": table.flag("degradation_header"),
    }


def _merge_server(doc: _Table, flags: Mapping[str, Any], envs: Mapping[str, str]) -> dict[str, Any]:
    server = _Table(doc.data.get("server", {}), "server", doc.file)
    server.only(_SERVER_KEYS)
    out = {k: v for k, v in _server_values(server).items() if v is not None}
    keys = _proxy_keys(server, envs)
    if keys is not None:
        out["proxy_api_keys"] = keys
    if envs.get("PROXY_API_KEYS"):
        out["proxy_api_keys"] = _split_keys(envs["PROXY_API_KEYS"])
    names = ("host", "port", "open", "workers", "log_level", "log_format")
    given = _Flags({k: flags[k] for k in names if k in flags}, "", "command line")
    out.update({k: v for k, v in _server_values(given).items() if v is not None})
    return out


# -- [backends.NAME] ---------------------------------------------------------------------------------

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
    }
)
THINKING_STYLES = ("effort", "openrouter", "google", "glm")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


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
    if kind is not None and kind in PRESETS and kind not in KINDS and preset_name is None:
        kind, preset_name = PRESETS[kind].kind, kind
    if preset_name is None and name in PRESETS and kind in (None, PRESETS[name].kind):
        preset_name = name  # [backends.deepseek] alone is the deepseek preset
    if preset_name is None and kind is not None and kind in PRESETS and kind != "openai":
        preset_name = kind  # kind = "gemini": its URL and key variable, unless the table sets them
    if preset_name is not None and preset_name not in PRESETS:
        raise table.error(
            "preset", f"unknown preset {_show(preset_name)}; choose one of {', '.join(PRESETS)}"
        )
    preset = PRESETS[preset_name] if preset_name else None
    if kind is None:
        kind = preset.kind if preset else "echo" if name == "echo" else "openai"
    if kind not in KINDS:
        choices = ", ".join((*KINDS, *PRESETS))
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


def _pick_default(
    doc: _Table, flags: Mapping[str, Any], envs: Mapping[str, str], backends: Mapping[str, Any]
) -> str:
    known = [*backends, *(p for p in (*PRESETS, "echo") if p not in backends)]
    if flags.get("backend"):
        name = str(flags["backend"])
        if name not in known:
            raise ConfigError(
                f"--backend {name}: unknown backend; choose one of {', '.join(known)}"
            )
        return name
    chosen = doc.text("default_backend")
    if chosen is not None:
        if chosen not in known:
            raise doc.error("default_backend", f"unknown backend; choose one of {', '.join(known)}")
        return chosen
    if len(backends) == 1:
        return next(iter(backends))
    if backends:
        raise doc.error(
            "default_backend", f"required with several backends; one of {', '.join(backends)}"
        )
    simple = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE")
    return "openai" if flags.get("base_url") or any(envs.get(v) for v in simple) else "echo"


def _override(
    b: BackendSettings, flags: Mapping[str, Any], envs: Mapping[str, str]
) -> BackendSettings:
    """Environment (BIG_MODEL, SMALL_MODEL) then flags, on the default backend."""
    changes: dict[str, Any] = {}
    for var, attr in (("BIG_MODEL", "big_model"), ("SMALL_MODEL", "small_model")):
        if envs.get(var):
            changes[attr] = envs[var]
        if flags.get(attr):
            changes[attr] = str(flags[attr])
    if flags.get("base_url"):
        if b.kind == "echo":
            raise ConfigError("--base-url: the echo backend has no URL; choose one with --backend")
        try:
            root = _root(b.kind, b.api_version)
            changes["base_url"] = normalize_base_url(str(flags["base_url"]), root)
        except ValueError as exc:
            raise ConfigError(f"--base-url: {exc}") from None
    if flags.get("model_map"):
        try:
            extra = parse_model_map([str(p) for p in flags["model_map"]])
        except ValueError as exc:
            raise ConfigError(
                f"--model-map: {exc}; e.g. --model-map claude-haiku-4-5=gpt-4.1-mini"
            ) from None
        changes["model_map"] = MappingProxyType({**b.model_map, **extra})
    return replace(b, **changes) if changes else b


def _check_key(b: BackendSettings, file: str, from_file: bool) -> None:
    if b.kind in ("echo", "bedrock") or b.api_key or b.token_command:
        return  # bedrock: AWS's credential chain, checked when the backend is built
    preset = PRESETS.get(b.preset or "")
    if (preset and preset.local) or is_local_url(b.base_url):
        return
    label = f"{b.name} ({preset.description})" if preset else b.name
    if b.api_key_env:
        where = f' or set api_key = "env:VARIABLE" under [backends.{b.name}] in {file}'
        raise ConfigError(
            f"backend {label} needs an API key: set {b.api_key_env} in the environment "
            f"or in {ENV_FILE}{where if from_file else ''}"
        )
    raise ConfigError(
        f'{file}: backends.{b.name}.api_key: {b.base_url} needs a key; set api_key = "env:VARIABLE"'
    )


def _build_backends(
    doc: _Table, flags: Mapping[str, Any], envs: Mapping[str, str]
) -> tuple[dict[str, BackendSettings], str]:
    backends: dict[str, BackendSettings] = {}
    if "backends" in doc.data:
        tables = _Table(doc.data["backends"], "backends", doc.file)
        for name, data in tables.data.items():
            backends[name] = _toml_backend(_Table(data, f"backends.{name}", doc.file), name, envs)
    from_file = set(backends)
    default = _pick_default(doc, flags, envs, backends)
    if default not in backends:
        backends[default] = _preset_backend(default, envs)
    backends[default] = _override(backends[default], flags, envs)
    for backend in backends.values():
        _check_key(backend, doc.file, backend.name in from_file)
    return backends, default


def load_settings(flags: Mapping[str, Any], env: Mapping[str, str], *, cwd: Path) -> Settings:
    """Defaults < TOML file < .anyllm.env < real environment < flags. Raises ConfigError."""
    given = {k: v for k, v in flags.items() if v is not None and v is not False and v != []}
    envs = {**_read_env_file(given, cwd), **{k: v for k, v in env.items() if v != ""}}
    path = _find_config(given, envs, cwd)
    doc = _Table(_read_toml(path) if path else {}, "", str(path) if path else CONFIG_FILE)
    doc.only(frozenset({"default_backend", "server", "backends"}))
    backends, default = _build_backends(doc, given, envs)
    server = _merge_server(doc, given, envs)
    _check_exposure(server)
    return Settings(
        backends=MappingProxyType(backends),
        default_backend=default,
        home=data_home(envs, cwd),
        **server,
    )


def is_loopback_host(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_exposure(server: Mapping[str, Any]) -> None:
    """Off loopback, the proxy needs keys, or an explicit --open."""
    host = server.get("host", "127.0.0.1")
    if is_loopback_host(host) or server.get("proxy_api_keys") or server.get("open"):
        return
    raise ConfigError(
        f"host {host}: refusing to serve beyond this machine without keys; set PROXY_API_KEYS "
        "(or [server] proxy_api_keys), or pass --open to serve anyone who can connect"
    )
