"""Settings for `anyllm serve`: one frozen value, loaded once, with one precedence.

    defaults < TOML file < .anyllm.env < real environment < command-line flags

`load_settings(flags, env, cwd=...)` is the only reader of the environment besides `cli/` (the caller
passes `os.environ`; tests pass a dict). Two ways to configure:

* Simple mode, no file: `--backend PRESET` (or `OPENAI_API_KEY`/`OPENAI_BASE_URL` for `openai`; with
  none of them the offline `echo` backend) with the key from the preset's variable (`DEEPSEEK_API_KEY`),
  `BIG_MODEL`/`SMALL_MODEL`, `PROXY_API_KEYS`. LiteLLM's names are accepted where they exist
  (`OPENAI_API_BASE`, `TOGETHERAI_API_KEY`, ...). Variables may also come from `.anyllm.env` in the
  working directory (or `--env-file`); the real environment wins over that file.
* A TOML file (`--config` or `ANYLLM_CONFIG`, a file or a directory holding `anyllm.toml`, or
  `anyllm.toml` in the user config dir: ANYLLM_HOME,
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

Layout: `_files` reads the env file, the TOML file and the user dirs (`_Table` checks each key);
`_urls` normalises base URLs; `_backends` builds each backend; `_server` merges `[server]`; `_record`
reads `[record]` and the `--record*` flags (recording is off without a path); this
module assembles them, picks the default backend and applies the overrides.

What it gives up: no hot reload, no per-backend server options, no config-file writing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from anyllm_cli.config._backends import (
    API_FORMATS,
    ECHO_BASE_URL,
    KINDS,
    THINKING_STYLES,
    BackendSettings,
    _preset_backend,
    _root,
    _toml_backend,
    backend_names,
)
from anyllm_cli.config._batch import BatchSettings, batch_settings
from anyllm_cli.config._files import (
    CONFIG_FILE,
    ENV_FILE,
    _find_config,
    _read_env_file,
    _read_toml,
    _Table,
    config_home,
    data_home,
    parse_env_file,
)
from anyllm_cli.config._record import RECORD_BODIES, RecordSettings, _merge_record
from anyllm_cli.config._server import (
    LOG_FORMATS,
    LOG_LEVELS,
    _check_exposure,
    _merge_server,
    check_exposure,
)
from anyllm_cli.config._store import (
    StoreSettings,
    load_store_settings,
    safe_url,
    store_settings,
)
from anyllm_cli.config._urls import is_local_url, is_loopback_host, normalize_base_url
from anyllm_cli.config.model_map import parse_model_map
from anyllm_cli.config.presets import PRESETS
from anyllm_cli.errors import ConfigError

__all__ = [
    "check_exposure",
    "API_FORMATS",
    "CONFIG_FILE",
    "ECHO_BASE_URL",
    "ENV_FILE",
    "KINDS",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "RECORD_BODIES",
    "THINKING_STYLES",
    "BackendSettings",
    "BatchSettings",
    "RecordSettings",
    "Settings",
    "StoreSettings",
    "backend_names",
    "config_home",
    "data_home",
    "is_local_url",
    "is_loopback_host",
    "load_settings",
    "load_store_settings",
    "normalize_base_url",
    "parse_env_file",
    "safe_url",
]


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
    body_timeout: float = 30.0  # seconds for a request body to arrive in full, else 408
    ping_interval: float = 10.0
    grace_period: float = 10.0
    log_level: str = "info"
    log_format: str = "text"  # "text" | "json"
    workers: int = 1
    metrics_auth: bool = False
    degradation_header: bool = False
    home: Path = field(default_factory=_default_home)
    store: StoreSettings | None = None  # None: no key store (keys off)
    store_keys: int = 0  # active keys in the store when serve started (they count for exposure)
    record: RecordSettings | None = None  # `serve --record` / [record]: off when None
    config_file: Path | None = None  # the TOML file read, for the banner
    env_file: Path | None = None  # the env file read, for the banner
    batch: BatchSettings = field(default_factory=BatchSettings)

    def __post_init__(self) -> None:
        if self.default_backend not in self.backends:
            raise ConfigError(
                f"default_backend: {self.default_backend!r} is not a configured backend "
                f"(configured: {', '.join(self.backends) or 'none'})"
            )


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


def load_settings(
    flags: Mapping[str, Any], env: Mapping[str, str], *, cwd: Path, store_keys: int = 0
) -> Settings:
    """Defaults < TOML file < .anyllm.env < real environment < flags. Raises ConfigError.
    `store_keys`: active keys in the key store, which count as keys for the bind rule."""
    given = {k: v for k, v in flags.items() if v is not None and v is not False and v != []}
    from_env_file, env_file = _read_env_file(given, cwd)
    envs = {**from_env_file, **{k: v for k, v in env.items() if v != ""}}
    path = _find_config(given, envs, cwd)
    doc = _Table(_read_toml(path) if path else {}, "", str(path) if path else CONFIG_FILE)
    doc.only(
        frozenset(
            {
                "default_backend",
                "server",
                "backends",
                "store",
                "prices",
                "webhooks",
                "batch",
                "record",
            }
        )
    )
    backends, default = _build_backends(doc, given, envs)
    server = _merge_server(doc, given, envs)
    _check_exposure({**server, "store_keys": store_keys})
    return Settings(
        backends=MappingProxyType(backends),
        default_backend=default,
        home=data_home(envs, cwd),
        store=store_settings(doc, given, envs, data_home(envs, cwd)),
        store_keys=store_keys,
        record=_merge_record(doc, given, cwd, workers=server.get("workers", 1)),
        config_file=path,
        env_file=env_file,
        batch=batch_settings(doc),
        **server,
    )
