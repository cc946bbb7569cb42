"""The ``invariant`` command. Each command group lives in its own module and is added here;
:mod:`invariant.cli.errors` turns every error into one line, :mod:`invariant.cli.target`
finds the application (``--app`` or ``INVARIANT_APP``) and its existing database."""

from __future__ import annotations

import os
from typing import Annotated

from invariant.extras import needs_extra

with needs_extra("cli"):
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
    from invariant.cli.errors import OperatorGroup
    from invariant.cli.target import APP_OPTION
from invariant.telemetry import configure_logging, configure_tracing

app = typer.Typer(
    name="invariant", no_args_is_help=True,
    help="Operate invariant applications: name one with --app or INVARIANT_APP (e.g. "
    "INVARIANT_APP=shop.operations:app for make run's shop).",
    pretty_exceptions_enable=False, cls=OperatorGroup,
)


@app.callback()
def main(
    application: Annotated[str | None, typer.Option(
        APP_OPTION, help="package.module:attribute of the application to operate, e.g. "
        "shop.operations:app (default: INVARIANT_APP)")] = None,
) -> None:
    """The options every command shares (read by :func:`invariant.cli.target.current_target`).
    Logs and traces as ``INVARIANT_LOG_FORMAT`` and the ``OTEL_*`` variables say, so the
    relay, consumers and job workers run as their own processes continue the traces."""
    configure_logging(os.environ)
    configure_tracing(os.environ)


app.add_typer(contracts.app, name="contracts")
app.add_typer(projections.app, name="projections")
app.add_typer(deadletters.app, name="deadletters")
app.add_typer(schemas.app, name="schemas")
app.add_typer(relay.app, name="relay")
app.add_typer(processes.app, name="processes")
app.add_typer(consumers.app, name="consumers")
app.add_typer(jobs.app, name="jobs")

__all__ = ["app"]
