"""``invariant projections``: status, rebuild and resume of the configured projections.

Settings come from ``INVARIANT_*`` environment variables (see :mod:`invariant.config`):
the store (``INVARIANT_STORE``, ``INVARIANT_SQLITE_PATH`` or ``INVARIANT_POSTGRES_DSN`` and
``INVARIANT_POSTGRES_SCHEMA``) and ``INVARIANT_PROJECTIONS=package.module:factory``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from invariant.bootstrap import load_projections, open_read_models, open_storage
from invariant.cli.running import guarded, import_from_here
from invariant.config import Settings
from invariant.projections import ProjectionRunner, ProjectionStatus

T = TypeVar("T")
app = typer.Typer(
    help="Inspect, rebuild and resume projections (configured by INVARIANT_* variables).",
    no_args_is_help=True,
)


def _with_runner(work: Callable[[ProjectionRunner], Awaitable[T]]) -> T:
    """Build the runner the settings describe, set it up, run ``work``, clean up.
    An invariant error is printed as one line and exits with status 2."""
    import_from_here()

    async def main() -> T:
        settings = Settings.from_env()
        database = open_read_models(settings)
        storage = open_storage(settings)
        try:
            await storage.setup()
            found = load_projections(settings, storage)
            runner = ProjectionRunner(found.store, database, found.projections)
            await runner.setup()
            return await work(runner)
        finally:
            await storage.close()
            await database.close()

    return guarded(main)


def _table(statuses: list[ProjectionStatus]) -> Table:
    table = Table("projection", "version", "state", "checkpoint", "head", "lag", "lag (s)",
                  "error")
    for s in statuses:
        error = "" if s.error is None else f"at {s.error_position}: {s.error}"
        table.add_row(s.name, f"v{s.version}{' (active)' if s.active else ''}", s.state,
                      str(s.checkpoint), str(s.head), str(s.lag_events),
                      f"{s.lag_seconds:.1f}", error)
    return table


@app.command()
def status() -> None:
    """Checkpoint, head, lag and state of every projection; exits 1 if one has failed."""
    statuses = _with_runner(lambda runner: runner.status())
    Console(width=160).print(_table(statuses))
    if any(s.state == "failed" for s in statuses):
        raise typer.Exit(1)


@app.command()
def rebuild(
    name: Annotated[str, typer.Argument(help="the projection to rebuild")],
    from_position: Annotated[int, typer.Option(
        "--from", min=0, help="keep the effects of events up to this position")] = 0,
    version: Annotated[int | None, typer.Option(
        "--version", help="the version to rebuild (default: the active one)")] = None,
) -> None:
    """Rebuild a projection from zero, or from a position, with a progress bar."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(f"rebuilding {name}", total=None)

        def progress(position: int, head: int) -> None:
            bar.update(task, completed=position, total=head)

        reached = _with_runner(lambda runner: runner.rebuild(
            name, from_position=from_position, version=version, progress=progress))
    typer.echo(f"{name} rebuilt up to position {reached}")


@app.command()
def resume(name: Annotated[str, typer.Argument(help="the failed projection")]) -> None:
    """Clear a projection's failure: its worker retries the event it stopped at."""
    _with_runner(lambda runner: runner.resume(name))
    typer.echo(f"{name} resumed")
