"""End-to-end fixtures: the mock upstream (one per session) and real `anyllm serve` subprocesses.

`ProxyProcess.start()` runs `python -m anyllm_cli serve --config FILE --port 0` with a clean
environment (no keys of the developer's leak in, ANYLLM_HOME in a temp dir), waits for the
`listening on http://HOST:PORT` line, or under `--log-format json` the `{"event": "listening",
"url": ...}` record (bounded, `listening_url`), and keeps draining stderr in a thread so access logs
never fill the pipe. The shared proxy serves every e2e module; tests that need their own settings
(shutdown, workers) start one of their own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import TypeVar

import pytest

from tests.e2e.mock_upstream import UPSTREAM_KEY, MockUpstream

PROXY_KEY = "proxy-test-key"
START_TIMEOUT = 20.0


def main_config(upstream_url: str) -> str:
    return f"""
default_backend = "mock"

[server]
proxy_api_keys = ["{PROXY_KEY}"]
ping_interval = 0.2
max_body_bytes = 262144
max_concurrency = 6
grace_period = 3
log_format = "json"

[backends.mock]
kind = "openai"
base_url = "{upstream_url}"
api_key = "{UPSTREAM_KEY}"
read_timeout = 1.0
max_retries = 1
model_map = {{ "claude-sonnet-4-6" = "mock-model" }}

[backends.noretry]
kind = "openai"
base_url = "{upstream_url}"
api_key = "{UPSTREAM_KEY}"
read_timeout = 1.0
max_retries = 0

[backends.echo]
kind = "echo"
"""


def listening_url(line: str) -> str | None:
    """The URL of the start line, in text (`listening on URL`) or JSON (`"event": "listening"`)."""
    if line.startswith("listening on "):
        return line.split("listening on ", 1)[1].strip()
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except ValueError:
            return None
        if isinstance(record, dict) and record.get("event") == "listening":
            return str(record["url"])
    return None


class ProxyProcess:
    def __init__(
        self, proc: subprocess.Popen[str], url: str, lines: list[str], drained: threading.Event
    ) -> None:
        self.proc = proc
        self.url = url
        self.lines = lines
        self._drained = drained

    @classmethod
    def start(
        cls, tmp: Path, config: str | None, *args: str, env: Mapping[str, str] | None = None
    ) -> ProxyProcess:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp),
            "ANYLLM_HOME": str(tmp / "home"),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        command = [sys.executable, "-m", "anyllm_cli", "serve", "--port", "0", *args]
        if config is not None:
            path = tmp / "anyllm.toml"
            path.write_text(config)
            command += ["--config", str(path)]
        proc = subprocess.Popen(
            command, cwd=tmp, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
        )
        return cls._wait(proc)

    @classmethod
    def _wait(cls, proc: subprocess.Popen[str]) -> ProxyProcess:
        lines: list[str] = []
        found = threading.Event()
        drained = threading.Event()
        url: list[str] = []

        def drain() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                lines.append(line.rstrip("\n"))
                found_url = listening_url(line)
                if found_url is not None:
                    url.append(found_url)
                    found.set()
            found.set()
            drained.set()

        threading.Thread(target=drain, daemon=True).start()
        if not found.wait(START_TIMEOUT) or not url:
            proc.kill()
            proc.wait(5)
            drained.wait(5)
            assert proc.stderr is not None
            proc.stderr.close()
            raise AssertionError("anyllm serve did not start:\n" + "\n".join(lines))
        return cls(proc, url[0], lines, drained)

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("anyllm serve did not stop on SIGTERM") from None
        finally:
            self._drained.wait(5)
            if self.proc.stderr is not None:
                self.proc.stderr.close()

    def wait_for_line(self, needle: str, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if needle in line:
                    return line
            time.sleep(0.02)
        raise AssertionError(f"no log line with {needle!r}:\n" + "\n".join(self.lines[-20:]))


@pytest.fixture(scope="session")
def upstream() -> Iterator[MockUpstream]:
    mock = MockUpstream()
    mock.start()
    yield mock
    mock.stop()


@pytest.fixture(scope="session")
def proxy(
    upstream: MockUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    tmp = tmp_path_factory.mktemp("proxy")
    process = ProxyProcess.start(tmp, main_config(upstream.url))
    yield process
    assert process.stop() == 0, "\n".join(process.lines[-30:])


_C = TypeVar("_C", bound=AbstractContextManager[object])
Closing = Callable[[_C], _C]


@pytest.fixture
def closing() -> Iterator[Closing[_C]]:
    """Closes the SDK clients a test makes (their pooled sockets would otherwise leak to the GC)."""

    def keep(client: _C) -> _C:
        stack.enter_context(client)
        return client

    with ExitStack() as stack:
        yield keep
