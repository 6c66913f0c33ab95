"""The one module that imports Rich, lazily, so commands that print nothing fancy stay fast."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


def rows(console: Console, title: str, items: list[tuple[str, str]]) -> None:
    """Label/value rows in a titled two-column table (plain text, no markup)."""
    from rich.table import Table
    from rich.text import Text

    grid = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for label, value in items:
        grid.add_row(Text(label), Text(value))
    console.print(grid)


@contextmanager
def progress(total: int, *, enabled: bool) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr (a spinner when `total` is 0); yields `advance()`. Disabled: no-op."""
    if not enabled:
        yield lambda: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=stderr(),
        transient=True,
    ) as bar:
        task = bar.add_task("replay", total=total or None)
        yield lambda: bar.advance(task)
