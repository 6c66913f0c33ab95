"""The one module that imports Rich, lazily, so commands that print nothing fancy stay fast."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any

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


class BatchProgress:
    """A batch's progress on stderr: a Rich bar (done, failed, total, rate, ETA) on a terminal, a
    plain line every `every` seconds when piped."""

    def __init__(self, label: str, *, every: float = 5.0) -> None:
        import time

        self._label = label
        self._every = every
        self._clock = time.monotonic
        self._last = 0.0
        self._start = self._clock()
        self._bar: Any = None
        self._task: Any = None
        console = stderr()
        if console.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[failed]} failed"),
                TextColumn("{task.fields[rate]}/s"),
                TimeRemainingColumn(),
                console=console,
            )
            self._task = self._bar.add_task(label, total=None, failed=0, rate="0.0")
            self._bar.start()

    def update(self, done: int, failed: int, total: int) -> None:
        elapsed = max(self._clock() - self._start, 1e-9)
        rate = f"{done / elapsed:.1f}"
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total, failed=failed, rate=rate)
            return
        now = self._clock()
        if now - self._last >= self._every or done >= total:
            self._last = now
            eta = ""
            if 0 < done < total:
                left = round((total - done) * elapsed / done)
                eta = f", ETA {left // 60}m{left % 60:02d}s" if left >= 60 else f", ETA {left}s"
            stderr().print(f"{self._label}: {done}/{total} done, {failed} failed, {rate}/s{eta}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


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
