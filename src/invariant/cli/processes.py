"""``invariant processes``: list, show and resume sagas and process managers.

The processes' table lives in the application's database (the settings of ``--app`` or
``INVARIANT_APP``, else ``INVARIANT_STORE``, ``INVARIANT_SQLITE_PATH`` or
``INVARIANT_POSTGRES_DSN`` and ``INVARIANT_POSTGRES_SCHEMA``). ``list`` prints whole ids
(a table on a terminal, tab-separated lines otherwise), as ``show`` and ``resume`` take them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from sqlalchemy import Connection

from invariant.cli.output import print_table
from invariant.cli.target import Session, in_session
from invariant.clock import utc_now
from invariant.domain.errors import ConfigurationError
from invariant.operations.processes import process_details
from invariant.processes import STATUSES, ProcessRecord, resume_parked, setup_tables
from invariant.processes import persistence as process_state

T = TypeVar("T")
app = typer.Typer(help="Inspect and resume sagas and process managers.", no_args_is_help=True)
ProcessId = Annotated[str, typer.Argument(help="the process's whole id (see list)")]


def _with_database(ctx: typer.Context, work: Callable[[Connection], T], *,
                   write: bool = False) -> T:
    """Run ``work`` in one transaction of the application's database."""

    async def main(session: Session) -> T:
        await setup_tables(session.database)
        return await session.database.run(work, write=write)

    return in_session(ctx, main)


def _row(r: ProcessRecord) -> list[str]:
    return [r.id, r.kind, r.correlation, r.status, str(r.step), str(r.version),
            "" if r.deadline is None else r.deadline.isoformat(),
            "" if r.updated_at is None else r.updated_at.isoformat(), r.error or ""]


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(
        help=f"only processes in this status ({', '.join(STATUSES)})")] = None,
    kind: Annotated[str | None, typer.Option(help="only sagas or managers of this kind")] = None,
) -> None:
    """Every process (oldest change first); exits 1 if one needs attention."""
    if status is not None and status not in STATUSES:
        raise ConfigurationError(f"--status {status!r} must be one of {', '.join(STATUSES)}")
    rows = _with_database(ctx, lambda c: process_state.listing(c, status=status, kind=kind,
                                                          limit=10_000))
    print_table(("id", "kind", "correlation", "status", "step", "version", "deadline",
                 "updated", "error"), [_row(r) for r in rows])
    if any(r.status == process_state.NEEDS_ATTENTION for r in rows):
        raise typer.Exit(1)


@app.command()
def show(ctx: typer.Context, process_id: ProcessId) -> None:
    """A process's row, its state, deadlines and undispatched commands, as JSON."""

    details = _with_database(ctx, lambda conn: process_details(conn, process_id))
    typer.echo(json.dumps(details, indent=2, default=str))


@app.command()
def resume(ctx: typer.Context, process_id: ProcessId) -> None:
    """Put a needs-attention process back to work: a worker retries what it stopped at
    (a saga's compensation with a fresh budget, a manager's parked commands)."""
    record = _with_database(ctx, lambda c: resume_parked(c, process_id, utc_now()),
                            write=True)
    typer.echo(f"{record.id} resumed: {record.status} (version {record.version})")

