"""How long work (projection rebuilds, dead-letter replays, schema exports) shows its
progress, on stderr so that the results on stdout stay clean:

* on a terminal, a Rich bar with the count, the rate and the time left;
* anywhere else (a pipe, a file, a CI log), plain lines: at most one a second, and always
  the last one, e.g. ``rebuilding orders: 1,000/4,000 events (25%), 2,150 events/s,
  about 0:00:01 left``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

Report = Callable[[int, int], None]
"""Called with ``(done, total)`` as the work goes on."""
EVERY = 1.0
"""Seconds between two plain progress lines."""


@contextmanager
def progress(description: str, unit: str, *, console: Console | None = None
             ) -> Iterator[Report]:
    """A :data:`Report` function showing the work's progress while the block runs."""
    console = console or Console(stderr=True)
    if console.is_terminal:
        with _bar(unit, console) as bar:
            task = bar.add_task(description, total=None)
            yield lambda done, total: bar.update(task, completed=done, total=total)
        return
    lines = PlainLines(description, unit, console)
    try:
        yield lines.report
    finally:
        lines.finish()


def _bar(unit: str, console: Console) -> Progress:
    # Lines the command prints on stdout meanwhile go above the bar when stdout is this
    # terminal too; when it is a pipe they must go there, not to the bar's stderr.
    same_terminal = sys.stdout.isatty()
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    RateColumn(unit), TimeRemainingColumn(), console=console,
                    redirect_stdout=same_terminal, redirect_stderr=False)


class RateColumn(ProgressColumn):
    """``1,234 events/s``: how fast the work goes (Rich's own speed column is for bytes)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None and task.elapsed:
            speed = task.completed / task.elapsed
        return Text("" if speed is None else f"{speed:,.0f} {self.unit}/s",
                    style="progress.data.speed")


class PlainLines:
    """Progress as plain lines, for output that is not a terminal."""

    def __init__(self, description: str, unit: str, console: Console, *,
                 clock: Callable[[], float] = time.monotonic, every: float = EVERY) -> None:
        self.description = description
        self.unit = unit
        self.console = console
        self.clock = clock
        self.every = every
        self._start: tuple[float, int] | None = None
        self._last: tuple[int, int] | None = None
        self._printed: tuple[float, tuple[int, int]] | None = None

    def report(self, done: int, total: int) -> None:
        """Note the progress; print it if the last line is a second old."""
        now = self.clock()
        if self._start is None:
            self._start = (now, done)
        self._last = (done, total)
        if self._printed is None or now - self._printed[0] >= self.every:
            self._print(now)

    def finish(self) -> None:
        """Print where the work ended, unless that is the line printed last."""
        if self._last is not None and (self._printed is None
                                       or self._printed[1] != self._last):
            self._print(self.clock())

    def _print(self, now: float) -> None:
        assert self._start is not None and self._last is not None
        done, total = self._last
        line = f"{self.description}: {done:,}/{total:,} {self.unit}"
        if total:
            line += f" ({100 * done // total}%)"
        started, first = self._start
        if now > started and done > first:
            rate = (done - first) / (now - started)
            line += f", {rate:,.0f} {self.unit}/s"
            if total > done:
                left = timedelta(seconds=round((total - done) / rate))
                line += f", about {left} left"
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        self._printed = (now, self._last)
