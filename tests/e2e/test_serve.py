"""`anyllm serve` as a process: startup errors, the echo quick path, graceful shutdown, workers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import anthropic
import httpx
import pytest

from tests.e2e.conftest import Closing, ProxyProcess
from tests.e2e.mock_upstream import MockUpstream

pytestmark = pytest.mark.e2e


def _fail(
    tmp_path: Path, *args: str, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "ANYLLM_HOME": str(tmp_path)}
    env.update(extra or {})
    return subprocess.run(
        [sys.executable, "-m", "anyllm_cli", "serve", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_port_taken_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _fail(tmp_path, "--backend", "echo", "--port", str(port))
    assert result.returncode == 2
    assert "already in use" in result.stderr
    assert "--port" in result.stderr
    assert "Traceback" not in result.stderr


def test_open_bind_without_keys_is_refused(tmp_path: Path) -> None:
    result = _fail(tmp_path, "--backend", "echo", "--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 2
    assert "PROXY_API_KEYS" in result.stderr
    assert "--open" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_names_the_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('[server]\nping_interval = "soon"\n')
    result = _fail(tmp_path, "--config", "bad.toml", "--port", "0")
    assert result.returncode == 2
    assert "ping_interval" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_backend_that_cannot_start_is_one_line(tmp_path: Path) -> None:
    aws = {
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",  # never ask the network for credentials
    }
    result = _fail(tmp_path, "--backend", "bedrock", "--port", "0", extra=aws)
    assert result.returncode == 2
    assert "no AWS credentials" in result.stderr and "AWS_ACCESS_KEY_ID" in result.stderr
    assert "Traceback" not in result.stderr


def test_echo_backend_needs_nothing(tmp_path: Path, closing: Closing) -> None:
    proxy = ProxyProcess.start(tmp_path, None, "--backend", "echo")
    try:
        client = closing(anthropic.Anthropic(base_url=proxy.url, api_key="anything", max_retries=0))
        message = client.messages.create(
            model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
        )
        assert message.content[0].text == "Hi"  # type: ignore[union-attr]
        assert httpx.head(proxy.url).status_code == 200
        assert any("ANTHROPIC_BASE_URL=" + proxy.url in line for line in proxy.lines)
    finally:
        assert proxy.stop() == 0


def test_sigterm_lets_a_stream_in_flight_finish(tmp_path: Path, upstream: MockUpstream) -> None:
    config = f"""
[server]
grace_period = 5

[backends.mock]
kind = "openai"
base_url = "{upstream.url}"
"""
    proxy = ProxyProcess.start(tmp_path, config)
    body = {
        "model": "mock-finite-slow",
        "max_tokens": 16,
        "stream": True,
        "messages": [{"role": "user", "content": "finish me"}],
    }
    lines: list[str] = []
    try:
        with httpx.stream("POST", f"{proxy.url}/v1/messages", json=body, timeout=10) as r:
            for line in r.iter_lines():
                lines.append(line)
                if line == "event: content_block_delta" and proxy.proc.poll() is None:
                    proxy.proc.send_signal(signal.SIGTERM)
                    proxy.proc.poll()
    finally:
        code = proxy.stop()
    assert "event: message_stop" in lines
    assert sum("tick" in line for line in lines) == 20
    assert code == 0


def test_two_workers_share_the_port(tmp_path: Path) -> None:
    proxy = ProxyProcess.start(tmp_path, None, "--backend", "echo", "--workers", "2")
    try:
        results: list[int] = []

        def call() -> None:
            r = httpx.post(
                f"{proxy.url}/v1/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "w"}]},
            )
            results.append(r.status_code)

        threads = [threading.Thread(target=call) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert results == [200] * 8
    finally:
        assert proxy.stop() == 0


def test_json_log_format_keeps_stderr_json_only(tmp_path: Path) -> None:
    proxy = ProxyProcess.start(tmp_path, None, "--backend", "echo", "--log-format", "json")
    try:
        reply = httpx.post(
            f"{proxy.url}/v1/messages",
            json={"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]},
        )
        assert reply.status_code == 200
        proxy.wait_for_line('"status"')  # the access record
    finally:
        assert proxy.stop() == 0
    assert proxy.lines
    records = [json.loads(line) for line in proxy.lines]  # every line is JSON
    first = records[0]
    assert first["event"] == "listening"
    assert first["url"] == proxy.url
    assert first["message"] == f"listening on {proxy.url}"
    assert first["backends"]["echo"]["kind"] == "echo"


def test_a_body_with_a_byte_order_mark_is_accepted_on_every_client_route(tmp_path: Path) -> None:
    bom = b"\xef\xbb\xbf"
    anthropic_body = {
        "model": "m",
        "max_tokens": 9,
        "messages": [{"role": "user", "content": "hi"}],
    }
    chat_body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    gemini_body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    calls = [
        ("/v1/messages", anthropic_body),
        ("/v1/messages/count_tokens", chat_body),
        ("/v1/chat/completions", chat_body),
        ("/v1beta/models/m:generateContent", gemini_body),
        ("/v1beta/models/m:countTokens", gemini_body),
    ]
    proxy = ProxyProcess.start(tmp_path, None, "--backend", "echo")
    try:
        for path, body in calls:
            reply = httpx.post(
                proxy.url + path,
                content=bom + json.dumps(body).encode(),
                headers={"content-type": "application/json"},
            )
            assert reply.status_code == 200, (path, reply.text)
        bad = httpx.post(proxy.url + "/v1/messages", content=b'{"model":')
        assert bad.status_code == 400
        message = bad.json()["error"]["message"]
        assert message.lower().count("invalid json") == 1
        assert "line 1 column" in message
    finally:
        assert proxy.stop() == 0
