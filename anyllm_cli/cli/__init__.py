"""The `anyllm` command: one Typer app, one module per command group, errors mapped to exit codes here.

Command modules import their heavy dependencies inside the command function, so `anyllm --help` and
`anyllm --version` stay fast. Bad input and bad settings exit with a one-line message, never a
traceback.
"""

from __future__ import annotations

import sys

import typer

from anyllm_cli import __version__
from anyllm_cli.cli.batch import app as batch_app
from anyllm_cli.cli.keys import keys_app
from anyllm_cli.cli.replay import replay
from anyllm_cli.cli.serve import serve
from anyllm_cli.cli.translate import translate
from anyllm_cli.errors import AnyllmError, ConfigError, InvalidInput, LossyTranslation

# exception class -> exit code; the first match in order wins.
EXIT_CODES: tuple[tuple[type[AnyllmError], int], ...] = (
    (LossyTranslation, 1),
    (InvalidInput, 2),
    (ConfigError, 2),
    (AnyllmError, 1),
)

app = typer.Typer(
    name="anyllm",
    help="An LLM API gateway: Anthropic, OpenAI and Gemini clients in front of any model.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"anyllm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        help="Show the version and exit.",
        callback=_version,
        is_eager=True,
    ),
) -> None:
    """An LLM API gateway: Anthropic, OpenAI and Gemini clients in front of any model."""


app.command()(translate)
app.command()(serve)
app.add_typer(batch_app)
app.add_typer(keys_app)
app.command()(replay)


def exit_code(exc: AnyllmError) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return 1


def main() -> None:
    try:
        app()
    except AnyllmError as exc:
        sys.stderr.write(f"anyllm: error: {exc}\n")
        sys.exit(exit_code(exc))
    except KeyboardInterrupt:
        sys.exit(130)
