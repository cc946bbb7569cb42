"""``invariant schemas``: publish the JSON Schemas of integration events and check a change
against the released ones (see :mod:`invariant.messaging.schemas` for what is breaking)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from invariant.cli.progress import progress
from invariant.cli.running import import_from_here
from invariant.domain.errors import ConfigurationError
from invariant.messaging import schemas

app = typer.Typer(help="Integration event schemas: export and breaking-change check.",
                  no_args_is_help=True)

EventsOption = Annotated[str, typer.Option(
    "--events", help="module defining the integration events, e.g. examples.orders.integration")]


def _events(module: str) -> list[type]:
    import_from_here()
    try:
        found = schemas.events_in(module)
    except ImportError as exc:
        raise ConfigurationError(f"--events {module}: cannot import it: {exc}") from exc
    if not found:
        raise ConfigurationError(f"--events {module} defines no integration events")
    return found


@app.command()
def export(
    events: EventsOption,
    out: Annotated[Path, typer.Option(help="directory for the schema files")],
    title: Annotated[str | None, typer.Option(
        help="the AsyncAPI document's title (default: the events' module)")] = None,
    version: Annotated[str, typer.Option(
        help="the AsyncAPI document's version (of the API, not of AsyncAPI)")] = "1.0.0",
) -> None:
    """Write one ``<name>.v<version>.schema.json`` per integration event, and
    ``asyncapi.json`` (AsyncAPI 3.0) describing their channels and messages."""
    found = _events(events)
    with progress("exporting event schemas", "schemas") as report:
        for done, event in enumerate(found, 1):
            for path in schemas.export([event], out):
                typer.echo(f"wrote {path}")
            report(done, len(found))
    path = schemas.export_asyncapi(found, out, title=title or f"{events} integration events",
                                   version=version)
    typer.echo(f"wrote {path}")


@app.command()
def check(events: EventsOption,
          released: Annotated[Path, typer.Option(help="directory of the released schemas")]
          ) -> None:
    """Exit 1, naming each problem, when a change breaks a released schema."""
    if not released.is_dir():
        raise ConfigurationError(f"--released {released} is not a directory of released "
                                 "schemas: give the folder `invariant schemas export` wrote")
    problems = schemas.check(_events(events), released)
    for problem in problems:
        typer.echo(f"breaking: {problem}")
    if problems:
        typer.echo(f"{len(problems)} breaking change(s): publish a new version instead",
                   err=True)
        raise typer.Exit(1)
    typer.echo("no breaking change against the released schemas")
