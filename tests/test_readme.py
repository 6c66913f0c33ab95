"""The README's quick start, run as written: `anyllm serve --backend echo`, then its curl call.

The commands are read from the README's fenced blocks: the first line that starts `anyllm serve`
and mentions `--backend echo`, and the first `curl` command aimed at 127.0.0.1:3000. The server is
started with `--port 0` instead of 3000 (a test must not depend on a free fixed port) and the curl
command is replayed with httpx against the port it really got (no curl binary needed): its URL,
`-X`, `-H` and `-d` are honoured. The reply must be a 200 that echoes the message sent.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import ProxyProcess

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
QUICK_START_HINT = """the README's quick start should hold, in fenced blocks:
    anyllm serve --backend echo
and a curl call to it, e.g.
    curl http://127.0.0.1:3000/v1/messages -H 'content-type: application/json' \\
      -H 'anthropic-version: 2023-06-01' \\
      -d '{"model":"claude-sonnet-4-6","max_tokens":256,"messages":[{"role":"user","content":"Hello"}]}'"""


def _commands() -> list[str]:
    """Every shell command in the README's fenced blocks: continuation lines joined, `&&` split."""
    commands: list[str] = []
    for block in FENCE.findall(README.read_text(encoding="utf-8")):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            for part in line.strip().removeprefix("$ ").split("&&"):
                command = part.strip()
                if command and not command.startswith("#"):
                    commands.append(command)
    return commands


def _serve_args(commands: list[str]) -> list[str]:
    for command in commands:
        if command.startswith("anyllm serve") and "--backend echo" in command:
            args = shlex.split(command, comments=True)[2:]
            out: list[str] = []
            skip = False
            for arg in args:
                if skip:
                    skip = False
                    continue
                if arg == "--port":
                    skip = True
                    continue
                if not arg.startswith("--port="):
                    out.append(arg)
            return out
    pytest.fail(QUICK_START_HINT)


def _curl(commands: list[str]) -> list[str]:
    for command in commands:
        words = shlex.split(command, comments=True)
        if words and words[0] == "curl" and any("127.0.0.1:3000" in w for w in words):
            return words[1:]
    pytest.fail(QUICK_START_HINT)


def _replay(words: list[str], base: str) -> httpx.Response:
    method, url, headers, data = None, "", {}, None
    it = iter(words)
    for word in it:
        if word in ("-X", "--request"):
            method = next(it)
        elif word in ("-H", "--header"):
            name, _, value = next(it).partition(":")
            headers[name.strip()] = value.strip()
        elif word in ("-d", "--data", "--data-raw", "--json"):
            data = next(it)
        elif word.startswith("http"):
            url = word.replace("http://127.0.0.1:3000", base)
    return httpx.request(method or ("POST" if data else "GET"), url, content=data, headers=headers)


def test_quick_start_runs_as_written(tmp_path: Path) -> None:
    commands = _commands()
    args, curl = _serve_args(commands), _curl(commands)
    proxy = ProxyProcess.start(tmp_path, None, *args)
    try:
        reply = _replay(curl, proxy.url)
        assert reply.status_code == 200, reply.text
        sent = json.loads(next(w for w in curl if w.startswith("{")))
        text = sent["messages"][-1]["content"]
        assert isinstance(text, str)
        assert text in reply.text
    finally:
        assert proxy.stop() == 0


def test_config_example_loads(tmp_path: Path) -> None:
    from anyllm_cli.config import load_settings

    text = README.read_text(encoding="utf-8")
    match = re.search(r"^```toml\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert match, "the README shows an anyllm.toml example"
    (tmp_path / "anyllm.toml").write_text(match.group(1), encoding="utf-8")
    settings = load_settings({"config": "anyllm.toml"}, {"DEEPSEEK_API_KEY": "k"}, cwd=tmp_path)
    assert settings.backends[settings.default_backend].output_limit("any") == 16384
