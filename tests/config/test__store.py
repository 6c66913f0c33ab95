"""Store settings: --db > ANYLLM_DB > [store] url > the default file under ANYLLM_HOME; prices."""

from __future__ import annotations

from pathlib import Path

import pytest

from anyllm_cli.config import load_settings, load_store_settings, safe_url
from anyllm_cli.errors import ConfigError


def test_the_default_is_a_file_under_anyllm_home(tmp_path: Path) -> None:
    got = load_store_settings({}, {"ANYLLM_HOME": str(tmp_path)}, cwd=tmp_path)
    assert got.url == f"sqlite://{tmp_path.resolve()}/anyllm.db"
    assert got.redis_url is None and got.master_key is None


def test_precedence_flag_env_file(tmp_path: Path) -> None:
    (tmp_path / "anyllm.toml").write_text(
        '[store]\nurl = "sqlite:///from/file.db"\nredis = "redis://file:6379/0"\n'
        '[prices."local-model"]\ninput = 1.5\noutput = 2\n'
    )
    env = {"ANYLLM_HOME": str(tmp_path)}
    got = load_store_settings({}, env, cwd=tmp_path)
    assert got.url == "sqlite:///from/file.db" and got.redis_url == "redis://file:6379/0"
    assert got.prices == {"local-model": {"input": 1.5, "output": 2.0}}
    env["ANYLLM_DB"] = "postgresql://u:secret@db/x"
    env["ANYLLM_MASTER_KEY"] = "mk"
    got = load_store_settings({}, env, cwd=tmp_path)
    assert got.url == "postgresql://u:secret@db/x" and got.master_key == "mk"
    got = load_store_settings({"db": "sqlite:///flag.db", "redis": "redis://f"}, env, cwd=tmp_path)
    assert got.url == "sqlite:///flag.db" and got.redis_url == "redis://f"


def test_serve_settings_carry_the_store(tmp_path: Path) -> None:
    settings = load_settings({"db": "sqlite:///x.db"}, {"ANYLLM_HOME": str(tmp_path)}, cwd=tmp_path)
    assert settings.store is not None and settings.store.url == "sqlite:///x.db"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[store]\nurl = "mysql://x"\n', "store.url: expected sqlite:///PATH or postgresql"),
        ('[store]\nuri = "x"\n', 'store.uri: unknown key; did you mean "url"'),
        ('[prices.m]\ninput = "cheap"\n', "prices.m.input: expected a number"),
        ("[prices.m]\ninptu = 1\n", "prices.m.inptu: unknown key"),
        ('[store]\nredis = "http://x"\n', "redis URL: expected redis://"),
    ],
)
def test_mistakes_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "anyllm.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_store_settings({}, {"ANYLLM_HOME": str(tmp_path)}, cwd=tmp_path)


def test_a_password_never_shows() -> None:
    assert safe_url("postgresql://me:pa55@db:5432/x") == "postgresql://me:***@db:5432/x"
    assert safe_url("redis://:pa55@r:6379/0") == "redis://:***@r:6379/0"
    assert safe_url("sqlite:///a.db") == "sqlite:///a.db"


def test_webhooks(tmp_path: Path) -> None:
    (tmp_path / "anyllm.toml").write_text(
        '[webhooks]\nbudget = "https://hooks.example/x"\nbudget_thresholds = [100, 50]\n'
    )
    got = load_store_settings({}, {"ANYLLM_HOME": str(tmp_path)}, cwd=tmp_path)
    assert got.budget_webhook == "https://hooks.example/x" and got.budget_thresholds == (50, 100)
    default = load_store_settings({}, {"ANYLLM_HOME": str(tmp_path / "none")}, cwd=tmp_path / "x")
    assert default.budget_webhook is None and default.budget_thresholds == (80, 95, 100)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[webhooks]\nbudget = "ftp://x"\n', "webhooks.budget: expected an http"),
        ("[webhooks]\nbudget_thresholds = [0]\n", "expected percentages between 1 and 100"),
        ("[webhooks]\nbudget_thresholds = []\n", "expected percentages"),
    ],
)
def test_bad_webhooks(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "anyllm.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_store_settings({}, {"ANYLLM_HOME": str(tmp_path)}, cwd=tmp_path)
