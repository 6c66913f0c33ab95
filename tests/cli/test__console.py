"""BatchProgress when piped: a plain line now and then, with the rate and what is left."""

from __future__ import annotations

import pytest

from anyllm_cli.cli import _console
from anyllm_cli.cli._console import BatchProgress


def test_piped_progress_lines_say_rate_and_eta(capsys: pytest.CaptureFixture[str]) -> None:
    now = [0.0]
    bar = BatchProgress("b1", every=5.0)
    bar._clock = lambda: now[0]  # type: ignore[method-assign]
    bar._start = 0.0
    for at, done, failed in ((10.0, 10, 1), (12.0, 12, 1), (20.0, 20, 1), (200.0, 40, 2)):
        now[0] = at
        bar.update(done, failed, 40)  # 12 s: under `every` since the last line, so no line
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "b1: 10/40 done, 1 failed, 1.0/s, ETA 30s",
        "b1: 20/40 done, 1 failed, 1.0/s, ETA 20s",
        "b1: 40/40 done, 2 failed, 0.2/s",
    ]
    assert not _console.stderr().is_terminal
