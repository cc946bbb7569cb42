"""The ``invariant`` command. Each command group lives in its own module and is added here."""

from __future__ import annotations

import typer

from invariant.cli import contracts, projections

app = typer.Typer(
    name="invariant", help="Operate invariant applications.", no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(contracts.app, name="contracts")
app.add_typer(projections.app, name="projections")

__all__ = ["app"]
