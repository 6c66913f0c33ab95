"""`anyllm translate`: a request, response or SSE stream from one API to another, offline.

Input is FILE or stdin, in one of three shapes (told from the first bytes, translate/detect.py):
one JSON document (written back indented, or on one line with --compact); JSON Lines (one body per
line, translated line by line in constant memory, written as JSON Lines; each line's API and kind
are detected on their own, so a file may mix them); or SSE text as `curl -N` prints it (translated
chunk by chunk as it arrives, so a live stream stays live). The route itself is one row of
translate/dispatch.py; a body already in the target API is checked and written back unchanged.
`--model NAME` names the output's model outright (a Gemini request has none in its body: its model
is in the URL, so reading one back needs `--model` or a `model` key).

Every lossy step is a `warning: <code>...` line on stderr. Under --strict they make the exit code 1:
a JSON body or line is then not written; a stream, already written, cannot be taken back. Exit codes:
0 ok, 1 lossy under --strict, 2 invalid input (a one-line message with the JSON path), 141 when the
reader of stdout goes away. A terminal on stdin is refused rather than waited on. OpenAI bodies made
from Anthropic ones get `created` = now. Pydantic and the translators are imported only when the
command runs, so `anyllm --help` stays instant.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import typer

from anyllm_cli.errors import InvalidInput, LossyTranslation
from anyllm_cli.translate.detect import (
    NAMES,
    Api,
    Detected,
    Format,
    Kind,
    detect,
    other,
    parse_json,
    sniff,
)

if TYPE_CHECKING:
    from anyllm_cli.translate.degradation import Degradation, Translated
    from anyllm_cli.translate.dispatch import RouteKey, RouteOptions

CHUNK = 64 * 1024
Read = Callable[[int], bytes]


def translate(
    *,
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="Input file; stdin when absent or '-'.")
    ] = "-",
    source: Annotated[
        Api | None, typer.Option("--from", help="The input's API (detected when absent).")
    ] = None,
    target: Annotated[
        Api | None,
        typer.Option(
            "--to",
            help="The API to translate to [anthropic for other APIs' input; openai for "
            "Anthropic's].",
        ),
    ] = None,
    kind: Annotated[
        Kind | None, typer.Option(help="What the input is (detected when absent).")
    ] = None,
    model_map: Annotated[
        list[str] | None,
        typer.Option(metavar="FROM=TO", help="Rename a model on the way (repeatable)."),
    ] = None,
    big_model: Annotated[
        str | None,
        typer.Option(metavar="MODEL", help="Model for Claude opus/sonnet names not mapped."),
    ] = None,
    small_model: Annotated[
        str | None, typer.Option(metavar="MODEL", help="Model for Claude haiku names not mapped.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            metavar="MODEL",
            help="The output's model, whatever the input names (a Gemini request names none).",
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 when anything was lost.")
    ] = False,
    compact: Annotated[
        bool, typer.Option("--compact", help="One-line JSON (default: indented).")
    ] = False,
) -> None:
    """Translate requests, responses and streams between LLM APIs.

    Reads a request, response or SSE stream from FILE (or stdin) and writes it to stdout in another
    API, each lossy step to stderr. APIs: anthropic (Messages), openai (Chat Completions),
    responses (OpenAI Responses), gemini (generateContent), bedrock (Converse). Anthropic requests
    go to any of them; their responses and streams come back to Anthropic's. The input's API and
    kind are detected. JSON Lines in, JSON Lines out.
    """
    from anyllm_cli.translate.dispatch import RouteOptions

    models = _model_fn(model, model_map or [], big_model, small_model)
    options = RouteOptions(map_model=models, created=int(time.time()))
    if target is None and source is not None:
        target = other(source)
    job = _Job(options, source, target, kind, strict=strict, compact=compact)
    try:
        with _open(file) as stream:
            read: Read = getattr(stream, "read1", stream.read)
            fmt, found, head, at_eof = _sniff(read, source)
            chunks = _chain(head, iter(()) if at_eof else _rest(read))
            if fmt == "sse":
                job.stream(found, chunks)
            elif fmt == "jsonl":
                job.jsonl(_lines(chunks))
            else:
                job.document(b"".join(chunks))
    except BrokenPipeError:
        _quiet_stdout()
        raise typer.Exit(141) from None
    job.check()


def _model_fn(
    model: str | None, pairs: list[str], big: str | None, small: str | None
) -> Callable[[str], str]:
    from anyllm_cli.config.model_map import ModelMap, parse_model_map

    if model is not None:
        if pairs or big or small:
            raise InvalidInput(
                "--model names the model outright: leave out --model-map, "
                "--big-model and --small-model"
            )
        return lambda _name: model
    try:
        explicit = parse_model_map(pairs)
    except ValueError as exc:
        raise InvalidInput(f"--model-map: {exc}") from None
    return ModelMap(explicit, big=big, small=small)


class _Job:
    """One run: what the flags say, where output goes, what was lost and what --strict does."""

    def __init__(
        self,
        options: RouteOptions,
        source: Api | None,
        target: Api | None,
        kind: Kind | None,
        *,
        strict: bool,
        compact: bool,
    ) -> None:
        self.options = options
        self.source, self.target, self.kind = source, target, kind
        self.strict = strict
        self.compact = compact
        self.out = typer.get_binary_stream("stdout")
        self.codes: list[str] = []

    def report(self, lost: list[Degradation], where: str = "") -> None:
        for item in lost:
            typer.echo(f"warning: {where}{item}", err=True)
            self.codes.append(item.code)

    def check(self) -> None:
        if self.strict and self.codes:
            raise LossyTranslation(list(dict.fromkeys(self.codes)))

    def translate(self, body: Any, found: Detected | None) -> tuple[Detected, Translated[Any]]:
        from anyllm_cli.translate.dispatch import translate

        found = found or detect(body, source=self.source, target=self.target, kind=self.kind)
        if found.source == found.target and found.kind != "stream":
            name = NAMES[found.source]
            typer.echo(
                f"note: the input is already {name}'s {found.kind}: checked, written as is",
                err=True,
            )
        return found, translate(body, (found.source, found.target, found.kind), self.options)

    def document(self, data: bytes) -> None:
        _, result = self.translate(parse_json(data), None)
        self.report(result.degradations)
        self.check()  # a lossy body is not written under --strict
        self.out.write(_dumps(result.body, compact=self.compact) + b"\n")

    def jsonl(self, lines: Iterator[bytes]) -> None:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            body = parse_json(line, line=number)
            try:
                _, result = self.translate(body, None)  # every line is detected on its own
            except InvalidInput as exc:
                where = f"line {number}: {exc.path}" if exc.path else f"line {number}"
                raise InvalidInput(exc.problem, where) from None
            self.report(result.degradations, f"line {number}: ")
            self.check()
            self.out.write(_dumps(result.body, compact=True) + b"\n")

    def stream(self, source: Api | None, chunks: Iterator[bytes]) -> None:
        from anyllm_cli.translate.dispatch import open_stream

        if self.kind not in (None, "stream"):
            raise InvalidInput(f"--kind {self.kind} expects one JSON body, but the input is SSE")
        if source is None:  # sniff() names the API of every stream it lets through
            raise InvalidInput("cannot tell whose stream this is; use --from")
        key: RouteKey = (source, self.target or other(source), "stream")
        pump = open_stream(key, self.options)
        seen = 0
        try:
            for chunk in chunks:
                self.write(pump.feed(chunk))
                seen = self.report_new(pump.translator.degradations, seen)
            self.write(pump.finish())
        except InvalidInput as exc:
            self.write(exc.partial)  # the events before the bad one are not lost
            raise
        self.report_new(pump.translator.degradations, seen)

    def report_new(self, lost: list[Degradation], seen: int) -> int:
        self.report(lost[seen:])
        return len(lost)

    def write(self, data: bytes) -> None:
        if data:
            self.out.write(data)
            self.out.flush()


# -- input -------------------------------------------------------------------------------------------


@contextmanager
def _open(file: str) -> Iterator[BinaryIO]:
    if file == "-":
        stdin = typer.get_binary_stream("stdin")
        if stdin.isatty():  # rather than wait in silence for a paste
            raise InvalidInput("nothing to read: pass FILE, or pipe a body or stream into stdin")
        yield stdin
        return
    try:
        stream = open(file, "rb")  # noqa: SIM115 -- closed by the with below
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc.strerror or exc}") from None
    with stream:
        yield stream


def _sniff(read: Read, source: Api | None) -> tuple[Format, Api | None, bytes, bool]:
    """Read until the first bytes tell the format (a decision needs a line end, or the end)."""
    head, at_eof = bytearray(), False
    while True:
        chunk = read(CHUNK)
        at_eof = not chunk
        head += chunk
        if at_eof or b"\n" in chunk:
            found = sniff(bytes(head), at_eof=at_eof, source=source)
            if found is not None:
                return found[0], found[1], bytes(head), at_eof


def _rest(read: Read) -> Iterator[bytes]:
    while chunk := read(CHUNK):
        yield chunk


def _chain(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if head:
        yield head
    yield from rest


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Complete lines out of chunks, holding no more than one line and one chunk."""
    parts: list[bytes] = []
    for chunk in chunks:
        if b"\n" not in chunk:
            parts.append(chunk)
            continue
        first, *middle, last = chunk.split(b"\n")
        yield b"".join([*parts, first])
        yield from middle
        parts = [last]
    tail = b"".join(parts)
    if tail.strip():
        yield tail


def _dumps(body: object, *, compact: bool) -> bytes:
    if compact:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return json.dumps(body, ensure_ascii=False, indent=2).encode()


def _quiet_stdout() -> None:
    """The reader of stdout is gone: point stdout at /dev/null so the exit flush is silent."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
