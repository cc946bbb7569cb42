"""The ``invariant`` command. Each command group lives in its own module and is added here."""

from __future__ import annotations

import typer

from invariant.cli import (
    consumers,
    contracts,
    deadletters,
    jobs,
    processes,
    projections,
    relay,
    schemas,
)

app = typer.Typer(
    name="invariant", help="Operate invariant applications.", no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(contracts.app, name="contracts")
app.add_typer(projections.app, name="projections")
app.add_typer(deadletters.app, name="deadletters")
app.add_typer(schemas.app, name="schemas")
app.add_typer(relay.app, name="relay")
app.add_typer(processes.app, name="processes")
app.add_typer(consumers.app, name="consumers")
app.add_typer(jobs.app, name="jobs")

__all__ = ["app"]
