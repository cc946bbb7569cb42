"""Runs projections: catch up from the checkpoint in pages
(:mod:`~invariant.projections.catch_up`), then follow the log live with leases
(:mod:`~invariant.projections.live`); resume, rebuild, switch and retire
(:mod:`~invariant.projections.lifecycle`).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from invariant.clock import Clock, utc_now
from invariant.domain.errors import ConfigurationError
from invariant.projections import checkpoints
from invariant.projections.cache import QueryCache
from invariant.projections.catch_up import Progress, Track
from invariant.projections.collector import CollectorPause
from invariant.projections.consistency import wait_until
from invariant.projections.lifecycle import Lifecycle, active_version
from invariant.projections.live import FollowingLive
from invariant.projections.projection import Projection
from invariant.projections.status import ProjectionStatus, read_status
from invariant.retry import RetryPolicy
from invariant.sql.database import ReadModelDatabase
from invariant.sql.locks import serialize
from invariant.store.event_store import EventStore
from invariant.store.port import LogReader
from invariant.store.signal import CommitSignal


class ProjectionRunner(FollowingLive, Lifecycle):
    """Keeps the read models of ``projections`` up to date with ``store``'s log.

    ``pause_gc=True`` holds the process's cyclic garbage collector off while catching up
    (see :mod:`invariant.projections.collector`): faster long catch-ups and rebuilds, for an
    application that accepts the pause.
    """

    def __init__(
        self,
        store: EventStore,
        database: ReadModelDatabase,
        projections: Sequence[Projection],
        *,
        page_size: int = 1000,
        retry: RetryPolicy | None = None,
        cache: QueryCache | None = None,
        idle_recheck: float = 30.0,
        lease_retry: float = 1.0,
        clock: Clock = utc_now,
        pause_gc: bool = False,
    ) -> None:
        keys = [p.key for p in projections]
        if len(set(keys)) != len(keys):
            raise ConfigurationError(f"projections registered twice: {sorted(keys)}")
        self.store = store
        self.database = database
        self.page_size = page_size
        self.retry = retry or RetryPolicy()
        self.cache = cache
        self.idle_recheck = idle_recheck
        self.lease_retry = lease_retry
        self.clock = clock
        self.progress = CommitSignal()
        self._collector = CollectorPause(enabled=pause_gc)
        self._log_reader = isinstance(store.storage, LogReader)
        # Events of a type an upcaster may rename into a handled one are read too, and kept
        # if they become a handled type once upcast.
        self._tracks = {
            p.key: Track(p, sorted(store.upcasters.sources_of(p.handled)))
            for p in projections
        }

    # -- setting up ------------------------------------------------------------------------

    async def setup(self) -> None:
        """Create the checkpoint table and every projection's tables; register versions."""
        now = self.clock()
        database = self.database
        tracks = list(self._tracks.values())

        def create(conn: Connection) -> None:
            serialize(conn, database, "setup")  # concurrent setups of several workers
            checkpoints.metadata.create_all(conn)
            for t in tracks:
                t.projection.metadata.create_all(conn)
                checkpoints.register(conn, t.projection.name, t.projection.version, now)

        await database.run(create)

    # -- operating -----------------------------------------------------------------------

    async def status(self) -> list[ProjectionStatus]:
        """Checkpoint, head, lag and state of every registered projection version."""
        return await read_status(self.database, self.store.storage, self.clock)

    async def wait_until(self, name: str, position: int, timeout: float,  # noqa: ASYNC109
                         *, version: int | None = None) -> int:
        """Wait until ``name`` has applied ``position`` (see :func:`consistency.wait_until`)."""
        return await wait_until(self.database, name, position, timeout, version=version,
                                progress=self.progress)


__all__ = ["Progress", "ProjectionRunner", "active_version"]
