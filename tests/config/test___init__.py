"""Settings: precedence, the env file, the TOML file and its errors, base URLs, presets, keys."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from anyllm_cli.config import (
    BackendSettings,
    Settings,
    is_local_url,
    load_settings,
    normalize_base_url,
    parse_env_file,
)
from anyllm_cli.errors import ConfigError


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def load(tmp_path: Path, home: Path, flags: dict[str, Any] | None = None, **env: str) -> Settings:
    return load_settings(flags or {}, {"ANYLLM_HOME": str(home), **env}, cwd=tmp_path)


def write_toml(home: Path, text: str) -> Path:
    path = home / "anyllm.toml"
    path.write_text(text)
    return path


def error(tmp_path: Path, home: Path, flags: dict[str, Any] | None = None, **env: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, home, flags, **env)
    return str(info.value)


# -- defaults and simple mode ------------------------------------------------------------------------


def test_nothing_configured_serves_echo(tmp_path: Path, home: Path) -> None:
    settings = load(tmp_path, home)
    assert settings.default_backend == "echo"
    assert settings.backends["echo"].kind == "echo"
    assert (settings.host, settings.port, settings.proxy_api_keys) == ("127.0.0.1", 3000, ())
    assert settings.home == home


def test_openai_key_selects_openai(tmp_path: Path, home: Path) -> None:
    settings = load(tmp_path, home, OPENAI_API_KEY="sk-test")
    backend = settings.backends[settings.default_backend]
    assert settings.default_backend == "openai"
    assert backend.base_url == "https://api.openai.com/v1"
    assert backend.api_key == "sk-test"
    assert backend.api_key_env == "OPENAI_API_KEY"
    assert backend.output_limit("gpt-4o") == 16384
    assert backend.output_limit("unknown-model") is None


def test_litellm_base_url_alias_and_local_url_needs_no_key(tmp_path: Path, home: Path) -> None:
    settings = load(tmp_path, home, OPENAI_API_BASE="http://127.0.0.1:8000")
    backend = settings.backends["openai"]
    assert backend.base_url == "http://127.0.0.1:8000/v1"
    assert backend.api_key is None


def test_openai_base_url_wins_over_litellm_alias(tmp_path: Path, home: Path) -> None:
    settings = load(
        tmp_path,
        home,
        OPENAI_API_KEY="k",
        OPENAI_BASE_URL="http://a.example/v1",
        OPENAI_API_BASE="http://b.example/v1",
    )
    assert settings.backends["openai"].base_url == "http://a.example/v1"


def test_big_small_models_and_flags(tmp_path: Path, home: Path) -> None:
    flags = {"small_model": "flag-small", "model_map": ["claude-x=up-x"]}
    settings = load(
        tmp_path, home, flags, OPENAI_API_KEY="k", BIG_MODEL="env-big", SMALL_MODEL="env-small"
    )
    backend = settings.backends["openai"]
    assert (backend.big_model, backend.small_model) == ("env-big", "flag-small")
    mapping = backend.model_map_fn()
    assert mapping("claude-x") == "up-x"
    assert mapping("claude-3-5-haiku-latest") == "flag-small"
    assert mapping("claude-sonnet-4-5") == "env-big"


def test_proxy_api_keys_from_env(tmp_path: Path, home: Path) -> None:
    settings = load(tmp_path, home, PROXY_API_KEYS=" key-a, key-b ,,key-c ")
    assert settings.proxy_api_keys == ("key-a", "key-b", "key-c")
    assert "key-a" not in repr(settings)


def test_key_never_in_repr(tmp_path: Path, home: Path) -> None:
    settings = load(tmp_path, home, OPENAI_API_KEY="sk-secret-value")
    assert "sk-secret-value" not in repr(settings)


# -- presets -----------------------------------------------------------------------------------------


def test_backend_preset_uses_its_key_variable(tmp_path: Path, home: Path) -> None:
    settings = load(tmp_path, home, {"backend": "deepseek"}, DEEPSEEK_API_KEY="ds")
    backend = settings.backends["deepseek"]
    assert settings.default_backend == "deepseek"
    assert backend.base_url == "https://api.deepseek.com/v1"
    assert (backend.api_key, backend.api_key_env, backend.preset) == (
        "ds",
        "DEEPSEEK_API_KEY",
        "deepseek",
    )
    assert backend.output_limit("deepseek-chat") == 8192
    assert backend.reasoning_field == "reasoning_content"


def test_preset_key_alias(tmp_path: Path, home: Path) -> None:
    settings = load(tmp_path, home, {"backend": "together"}, TOGETHERAI_API_KEY="t")
    backend = settings.backends["together"]
    assert (backend.api_key, backend.api_key_env) == ("t", "TOGETHERAI_API_KEY")


def test_missing_key_names_the_variable(tmp_path: Path, home: Path) -> None:
    message = error(tmp_path, home, {"backend": "groq"})
    assert "GROQ_API_KEY" in message
    assert ".anyllm.env" in message


@pytest.mark.parametrize("name", ["ollama", "vllm", "lmstudio", "llamacpp"])
def test_local_presets_need_no_key(tmp_path: Path, home: Path, name: str) -> None:
    backend = load(tmp_path, home, {"backend": name}).backends[name]
    assert backend.api_key is None
    assert backend.base_url.startswith("http://localhost:")
    assert backend.base_url.endswith("/v1")


def test_unknown_backend_lists_choices(tmp_path: Path, home: Path) -> None:
    message = error(tmp_path, home, {"backend": "nope"})
    assert "--backend nope" in message
    assert "deepseek" in message and "echo" in message


def test_base_url_flag_overrides_preset(tmp_path: Path, home: Path) -> None:
    flags = {"backend": "ollama", "base_url": "http://192.168.1.20:11434/"}
    backend = load(tmp_path, home, flags).backends["ollama"]
    assert backend.base_url == "http://192.168.1.20:11434/v1"


def test_base_url_flag_alone_selects_openai(tmp_path: Path, home: Path) -> None:
    settings = load(tmp_path, home, {"base_url": "http://localhost:8080"})
    assert settings.default_backend == "openai"
    assert settings.backends["openai"].base_url == "http://localhost:8080/v1"


def test_public_base_url_without_key_is_refused(tmp_path: Path, home: Path) -> None:
    message = error(tmp_path, home, {"base_url": "https://llm.example.com"})
    assert "OPENAI_API_KEY" in message


def test_bad_model_map_flag(tmp_path: Path, home: Path) -> None:
    assert "--model-map" in error(tmp_path, home, {"model_map": ["nope"]})


# -- the env file ------------------------------------------------------------------------------------


def test_env_file_in_cwd_and_real_env_wins(tmp_path: Path, home: Path) -> None:
    (tmp_path / ".anyllm.env").write_text(
        "# comment\nexport OPENAI_API_KEY='from-file'\nBIG_MODEL=\"file-big\"\nSMALL_MODEL=s # note\n"
    )
    settings = load(tmp_path, home, BIG_MODEL="env-big")
    backend = settings.backends["openai"]
    assert backend.api_key == "from-file"
    assert (backend.big_model, backend.small_model) == ("env-big", "s")


def test_env_file_flag(tmp_path: Path, home: Path) -> None:
    (tmp_path / "custom.env").write_text("DEEPSEEK_API_KEY=k\n")
    settings = load(tmp_path, home, {"backend": "deepseek", "env_file": "custom.env"})
    assert settings.backends["deepseek"].api_key == "k"
    assert "--env-file missing.env" in error(tmp_path, home, {"env_file": "missing.env"})


def test_env_file_bad_line_names_line_not_value() -> None:
    with pytest.raises(ConfigError) as info:
        parse_env_file("A=1\nsk-secret-no-equals\n", ".anyllm.env")
    assert str(info.value).startswith(".anyllm.env:2:")
    assert "sk-secret" not in str(info.value)


def test_env_file_quotes() -> None:
    parsed = parse_env_file("A=\"x # y\"\nB='z'\nC=\n  D = e  \n", "f")
    assert parsed == {"A": "x # y", "B": "z", "C": "", "D": "e"}


# -- the TOML file -----------------------------------------------------------------------------------

TOML = """
default_backend = "local"

[server]
host = "0.0.0.0"
port = 8080
proxy_api_keys = ["k1", "k2"]
max_concurrency = 64
log_format = "json"
metrics_auth = true
degradation_header = true

[backends.local]
base_url = "http://localhost:8000"
big_model = "qwen-big"
read_timeout = 30
max_retries = 0
model_map = { "claude-x" = "qwen-x" }
extra_headers = { "X-Team" = "a" }
max_output_tokens = { "qwen-big" = 4096, "*" = 2048 }

[backends.ds]
preset = "deepseek"
api_key = "env:MY_DS_KEY"
max_output_tokens = { "deepseek-chat" = 4000 }

[backends.mistral]
"""


def test_toml_file(tmp_path: Path, home: Path) -> None:
    write_toml(home, TOML)
    settings = load(tmp_path, home, MY_DS_KEY="ds-key", MISTRAL_API_KEY="m")
    assert settings.default_backend == "local"
    assert (settings.host, settings.port, settings.proxy_api_keys) == (
        "0.0.0.0",
        8080,
        ("k1", "k2"),
    )
    assert (settings.max_concurrency, settings.log_format) == (64, "json")
    assert settings.metrics_auth and settings.degradation_header
    local = settings.backends["local"]
    assert local.base_url == "http://localhost:8000/v1"
    assert (local.read_timeout, local.max_retries, local.api_key) == (30.0, 0, None)
    assert dict(local.extra_headers) == {"X-Team": "a"}
    assert local.output_limit("qwen-big") == 4096
    assert local.output_limit("other") == 2048
    assert local.model_map_fn()("claude-x") == "qwen-x"
    ds = settings.backends["ds"]
    assert (ds.api_key, ds.api_key_env, ds.base_url) == (
        "ds-key",
        "MY_DS_KEY",
        "https://api.deepseek.com/v1",
    )
    assert ds.output_limit("deepseek-chat") == 4000  # the file overrides the preset
    assert ds.output_limit("deepseek-reasoner") == 65536
    mistral = settings.backends["mistral"]  # a table named after a preset is that preset
    assert (mistral.preset, mistral.omit_stream_options, mistral.api_key) == ("mistral", True, "m")


def test_kind_may_name_a_preset(tmp_path: Path, home: Path) -> None:
    write_toml(home, '[backends.cheap]\nkind = "groq"\n[backends.openai]\nkind = "openai"\n')
    settings = load(tmp_path, home, {"backend": "cheap"}, GROQ_API_KEY="g", OPENAI_API_KEY="o")
    cheap, openai = settings.backends["cheap"], settings.backends["openai"]
    assert (cheap.preset, cheap.kind, cheap.base_url) == (
        "groq",
        "openai",
        "https://api.groq.com/openai/v1",
    )
    assert (openai.preset, openai.api_key) == ("openai", "o")


def test_anthropic_kind_and_preset(tmp_path: Path, home: Path) -> None:
    simple = load(tmp_path, home, {"backend": "anthropic"}, ANTHROPIC_API_KEY="sk-ant")
    claude = simple.backends["anthropic"]
    assert (claude.kind, claude.base_url, claude.api_key) == (
        "anthropic",
        "https://api.anthropic.com/v1",
        "sk-ant",
    )
    assert "ANTHROPIC_API_KEY" in error(tmp_path, home, {"backend": "anthropic"})
    write_toml(
        home,
        """
default_backend = "claude"
[backends.claude]
kind = "anthropic"
[backends.compat]
kind = "anthropic"
base_url = "http://127.0.0.1:9000"
""",
    )
    settings = load(tmp_path, home, ANTHROPIC_API_KEY="sk-ant")
    assert settings.backends["claude"].base_url == "https://api.anthropic.com/v1"
    assert settings.backends["compat"].base_url == "http://127.0.0.1:9000/v1"
    assert settings.backends["compat"].kind == "anthropic"


def test_azure_from_the_environment(tmp_path: Path, home: Path) -> None:
    env = {
        "AZURE_OPENAI_API_KEY": "az",
        "AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com",
        "AZURE_OPENAI_API_VERSION": "2024-10-21",
        "AZURE_OPENAI_DEPLOYMENT": "gpt-4o",
    }
    azure = load(tmp_path, home, {"backend": "azure"}, **env).backends["azure"]
    assert (azure.kind, azure.base_url, azure.api_version, azure.deployment, azure.api_key) == (
        "azure",
        "https://res.openai.azure.com/openai",
        "2024-10-21",
        "gpt-4o",
        "az",
    )
    v1 = load(
        tmp_path,
        home,
        {"backend": "azure"},
        AZURE_OPENAI_API_KEY="az",
        AZURE_OPENAI_ENDPOINT="https://res.openai.azure.com",
    ).backends["azure"]
    assert v1.base_url == "https://res.openai.azure.com/openai/v1"
    assert "AZURE_OPENAI_ENDPOINT" in error(
        tmp_path, home, {"backend": "azure"}, AZURE_OPENAI_API_KEY="az"
    )


def test_gemini_vertex_and_responses_in_one_file(tmp_path: Path, home: Path) -> None:
    write_toml(
        home,
        """
default_backend = "g"
[backends.g]
kind = "gemini"
[backends.v]
kind = "vertex"
project = "proj"
location = "europe-west4"
[backends.r]
kind = "openai"
api_format = "responses"
base_url = "http://127.0.0.1:9/v1"
""",
    )
    settings = load(tmp_path, home, GEMINI_API_KEY="g-key")
    gemini, vertex, responses = (settings.backends[n] for n in ("g", "v", "r"))
    assert (gemini.base_url, gemini.api_key) == (
        "https://generativelanguage.googleapis.com/v1beta",
        "g-key",
    )
    assert vertex.base_url == (
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/proj/locations/europe-west4"
        "/publishers/google"
    )
    assert vertex.token_command == "gcloud auth print-access-token"
    assert responses.api_format == "responses"


def test_api_format_is_checked(tmp_path: Path, home: Path) -> None:
    write_toml(home, '[backends.g]\nkind = "gemini"\napi_format = "responses"\n')
    assert "backends.g.api_format" in error(tmp_path, home, GEMINI_API_KEY="k")
    write_toml(home, '[backends.x]\nbase_url = "http://127.0.0.1:9"\napi_format = "chatty"\n')
    assert "backends.x.api_format" in error(tmp_path, home)
    write_toml(home, '[backends.x]\nbase_url = "http://127.0.0.1:9"\nthinking_style = "loud"\n')
    assert "backends.x.thinking_style" in error(tmp_path, home)
    write_toml(home, '[backends.x]\nbase_url = "http://127.0.0.1:9"\nthinking_style = "glm"\n')
    assert load(tmp_path, home).backends["x"].thinking_style == "glm"
    assert (
        load(tmp_path, home, {"backend": "openrouter"}, OPENROUTER_API_KEY="k")
        .backends["openrouter"]
        .thinking_style
        == "openrouter"
    )


def test_vertex_needs_a_project(tmp_path: Path, home: Path) -> None:
    assert "GOOGLE_CLOUD_PROJECT" in error(tmp_path, home, {"backend": "vertex"})


def test_bedrock_region_and_url(tmp_path: Path, home: Path) -> None:
    bedrock = load(tmp_path, home, {"backend": "bedrock"}, AWS_REGION="eu-west-1").backends[
        "bedrock"
    ]
    assert (bedrock.kind, bedrock.region, bedrock.base_url) == (
        "bedrock",
        "eu-west-1",
        "https://bedrock-runtime.eu-west-1.amazonaws.com",
    )
    assert "AWS_REGION" in error(tmp_path, home, {"backend": "bedrock"})


def test_a_preset_of_another_kind_is_refused(tmp_path: Path, home: Path) -> None:
    write_toml(home, '[backends.x]\nkind = "anthropic"\npreset = "deepseek"\n')
    message = error(tmp_path, home, DEEPSEEK_API_KEY="k")
    assert "backends.x.preset" in message and "deepseek" in message


def test_precedence_file_env_flags(tmp_path: Path, home: Path) -> None:
    write_toml(home, TOML)
    env = {
        "MY_DS_KEY": "x",
        "MISTRAL_API_KEY": "m",
        "PROXY_API_KEYS": "env-key",
        "BIG_MODEL": "env-big",
    }
    settings = load(tmp_path, home, {"port": 9000, "host": "127.0.0.2"}, **env)
    assert (settings.host, settings.port) == ("127.0.0.2", 9000)
    assert settings.proxy_api_keys == ("env-key",)
    assert settings.max_concurrency == 64  # from the file
    assert (
        settings.backends["local"].big_model == "env-big"
    )  # env over file, on the default backend
    flagged = load(tmp_path, home, {"big_model": "flag-big", "backend": "ds"}, **env)
    assert flagged.default_backend == "ds"
    assert flagged.backends["ds"].big_model == "flag-big"


def test_flag_backend_preset_joins_file_backends(tmp_path: Path, home: Path) -> None:
    write_toml(home, TOML)
    settings = load(tmp_path, home, {"backend": "echo"}, MY_DS_KEY="x", MISTRAL_API_KEY="m")
    assert settings.default_backend == "echo"
    assert set(settings.backends) == {"local", "ds", "mistral", "echo"}


def test_config_flag_and_env_variable(tmp_path: Path, home: Path) -> None:
    (tmp_path / "mine.toml").write_text('[backends.e]\nkind = "echo"\n')
    assert load(tmp_path, home, {"config": "mine.toml"}).default_backend == "e"
    assert load(tmp_path, home, ANYLLM_CONFIG="mine.toml").default_backend == "e"
    assert "--config nope.toml: no such file" in error(tmp_path, home, {"config": "nope.toml"})
    assert "ANYLLM_CONFIG=nope.toml" in error(tmp_path, home, ANYLLM_CONFIG="nope.toml")


def test_xdg_config_dir(tmp_path: Path) -> None:
    config = tmp_path / "xdg" / "anyllm"
    config.mkdir(parents=True)
    (config / "anyllm.toml").write_text("[server]\nport = 4000\n")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "XDG_DATA_HOME": str(tmp_path / "data")}
    settings = load_settings({}, env, cwd=tmp_path)
    assert settings.port == 4000
    assert settings.home == tmp_path / "data" / "anyllm"


def test_proxy_keys_from_env_reference(tmp_path: Path, home: Path) -> None:
    write_toml(home, '[server]\nproxy_api_keys = "env:MY_KEYS"\n')
    assert load(tmp_path, home, MY_KEYS="a,b").proxy_api_keys == ("a", "b")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[backends.local]\nbase_url = "http://x"\nread_timeout = "x"\n',
            'backends.local.read_timeout: expected a number, got "x"',
        ),
        (
            '[backends.local]\nbase_url = "http://x"\nmax_retries = 1.5\n',
            "backends.local.max_retries",
        ),
        (
            '[backends.local]\nbase_url = "http://x"\nread_timout = 5\n',
            'did you mean "read_timeout"',
        ),
        ('[backends.local]\nkind = "openai"\n', "backends.local.base_url: required"),
        (
            '[backends.local]\nbase_url = "localhost:8000"\n',
            "backends.local.base_url: expected an http://",
        ),
        ('[backends.local]\nkind = "palm"\n', "backends.local.kind: expected one of"),
        ('[backends.local]\npreset = "nope"\n', "backends.local.preset: unknown preset"),
        ("[server]\nport = 70000\n", "server.port: expected an integer between 0 and 65535"),
        ('[server]\nlog_format = "xml"\n', "server.log_format: expected one of text, json"),
        ("[server]\nmetrics_auth = 1\n", "server.metrics_auth: expected true or false"),
        ("[server]\nprxy = 1\n", "server.prxy: unknown key"),
        ('default_backend = "zzz"\n', "default_backend: unknown backend"),
        ('[backends.a]\nkind = "echo"\n[backends.b]\nkind = "echo"\n', "default_backend: required"),
        (
            '[backends.ds]\npreset = "deepseek"\napi_key = "env:NOT_SET_HERE"\n',
            "NOT_SET_HERE is not set",
        ),
        ('[backends.pub]\nbase_url = "https://llm.example.com"\n', "backends.pub.api_key"),
        ("[backends.x\n", "not valid TOML"),
        ('[backends.v1]\nkind = "echo"\n', "backends.v1: a backend name is a URL segment"),
    ],
)
def test_toml_errors_name_file_and_key(
    tmp_path: Path, home: Path, text: str, expected: str
) -> None:
    path = write_toml(home, text)
    message = error(tmp_path, home)
    assert message.startswith(str(path) + ": "), message
    assert expected in message


def test_literal_api_key_is_never_echoed_in_errors(tmp_path: Path, home: Path) -> None:
    write_toml(home, '[backends.x]\nbase_url = "http://x"\napi_key = 12345\n')
    message = error(tmp_path, home)
    assert "backends.x.api_key: expected a string, got a secret value" in message
    assert "12345" not in message


def test_flag_errors_name_the_flag(tmp_path: Path, home: Path) -> None:
    assert error(tmp_path, home, {"port": 99999}).startswith("--port: ")
    assert error(tmp_path, home, {"log_format": "xml"}).startswith("--log-format: ")
    assert error(tmp_path, home, {"workers": 0}).startswith("--workers: ")


def test_off_loopback_needs_keys_or_open(tmp_path: Path, home: Path) -> None:
    message = error(tmp_path, home, {"host": "0.0.0.0"})
    assert "PROXY_API_KEYS" in message and "--open" in message
    assert load(tmp_path, home, {"host": "0.0.0.0", "open": True}).open
    assert load(tmp_path, home, {"host": "0.0.0.0"}, PROXY_API_KEYS="k").host == "0.0.0.0"
    assert load(tmp_path, home, {"host": "localhost"}).host == "localhost"
    assert load(tmp_path, home, {"host": "::1"}).host == "::1"


def test_settings_checks_default_backend() -> None:
    backend = BackendSettings(name="e", kind="echo", base_url="echo://offline")
    with pytest.raises(ConfigError, match="default_backend"):
        Settings(backends={"e": backend}, default_backend="nope")


# -- base URLs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://api.openai.com", "https://api.openai.com/v1"),
        ("https://api.openai.com/", "https://api.openai.com/v1"),
        ("https://api.openai.com/v1", "https://api.openai.com/v1"),
        ("https://api.openai.com/v1/", "https://api.openai.com/v1"),
        ("https://api.openai.com/v1/v1", "https://api.openai.com/v1"),
        ("http://localhost:11434", "http://localhost:11434/v1"),
        ("http://127.0.0.1:8000/v1/chat/completions", "http://127.0.0.1:8000/v1"),
        ("https://api.groq.com/openai/v1", "https://api.groq.com/openai/v1"),
        ("https://openrouter.ai/api/v1/", "https://openrouter.ai/api/v1"),
        ("  http://10.0.0.5:8080//v1  ", "http://10.0.0.5:8080/v1"),
    ],
)
def test_normalize_base_url(given: str, expected: str) -> None:
    assert normalize_base_url(given) == expected
    assert not re.search(r"/v1/v1", normalize_base_url(given))


@pytest.mark.parametrize("bad", ["localhost:8000", "ftp://x", "http://x/v1?a=1", ""])
def test_normalize_base_url_refuses(bad: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        normalize_base_url(bad)


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://localhost:1234/v1", True),
        ("http://127.0.0.1/v1", True),
        ("http://[::1]:8000/v1", True),
        ("http://192.168.0.10/v1", True),
        ("http://10.1.2.3/v1", True),
        ("http://host.docker.internal:11434/v1", True),
        ("http://ollama:11434/v1", True),
        ("https://api.openai.com/v1", False),
        ("http://8.8.8.8/v1", False),
    ],
)
def test_is_local_url(url: str, local: bool) -> None:
    assert is_local_url(url) is local


def test_preset_echo_in_the_file_is_the_echo_backend(tmp_path: Path, home: Path) -> None:
    write_toml(home, '[backends.try]\npreset = "echo"\n')
    settings = load(tmp_path, home)
    assert settings.backends["try"].kind == "echo"


def test_an_unknown_kind_lists_each_name_once(tmp_path: Path, home: Path) -> None:
    write_toml(home, '[backends.local]\nkind = "palm"\n')
    message = error(tmp_path, home)
    names = message.split("expected one of ", 1)[1].split(", got")[0].split(", ")
    assert len(names) == len(set(names))
    assert "echo" in names


def test_config_may_name_a_directory_holding_anyllm_toml(tmp_path: Path, home: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    assert "--config conf: a directory without anyllm.toml" in error(
        tmp_path, home, {"config": "conf"}
    )
    (folder / "anyllm.toml").write_text('[backends.e]\nkind = "echo"\n')
    settings = load(tmp_path, home, {"config": "conf"})
    assert settings.default_backend == "e"
    assert settings.config_file == folder / "anyllm.toml"
    assert load(tmp_path, home, ANYLLM_CONFIG="conf").default_backend == "e"


def test_settings_name_the_files_they_were_read_from(tmp_path: Path, home: Path) -> None:
    assert load(tmp_path, home).config_file is None
    assert load(tmp_path, home).env_file is None
    path = write_toml(home, '[backends.e]\nkind = "echo"\n')
    (tmp_path / ".anyllm.env").write_text("BIG_MODEL=x\n")
    settings = load(tmp_path, home)
    assert settings.config_file == path
    assert settings.env_file == tmp_path / ".anyllm.env"


@pytest.mark.parametrize(
    "where",
    ["toml", "flag", "env"],
)
def test_a_base_url_with_credentials_is_refused_and_never_printed(
    tmp_path: Path, home: Path, where: str
) -> None:
    url = "https://alice:s3cret-pw@llm.example.com/v1"
    if where == "toml":
        write_toml(home, f'[backends.up]\nkind = "openai"\nbase_url = "{url}"\napi_key = "k"\n')
        message = error(tmp_path, home)
    elif where == "flag":
        message = error(tmp_path, home, {"base_url": url}, OPENAI_API_KEY="k")
    else:
        message = error(tmp_path, home, OPENAI_BASE_URL=url, OPENAI_API_KEY="k")
    assert "must not carry credentials" in message
    assert "s3cret" not in message and "alice" not in message
    assert "\n" not in message


# -- batch = "local" | "native" per backend -------------------------------------------------------


def test_a_backend_batch_mode_is_local_unless_native(tmp_path: Path, home: Path) -> None:
    write_toml(
        home,
        'default_backend = "oai"\n'
        '[backends.oai]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nbatch = "native"\n'
        '[backends.claude]\nkind = "anthropic"\nbase_url = "http://127.0.0.1:9"\nbatch = "native"\n'
        '[backends.local]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n',
    )
    backends = load(tmp_path, home).backends
    assert [backends[n].batch for n in ("oai", "claude", "local")] == ["native", "native", "local"]


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('kind = "gemini"\napi_key = "k"\nbatch = "native"', 'kind "gemini" has no native batch'),
        ('kind = "echo"\nbatch = "native"', 'kind "echo" has no native batch'),
        (
            'kind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nbatch = "fast"',
            '"local" or "native"',
        ),
    ],
)
def test_native_batches_need_a_kind_with_a_batch_api(
    tmp_path: Path, home: Path, table: str, problem: str
) -> None:
    write_toml(home, f"[backends.b]\n{table}\n")
    message = error(tmp_path, home)
    assert "backends.b.batch" in message and problem in message
