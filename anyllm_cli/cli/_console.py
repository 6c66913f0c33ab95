"""The one module that imports Rich, lazily, so commands that print nothing fancy stay fast."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


@cache
def stdout() -> Console:
    from rich.console import Console

    return Console(highlight=False)


@cache
def stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def panel(console: Console, title: str, lines: list[str]) -> None:
    """Lines of plain text (no markup) in a titled box, as wide as they need."""
    from rich.panel import Panel
    from rich.text import Text

    console.print(Panel(Text("\n".join(lines)), title=title, title_align="left", expand=False))


def table(console: Console, columns: list[str], rows: list[list[str]]) -> None:
    """A Rich table on a terminal; tab-separated lines (a header, then rows) when piped."""
    if not console.is_terminal:
        for line in [columns, *rows]:
            console.file.write("\t".join(line) + "\n")
        return
    from rich.table import Table
    from rich.text import Text

    out = Table(*columns, box=None, header_style="bold", pad_edge=False)
    for row in rows:
        out.add_row(*(Text(cell) for cell in row))
    console.print(out)
