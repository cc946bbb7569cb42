"""What operators see of each projection: where it is, how far behind, and why it stopped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from invariant.clock import Clock
from invariant.projections import checkpoints
from invariant.sql.database import ReadModelDatabase
from invariant.store.port import EventStorage


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    """One projection version.

    ``lag_events`` counts the events of the log after the checkpoint (handled or not);
    ``lag_seconds`` is how long the oldest of them has been waiting (0 when caught up).
    ``state`` is ``running``, ``paused`` (by an operator), ``rebuilding`` (from scratch, or a
    new version built beside the active one) or ``failed`` (``error`` and ``error_position``
    say where and why).
    """

    name: str
    version: int
    active: bool
    state: str
    checkpoint: int
    head: int
    lag_events: int
    lag_seconds: float
    error: str | None
    error_position: int | None
    attempts: int
    updated_at: datetime


async def read_status(
    database: ReadModelDatabase, storage: EventStorage, clock: Clock
) -> list[ProjectionStatus]:
    """The status of every registered projection version."""
    rows = await database.run(checkpoints.read_all, write=False)
    head = await storage.head_position()
    now = clock()
    out: list[ProjectionStatus] = []
    for row in rows:
        lag = max(0, head - row.position)
        seconds = 0.0
        if lag:
            oldest = await storage.read_all(after_position=row.position, limit=1)
            if oldest:
                seconds = max(0.0, (now - oldest[0].recorded_at).total_seconds())
        out.append(ProjectionStatus(
            row.name, row.version, row.active, row.state, row.position, head, lag, seconds,
            row.error, row.error_position, row.attempts, row.updated_at,
        ))
    return out
