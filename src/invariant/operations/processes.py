"""Operating sagas and process managers: a process as an operator reads it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from invariant.domain.errors import NotFoundError
from invariant.processes import ProcessRecord
from invariant.processes import persistence as process_state


def process_details(conn: Connection, process_id: str) -> dict[str, Any]:
    """A process's row, state, deadlines and undispatched commands, as plain data;
    :class:`NotFoundError` when there is no such process."""
    record = process_state.read(conn, process_id)
    if record is None:
        raise NotFoundError(f"no process {process_id!r}; `invariant processes list` "
                            "shows them all")
    return _details(record, process_state.pending(conn, process_id=process_id))


def _details(record: ProcessRecord, commands: list[process_state.PendingCommand]
             ) -> dict[str, Any]:
    return {
        "id": record.id, "kind": record.kind, "correlation": record.correlation,
        "status": record.status, "step": record.step, "version": record.version,
        "error": record.error,
        "deadlines": {k: v.isoformat() for k, v in sorted(record.deadlines.items())},
        "updated_at": None if record.updated_at is None else record.updated_at.isoformat(),
        "state": record.state,
        "pending_commands": [{"command_id": c.command_id, "type": c.command_type,
                              "payload": c.payload} for c in commands],
    }


def status_counts(conn: Connection) -> dict[str, int]:
    """How many processes are in each status."""
    t = process_state.processes
    rows = conn.execute(select(t.c.status, func.count()).group_by(t.c.status))
    return {str(status): int(count) for status, count in rows}
