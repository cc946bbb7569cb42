"""Tables for people on a terminal, plain lines for programs otherwise.

On a terminal a Rich table, whose key columns (ids, names) never wrap nor shrink, so they
can be copied into ``show`` or ``resume``. Anywhere else (a pipe, a file, a test) one
tab-separated line per row under a header line, every value whole: ``cut``, ``grep`` and
``awk`` read it, and nothing is cut with "…" to fit a width.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import typer
from rich.console import Console
from rich.table import Table


def stdout() -> Console:
    """The console of the command's results (a terminal or not, as Rich finds it)."""
    return Console(soft_wrap=False)


def print_table(columns: Sequence[str], rows: Iterable[Sequence[str]], *,
                keys: int = 1, console: Console | None = None) -> None:
    """Print ``rows`` under ``columns``; the first ``keys`` columns are kept whole."""
    console = console or stdout()
    if not console.is_terminal:
        typer.echo("\t".join(columns))
        for row in rows:
            typer.echo("\t".join(_plain(value) for value in row))
        return
    table = Table()
    for index, name in enumerate(columns):
        table.add_column(name, no_wrap=index < keys, overflow="fold")
    for row in rows:
        table.add_row(*row)
    _fit_keys(table, keys)
    console.print(table)


def _fit_keys(table: Table, keys: int) -> None:
    """Give each key column the width of its longest value, so that Rich narrows the
    other columns (which wrap) rather than cut an id."""
    for column in table.columns[:keys]:
        cells = [str(cell) for cell in column.cells]
        column.min_width = max([len(str(column.header)), *map(len, cells)])


def _plain(value: str) -> str:
    """``value`` on one line without tabs (a tab or line break would split the row)."""
    return " ".join(value.split())
