from __future__ import annotations

import json
import os
import pty
import selectors
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

import pytest
from typer.testing import CliRunner, Result

from anyllm_cli.cli import app, exit_code, main
from anyllm_cli.errors import AnyllmError
from anyllm_cli.translate.streams.sse import SSEDecoder

CLI = Path(__file__).resolve().parents[1] / "fixtures" / "cli"
ROOT = CLI.parents[2]
AMBIGUOUS = '{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}'
runner = CliRunner()


def run(*args: str, stdin: str | bytes | None = None) -> Result:
    return runner.invoke(app, ["translate", *args], input=stdin)


def status(result: Result) -> int:
    """The exit code `anyllm` would give: main() maps AnyllmError through the exit-code table."""
    if isinstance(result.exception, AnyllmError):
        return exit_code(result.exception)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # anything else is a bug: a traceback for the user
    return result.exit_code


def error(result: Result) -> str:
    return str(result.exception)


def fixture(name: str) -> str:
    return str(CLI / name)


def sse(text: str) -> list[tuple[str | None, Any]]:
    decoder = SSEDecoder()
    found = decoder.decode(text) + decoder.flush()
    return [(e.event, e.data if e.data == "[DONE]" else json.loads(e.data)) for e in found]


# -- bodies ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("anthropic_request.json", lambda b: b["messages"][0]["role"] == "system"),
        ("openai_request.json", lambda b: b["system"] == "You are a terse assistant."),
        ("anthropic_response.json", lambda b: b["object"] == "chat.completion"),
        ("openai_response.json", lambda b: b["type"] == "message"),
    ],
)
def test_each_kind_of_body_is_detected_and_translated(name: str, check: Any) -> None:
    result = run(fixture(name))
    assert status(result) == 0, result.output
    assert check(json.loads(result.stdout))
    assert result.stderr == ""


def test_output_is_indented_by_default_and_one_line_with_compact() -> None:
    pretty = run(fixture("openai_response.json")).stdout
    compact = run(fixture("openai_response.json"), "--compact").stdout
    assert pretty.startswith('{\n  "id": ')
    assert compact.count("\n") == 1
    assert json.loads(pretty) == json.loads(compact)


def test_stdin_is_read_when_file_is_absent_or_dash() -> None:
    data = (CLI / "openai_response.json").read_text()
    expected = run(fixture("openai_response.json")).stdout
    assert run(stdin=data).stdout == expected
    assert run("-", stdin=data).stdout == expected


def test_the_readmes_minimal_request_is_read_as_anthropic() -> None:
    result = run(stdin=AMBIGUOUS)
    assert status(result) == 0, error(result)
    assert json.loads(result.stdout)["messages"] == [{"role": "user", "content": "hi"}]
    result = run("--from", "openai", stdin=AMBIGUOUS)
    assert status(result) == 0
    assert json.loads(result.stdout)["messages"][0]["content"] == [{"type": "text", "text": "hi"}]


def test_to_implies_the_other_side() -> None:
    result = run("--to", "anthropic", stdin=AMBIGUOUS)
    assert status(result) == 0
    assert json.loads(result.stdout)["max_tokens"] == 9


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["--to", "openai"], "openai_request.json"),
        (["--to", "openai"], "openai_response.json"),
        (["--to", "anthropic"], "anthropic_request.json"),
        (["--to", "anthropic"], "anthropic_response.json"),
        (["--from", "openai", "--to", "openai"], "openai_request.json"),
    ],
)
def test_input_already_in_the_target_api_is_checked_and_written_as_is(
    args: list[str], name: str
) -> None:
    result = run(*args, "--compact", fixture(name))
    assert status(result) == 0, error(result)
    assert json.loads(result.stdout) == json.loads((CLI / name).read_text())
    assert "already" in result.stderr


def test_input_already_in_the_target_api_is_checked_with_its_own_schema() -> None:
    bad = '{"model":"m","max_completion_tokens":5,"messages":[{"role":"tool"}]}'
    result = run("--to", "openai", stdin=bad)
    assert status(result) == 2
    assert "messages[0]" in error(result)
    assert "max_tokens" not in error(result)  # not Anthropic's schema
    stream = (CLI / "openai_stream.sse").read_bytes()
    result = run("--to", "openai", stdin=stream)
    assert status(result) == 2
    assert "already openai's" in error(result)


def test_a_bedrock_body_and_stream_are_detected() -> None:
    response = {
        "output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
    }
    result = run(stdin=json.dumps(response))
    assert status(result) == 0, error(result)
    assert json.loads(result.stdout)["content"] == [{"type": "text", "text": "hi"}]
    stream = "".join(
        f"data: {json.dumps(e)}\n\n"
        for e in (
            {"messageStart": {"role": "assistant"}},
            {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "hi"}}},
            {"contentBlockStop": {"contentBlockIndex": 0}},
            {"messageStop": {"stopReason": "end_turn"}},
        )
    )
    result = run(stdin=stream)
    assert status(result) == 0, error(result)
    assert ("message_stop", {"type": "message_stop"}) in sse(result.stdout)
    converse = '{"modelId":"m","messages":[{"role":"user","content":[{"text":"hi"}]}]}'
    result = run(stdin=converse)
    assert status(result) == 2
    assert "no route from bedrock to anthropic for a request" in error(result)


def test_no_route_is_a_readable_list() -> None:
    body = '{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}'
    result = run("--from", "gemini", "--to", "openai", stdin=body)
    assert status(result) == 2
    lines = error(result).splitlines()
    assert lines[0] == "no route from gemini to openai for a request. Routes:"
    assert "  anthropic -> openai: request, response, stream" in lines
    assert max(len(line) for line in lines) < 100
    assert "--from gemini --to anthropic" in lines[-1]


def test_model_names_the_output_model_and_reads_gemini_requests_back() -> None:
    to_gemini = run("--to", "gemini", "--compact", stdin=AMBIGUOUS)
    assert status(to_gemini) == 0
    assert "model" not in json.loads(to_gemini.stdout)  # a generateContent body has none
    result = run("--to", "anthropic", stdin=to_gemini.stdout)
    assert status(result) == 2
    assert "--model" in error(result)
    result = run("--to", "anthropic", "--model", "gemini-2.5-pro", stdin=to_gemini.stdout)
    assert status(result) == 0, error(result)
    assert json.loads(result.stdout)["model"] == "gemini-2.5-pro"
    result = run("--model", "gpt-4o", stdin=AMBIGUOUS)
    assert json.loads(result.stdout)["model"] == "gpt-4o"
    result = run("--model", "a", "--model-map", "b=c", stdin=AMBIGUOUS)
    assert status(result) == 2


def test_kind_forces_what_the_input_is() -> None:
    result = run("--kind", "request", "--from", "openai", fixture("openai_response.json"))
    assert status(result) == 2
    assert "messages: Field required" in error(result)
    result = run("--kind", "stream", fixture("openai_response.json"))
    assert status(result) == 2
    assert "SSE" in error(result)
    result = run("--kind", "request", fixture("openai_stream.sse"))
    assert status(result) == 2
    assert "but the input is SSE" in error(result)
    assert status(run("--kind", "stream", fixture("openai_stream.sse"))) == 0


def test_model_map_is_repeatable_and_checked() -> None:
    args = ["--model-map", "claude-sonnet-4-5=gpt-4o", "--model-map", "x=y"]
    result = run(*args, fixture("anthropic_request.json"))
    assert json.loads(result.stdout)["model"] == "gpt-4o"
    result = run("--model-map", "no-equals-sign", fixture("anthropic_request.json"))
    assert status(result) == 2
    assert "--model-map" in error(result)


def test_big_and_small_models_follow_the_claude_family_rule() -> None:
    result = run("--big-model", "big", "--small-model", "small", fixture("requests.jsonl"))
    models = [json.loads(line)["model"] for line in result.stdout.splitlines()]
    assert models == ["big", "small", "big"]  # sonnet, haiku, opus


def test_degradations_go_to_stderr_and_strict_makes_them_fatal() -> None:
    lossy = fixture("anthropic_request_lossy.json")
    result = run(lossy)
    assert status(result) == 0
    assert result.stderr.startswith("warning: top_k_dropped")
    assert "top_k" not in json.loads(result.stdout)
    result = run("--strict", lossy)
    assert status(result) == 1
    assert result.stdout == ""  # a lossy body is not written under --strict
    assert result.stderr.startswith("warning: top_k_dropped")
    assert "top_k_dropped" in error(result)
    assert status(run("--strict", fixture("anthropic_request.json"))) == 0


# -- bad input ---------------------------------------------------------------------------------------


def test_bad_json_names_line_and_column() -> None:
    result = run(stdin='{\n  "model": "m",\n  "messages": [,]\n}')
    assert status(result) == 2
    assert error(result).startswith("line 3 column 16: invalid JSON")


def test_a_body_that_does_not_parse_names_its_json_path() -> None:
    result = run(fixture("bad_request.json"))
    assert status(result) == 2
    assert error(result) == "messages[0].content[0].text: Field required"


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["/no/such/file.json"], None, "cannot read /no/such/file.json: No such file"),
        ([str(CLI)], None, "cannot read"),
        ([], "", "no input"),
        ([], "[1, 2]", "expected a JSON object"),
        ([], '{"model": "m"}', "cannot tell what this is"),
        ([], "data: {}\n\n", "whose stream"),
    ],
)
def test_unusable_input_exits_2_with_one_line(
    args: list[str], stdin: str | None, message: str
) -> None:
    result = run(*args, stdin=stdin)
    assert status(result) == 2
    assert message in error(result)
    assert "\n" not in error(result)


# -- JSON Lines --------------------------------------------------------------------------------------


def test_json_lines_in_json_lines_out() -> None:
    result = run(fixture("requests.jsonl"))
    assert status(result) == 0
    lines = result.stdout.splitlines()
    assert [json.loads(line)["messages"][-1]["content"] for line in lines] == [
        "one",
        "two",
        "three",
    ]
    assert result.stderr.startswith("warning: line 4: top_k_dropped")  # the blank line counts


def test_every_json_line_is_detected_on_its_own() -> None:
    anthropic = (CLI / "anthropic_request.json").read_text().replace("\n", "")
    openai = (CLI / "openai_request.json").read_text().replace("\n", "")
    result = run(stdin=f"{anthropic}\n{openai}\n")
    assert status(result) == 0, error(result)
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["messages"][0]["role"] == "system"  # Anthropic -> OpenAI
    assert second["system"] == "You are a terse assistant."  # OpenAI -> Anthropic


def test_strict_json_lines_stop_at_the_first_lossy_line() -> None:
    result = run("--strict", fixture("requests.jsonl"))
    assert status(result) == 1
    assert len(result.stdout.splitlines()) == 2


def test_a_bad_json_line_is_named() -> None:
    good = (CLI / "requests.jsonl").read_text().splitlines()[0]
    result = run(stdin=f"{good}\n{{oops\n")
    assert status(result) == 2
    assert error(result).startswith("line 2 column 2: invalid JSON")
    result = run(stdin=f'{good}\n{{"model":"m","max_tokens":1,"messages":[{{"role":"x"}}]}}\n')
    assert status(result) == 2
    assert error(result).startswith("line 2: messages[0]")


# -- streams -----------------------------------------------------------------------------------------


def test_openai_stream_to_anthropic() -> None:
    result = run("--model-map", "gpt-4o=claude-x", stdin=(CLI / "openai_stream.sse").read_bytes())
    assert status(result) == 0
    events = sse(result.stdout)
    assert events[0][0] == "message_start"
    assert events[0][1]["message"]["model"] == "claude-x"
    assert events[-1][0] == "message_stop"


def test_anthropic_stream_to_openai() -> None:
    result = run(fixture("anthropic_stream.sse"), "--from", "anthropic")
    assert status(result) == 0
    events = sse(result.stdout)
    assert events[-1] == (None, "[DONE]")
    assert events[0][1]["object"] == "chat.completion.chunk"


def test_a_stream_event_that_is_not_json_exits_2_naming_it() -> None:
    head = (CLI / "openai_stream.sse").read_text().split("\n\n")[0]
    result = run(stdin=f"{head}\n\ndata: {{not json\n\n")
    assert status(result) == 2
    assert error(result).startswith("event 2: not JSON")


# -- through main() and a real process ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["anthropic_request.json"], 0),
        (["--strict", "anthropic_request_lossy.json"], 1),
        (["bad_request.json"], 2),
    ],
)
def test_main_exits_with_the_table_code(
    args: list[str], code: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["anyllm", "translate", *(a if a.startswith("--") else fixture(a) for a in args)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as caught:
        main()
    assert caught.value.code == code
    err = capsys.readouterr().err
    assert ("anyllm: error: " in err) == (code != 0)


def anyllm(*args: str, stdin: int = subprocess.PIPE) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "anyllm_cli", "translate", *args]
    pipe = subprocess.PIPE
    return subprocess.Popen(cmd, cwd=ROOT, stdin=stdin, stdout=pipe, stderr=pipe)


def read_until(stream: IO[bytes], marker: bytes, limit: float = 30.0) -> bytes:
    """What the process has written so far, up to `marker` (bounded by `limit` seconds)."""
    got = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while marker not in got:
            assert selector.select(limit), f"no {marker!r} in {got!r}"
            chunk = os.read(stream.fileno(), 65536)
            assert chunk, f"output ended before {marker!r}: {got!r}"
            got += chunk
    return got


def test_a_stream_piped_in_chunks_is_translated_as_it_arrives() -> None:
    data = (CLI / "openai_stream.sse").read_bytes()
    split = data.index(b"Let me look.") + 200  # the first two chunks, and a bit of the third
    with anyllm() as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        for i in range(0, split, 37):  # uneven pieces, cut mid-line
            proc.stdin.write(data[i : min(i + 37, split)])
            proc.stdin.flush()
        early = read_until(proc.stdout, b"text_delta")  # written before the input has ended
        proc.stdin.write(data[split:])
        proc.stdin.close()
        out = early + proc.stdout.read()
        assert proc.wait(timeout=30) == 0
        assert proc.stderr.read() == b""
    names = [name for name, _ in sse(out.decode())]
    assert names[0] == "message_start"
    assert names[-1] == "message_stop"
    assert names.count("content_block_start") == 2


def test_a_json_lines_file_through_a_real_process(tmp_path: Path) -> None:
    line = (CLI / "requests.jsonl").read_text().splitlines()[0]
    big = tmp_path / "many.jsonl"
    big.write_text("\n".join([line] * 2000) + "\n")
    with anyllm(str(big), "--compact", stdin=subprocess.DEVNULL) as proc:
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 2000
    assert json.loads(lines[-1])["messages"][0] == {"role": "system", "content": "Be brief."}


def test_bad_json_in_a_real_process_gives_one_line_and_no_traceback() -> None:
    with anyllm() as proc:
        out, err = proc.communicate(b'{"model": "m", "messages": [}', timeout=30)
    assert proc.returncode == 2
    assert out == b""
    assert err.decode() == "anyllm: error: line 1 column 29: invalid JSON: Expecting value\n"


def test_a_reader_that_goes_away_ends_the_run_quietly(tmp_path: Path) -> None:
    line = (CLI / "requests.jsonl").read_text().splitlines()[0]
    big = tmp_path / "many.jsonl"
    big.write_text("\n".join([line] * 5000) + "\n")  # far more than a pipe buffer holds
    with anyllm(str(big), stdin=subprocess.DEVNULL) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        read_until(proc.stdout, b"\n")
        proc.stdout.close()
        assert proc.wait(timeout=60) == 141
        assert b"Traceback" not in proc.stderr.read()


def test_a_terminal_on_stdin_is_not_waited_on() -> None:
    controller, terminal = pty.openpty()
    try:
        with anyllm(stdin=terminal) as proc:
            _, err = proc.communicate(timeout=30)
        assert proc.returncode == 2
        assert b"nothing to read: pass FILE" in err
    finally:
        os.close(controller)
        os.close(terminal)
