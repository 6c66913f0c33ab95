"""Reading configuration input: the user dirs, the `.anyllm.env` file, the TOML file, and `_Table`.

`_Table` is typed access to one TOML table: every getter checks the type and range and raises
`ConfigError` naming the file and the dotted key (`anyllm.toml: server.port: ...`), with a close match
for a misspelt key; secret values are never echoed. `_Flags` checks the command line the same way.
Paths: `ANYLLM_HOME` redirects all state; else the platform's XDG/AppData dirs.

What it gives up: no TOML writing, no `${VAR}` interpolation inside the env file.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from collections.abc import Mapping
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from anyllm_cli.errors import ConfigError

ENV_FILE = ".anyllm.env"
CONFIG_FILE = "anyllm.toml"


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


def _read_env_file(flags: Mapping[str, Any], cwd: Path) -> tuple[dict[str, str], Path | None]:
    """The variables of the env file, and its path (None when there is none)."""
    given = flags.get("env_file")
    path = cwd / str(given) if given else cwd / ENV_FILE
    if not path.is_file():
        if given:
            what = "a directory, not a file" if path.is_dir() else "no such file"
            raise ConfigError(f"--env-file {given}: {what}")
        return {}, None
    try:
        return parse_env_file(path.read_text(encoding="utf-8"), str(given or ENV_FILE)), path
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
    """The TOML file: --config, else ANYLLM_CONFIG, else the user config dir's anyllm.toml.

    --config and ANYLLM_CONFIG may name a directory: its anyllm.toml is read."""
    if flags.get("config"):
        return _given_config(cwd, str(flags["config"]), f"--config {flags['config']}")
    if env.get("ANYLLM_CONFIG"):
        given = env["ANYLLM_CONFIG"]
        return _given_config(cwd, given, f"ANYLLM_CONFIG={given}")
    path = config_home(env, cwd) / CONFIG_FILE
    return path if path.is_file() else None


def _given_config(cwd: Path, given: str, label: str) -> Path:
    path = cwd / Path(given).expanduser()
    if path.is_dir():
        if not (path / CONFIG_FILE).is_file():
            raise ConfigError(f"{label}: a directory without {CONFIG_FILE} in it")
        return path / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{label}: no such file")
    return path


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
