"""``invariant projections``: status, rebuild and resume of the application's projections.

The application (``--app`` or ``INVARIANT_APP``, see :mod:`invariant.cli.target`) gives
the projections and the event store they read; its settings give the database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from invariant.cli.output import print_table
from invariant.cli.progress import progress
from invariant.cli.target import Session, in_session
from invariant.operations.projections import projection_runner, resume_stopped
from invariant.projections import ProjectionRunner, ProjectionStatus

T = TypeVar("T")
app = typer.Typer(
    help="Inspect, rebuild and resume the application's projections.", no_args_is_help=True,
)
NOT_FAILED = 1
"""The exit status of ``resume`` when the projection has not stopped, and of ``pause`` when
it has (nothing changes)."""


def _with_runner(ctx: typer.Context, work: Callable[[ProjectionRunner], Awaitable[T]], *,
                 name: str | None = None) -> T:
    """Build the application's projection runner, set it up, run ``work``; ``name``, when
    given, must be one of its projections."""
    async def main(session: Session) -> T:
        found = (await session.parts("projections")).projections
        runner = projection_runner(found, session.database, session.target.named, name)
        await runner.setup()
        return await work(runner)

    return in_session(ctx, main)


def _row(s: ProjectionStatus) -> list[str]:
    error = "" if s.error is None else f"at {s.error_position}: {s.error}"
    return [s.name, f"v{s.version}{' (active)' if s.active else ''}", s.state,
            str(s.checkpoint), str(s.head), str(s.lag_events), f"{s.lag_seconds:.1f}", error]


@app.command()
def status(ctx: typer.Context) -> None:
    """Checkpoint, head, lag and state of every projection; exits 1 if one has failed."""
    statuses = _with_runner(ctx, lambda runner: runner.status())
    print_table(("projection", "version", "state", "checkpoint", "head", "lag", "lag (s)",
                 "error"), [_row(s) for s in statuses])
    if any(s.state == "failed" for s in statuses):
        raise typer.Exit(1)


@app.command()
def rebuild(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="the projection to rebuild")],
    from_position: Annotated[int, typer.Option(
        "--from", min=0, help="keep the effects of events up to this position")] = 0,
    version: Annotated[int | None, typer.Option(
        "--version", help="the version to rebuild (default: the active one)")] = None,
) -> None:
    """Rebuild a projection from zero, or from a position, showing its progress."""
    async def work(runner: ProjectionRunner) -> int:
        with progress(f"rebuilding {name}", "events") as report:
            return await runner.rebuild(name, from_position=from_position, version=version,
                                        progress=report)

    reached = _with_runner(ctx, work, name=name)
    typer.echo(f"{name} rebuilt up to position {reached}")


@app.command()
def pause(ctx: typer.Context,
          name: Annotated[str, typer.Argument(help="the projection to pause")]) -> None:
    """Stop every worker from applying events to a projection until ``resume``. Exits 1,
    changing nothing, when it has failed or is paused already."""
    paused = _with_runner(ctx, lambda runner: runner.pause(name), name=name)
    if not paused:
        typer.echo(f"{name} is failed or paused already: nothing to pause", err=True)
        raise typer.Exit(NOT_FAILED)
    typer.echo(f"{name} paused: `invariant projections resume {name}` lets it go on")


@app.command()
def resume(ctx: typer.Context,
           name: Annotated[str, typer.Argument(help="the failed or paused projection")]
           ) -> None:
    """Clear a projection's failure (its worker retries the event it stopped at) or pause
    (it goes on from where it was). Exits 1, changing nothing, when it is neither."""
    was = _with_runner(ctx, lambda runner: resume_stopped(runner, name), name=name)
    if was.state == "paused":
        typer.echo(f"{name} resumed from position {was.checkpoint}")
        return
    if was.state != "failed":
        typer.echo(f"{name} has not failed ({was.state}, at {was.checkpoint} of {was.head}): "
                   "nothing to resume", err=True)
        raise typer.Exit(NOT_FAILED)
    typer.echo(f"{name} resumed: its worker retries the event at position "
               f"{was.error_position}")
