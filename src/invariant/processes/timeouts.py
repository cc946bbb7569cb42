"""Durable deadlines: stored with the process's state, fired by whoever finds them due.

A deadline is a field of the process's row (``deadline`` holds the earliest, so due ones
are found by an index scan after any restart). Firing one is a transaction that re-reads
(on PostgreSQL, locks) the row, removes the deadline, lets the manager react and writes
the row at the version it read: an awaited event handled first has cancelled the deadline
or moved the state, and the timeout then changes nothing. One outcome, never two.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from sqlalchemy import Connection

from invariant.processes import persistence
from invariant.processes.dispatch import CommandCodec, store_sent
from invariant.processes.manager import ProcessManager, decide_timeouts
from invariant.sql.database import ReadModelDatabase


def fire(conn: Connection, managers: Mapping[str, ProcessManager], codec: CommandCodec,
         process_id: str, now: datetime) -> bool:
    """Fire the due deadlines of one process in the caller's transaction."""
    record = persistence.read(conn, process_id, lock=True)
    if record is None or record.kind not in managers:
        return False
    process = decide_timeouts(managers[record.kind], record, now)
    if process is None:
        return False
    persistence.write(conn, record, now)
    store_sent(conn, codec, record.id, process.sent, now)
    return True


async def fire_due(database: ReadModelDatabase, managers: Mapping[str, ProcessManager],
                   codec: CommandCodec, now: datetime) -> int:
    """Fire every deadline due at ``now``; returns the number of processes that reacted."""
    fired = 0
    while True:
        ids = await database.run(lambda c: persistence.due(c, now, list(managers)), write=False)
        progressed = 0
        for process_id in ids:
            if await database.run(_firing(managers, codec, process_id, now)):
                progressed += 1
        fired += progressed
        if progressed == 0:
            return fired


def _firing(managers: Mapping[str, ProcessManager], codec: CommandCodec, process_id: str,
            now: datetime) -> Callable[[Connection], bool]:
    return lambda conn: fire(conn, managers, codec, process_id, now)
