"""``invariant processes``: list, show and resume sagas and process managers.

Settings come from ``INVARIANT_*`` environment variables (see :mod:`invariant.config`):
the processes' table lives in the event store's database (``INVARIANT_STORE``,
``INVARIANT_SQLITE_PATH`` or ``INVARIANT_POSTGRES_DSN`` and ``INVARIANT_POSTGRES_SCHEMA``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection

from invariant.bootstrap import open_read_models
from invariant.cli.running import guarded
from invariant.clock import utc_now
from invariant.config import Settings
from invariant.domain.errors import NotFoundError
from invariant.processes import STATUSES, ProcessRecord, resume_parked, setup_tables
from invariant.processes import persistence as process_state

T = TypeVar("T")
app = typer.Typer(
    help="Inspect and resume sagas and process managers (configured by INVARIANT_* variables).",
    no_args_is_help=True,
)


def _with_database(work: Callable[[Connection], T], *, write: bool = False) -> T:
    """Run ``work`` in one transaction of the configured database. An invariant error is
    printed as one line and exits with status 2."""

    async def main() -> T:
        database = open_read_models(Settings.from_env())
        try:
            await setup_tables(database)
            return await database.run(work, write=write)
        finally:
            await database.close()

    return guarded(main)


@app.command("list")
def list_(
    status: Annotated[str | None, typer.Option(
        help=f"only processes in this status ({', '.join(STATUSES)})")] = None,
    kind: Annotated[str | None, typer.Option(help="only sagas or managers of this kind")] = None,
) -> None:
    """Every process (oldest change first); exits 1 if one needs attention."""
    if status is not None and status not in STATUSES:
        typer.echo(f"error: --status must be one of {', '.join(STATUSES)}", err=True)
        raise typer.Exit(2)
    rows = _with_database(lambda c: process_state.listing(c, status=status, kind=kind,
                                                          limit=10_000))
    table = Table("id", "kind", "correlation", "status", "step", "version", "deadline",
                  "updated", "error")
    for r in rows:
        table.add_row(r.id, r.kind, r.correlation, r.status, str(r.step), str(r.version),
                      "" if r.deadline is None else r.deadline.isoformat(),
                      "" if r.updated_at is None else r.updated_at.isoformat(),
                      r.error or "")
    Console(width=200).print(table)
    if any(r.status == process_state.NEEDS_ATTENTION for r in rows):
        raise typer.Exit(1)


def _details(record: ProcessRecord, commands: list[process_state.PendingCommand]) -> str:
    return json.dumps({
        "id": record.id, "kind": record.kind, "correlation": record.correlation,
        "status": record.status, "step": record.step, "version": record.version,
        "error": record.error,
        "deadlines": {k: v.isoformat() for k, v in sorted(record.deadlines.items())},
        "updated_at": None if record.updated_at is None else record.updated_at.isoformat(),
        "state": record.state,
        "pending_commands": [{"command_id": c.command_id, "type": c.command_type,
                              "payload": c.payload} for c in commands],
    }, indent=2, sort_keys=False, default=str)


@app.command()
def show(process_id: Annotated[str, typer.Argument(help="the process's id")]) -> None:
    """A process's row, its state, deadlines and undispatched commands, as JSON."""

    def read(conn: Connection) -> str:
        record = process_state.read(conn, process_id)
        if record is None:
            raise NotFoundError(f"no process {process_id!r}; `invariant processes list` "
                                "shows them all")
        return _details(record, process_state.pending(conn, process_id=process_id))

    typer.echo(_with_database(read))


@app.command()
def resume(process_id: Annotated[str, typer.Argument(help="the process's id")]) -> None:
    """Put a needs-attention process back to work: a worker retries what it stopped at
    (a saga's compensation with a fresh budget, a manager's parked commands)."""
    record = _with_database(lambda c: resume_parked(c, process_id, utc_now()), write=True)
    typer.echo(f"{record.id} resumed: {record.status} (version {record.version})")

