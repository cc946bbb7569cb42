"""The one place where the ``invariant`` command turns an error into what an operator reads:
one line on stderr, ``error: <what was wrong and what to do>``, and exit status 2.

invariant's own errors (:class:`~invariant.domain.errors.InvariantError`: the settings, a
missing database, an unknown name) already say what to do. A server or file that fails
after the command checked it (the database going away mid-command, a broker refusing the
connection) is said in one line too. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sqlite3
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from invariant.domain.errors import InvariantError

EXIT_ERROR = 2
"""The exit status of a command that could not do what was asked."""


class OperatorGroup(TyperGroup):
    """The root command group: every subcommand runs inside its error handling."""

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored) click.Context
        try:
            return super().invoke(ctx)
        except Exception as exc:
            line = one_line(exc)
            if line is None:
                raise
            typer.echo(f"error: {line}", err=True)
            raise typer.Exit(EXIT_ERROR) from None


def one_line(exc: BaseException) -> str | None:
    """What to print for ``exc`` (one line), or None when it is a bug to show in full."""
    text = _message(exc)
    return None if text is None else " ".join(text.split())


def _message(exc: BaseException) -> str | None:
    if isinstance(exc, InvariantError):
        return str(exc)
    database = _database_error(exc)
    if database is not None:
        return (f"the database failed: {database}; check that it is reachable and that "
                "the settings point at the application's database, then run the command "
                "again")
    if isinstance(exc, OSError):
        return (f"{type(exc).__name__}: {exc}; a server or file the command needs is not "
                "available: check the settings (INVARIANT_*) and that the server runs")
    return None


def _database_error(exc: BaseException) -> str | None:
    """The driver's message when ``exc`` comes from a database driver."""
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, DBAPIError):
        return _first_line(exc.orig if exc.orig is not None else exc)
    if isinstance(exc, sqlite3.Error):
        return _first_line(exc)
    asyncpg = sys.modules.get("asyncpg")  # not loaded: the error cannot be one of its own
    if asyncpg is not None and isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
        return f"{type(exc).__name__}: {exc}"
    return None


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
