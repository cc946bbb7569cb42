"""Read-your-writes across the CQRS gap: wait until a read model has applied a position.

A command's result carries the position of its last event (``CommandResult.position``);
waiting for the projection to reach it before querying shows the caller its own write.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import Connection

from invariant.domain.errors import ProjectionFailedError, ProjectionLagError
from invariant.projections import checkpoints
from invariant.sql.database import ReadModelDatabase
from invariant.store.signal import CommitSignal
from invariant.tasks import wait_briefly


async def wait_until(
    database: ReadModelDatabase,
    name: str,
    position: int,
    timeout: float,  # noqa: ASYNC109 (the error names the positions, a bare timeout would not)
    *,
    version: int | None = None,
    progress: CommitSignal | None = None,
) -> int:
    """Return the checkpoint of ``name`` (its active version unless ``version`` is given) once
    it is at least ``position``.

    Raises :class:`ProjectionLagError` after ``timeout`` seconds, and
    :class:`ProjectionFailedError` at once if the projection is stopped before ``position``.
    ``progress`` (a runner's in-process signal) wakes the wait as soon as a page commits;
    without it, or for a runner in another process, the checkpoint is re-read at growing
    intervals up to half a second.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pause = 0.005

    def target(conn: Connection) -> checkpoints.Checkpoint:
        v = checkpoints.active_version(conn, name) if version is None else version
        row = checkpoints.read(conn, name, v)
        if row is None:
            raise ProjectionFailedError(name, None, f"version {v} is not registered")
        return row

    while True:
        woken = progress.listen() if progress is not None else None
        try:
            row = await database.run(target, write=False)
            if row.position >= position:
                return row.position
            if row.state == checkpoints.FAILED:
                raise ProjectionFailedError(name, row.error_position, row.error or "failed")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ProjectionLagError(name, row.position, position, timeout)
            delay = min(remaining, pause)
            if woken is None:
                await asyncio.sleep(delay)
            else:
                await wait_briefly(woken, delay)
            pause = min(pause * 2, 0.5)
        finally:
            if woken is not None and progress is not None:
                progress.forget(woken)
