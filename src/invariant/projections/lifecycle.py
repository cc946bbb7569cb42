"""A projection's life after it is set up: paused, resumed after a failure or a pause,
rebuilt, switched to a new version side by side, the old version retired.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import Connection

from invariant.domain.errors import ConfigurationError, ProjectionError, ProjectionFailedError
from invariant.projections import checkpoints
from invariant.projections.catch_up import CatchingUp, Paused, Progress, Track
from invariant.sql.database import ReadModelDatabase


class Lifecycle(CatchingUp):
    """Resuming, rebuilding, switching and retiring: the operating side of
    :class:`~invariant.projections.ProjectionRunner`."""

    def _track(self, name: str, version: int) -> Track:
        track = self._tracks.get(f"{name}@v{version}")
        if track is None:
            raise ConfigurationError(
                f"no projection {name!r} version {version} in this runner; known: "
                + ", ".join(sorted(self._tracks))
            )
        return track

    async def _select(self, name: str, version: int | None) -> Track:
        if version is None:
            active = await self.database.run(
                lambda c: checkpoints.active_version(c, name), write=False
            )
            return self._track(name, active)
        return self._track(name, version)

    async def pause(self, name: str, *, version: int | None = None) -> bool:
        """Stop every worker from applying events to the projection (a failed one stays
        failed) until :meth:`resume`; whether it was running or rebuilding and is paused now."""
        track = await self._select(name, version)
        p, now = track.projection, self.clock()

        def stop(conn: Connection) -> bool:
            row = checkpoints.read(conn, p.name, p.version, lock=True)
            if row is None or row.state in checkpoints.STOPPED:
                return False
            checkpoints.change(conn, p.name, p.version, now, state=checkpoints.PAUSED)
            return True

        return await self.database.run(stop)

    async def resume(self, name: str, *, version: int | None = None) -> None:
        """Clear a failure or a pause: the projection retries the event it stopped at, or
        goes on from where it was paused."""
        track = await self._select(name, version)
        p, now = track.projection, self.clock()

        def clear(conn: Connection) -> None:
            row = checkpoints.read(conn, p.name, p.version, lock=True)
            if row is not None and row.state in checkpoints.STOPPED:
                checkpoints.change(conn, p.name, p.version, now, state=checkpoints.RUNNING,
                                   error=None, error_position=None, attempts=0)

        await self.database.run(clear)
        self.progress.notify()

    async def rebuild(self, name: str, *, from_position: int = 0, version: int | None = None,
                      progress: Progress | None = None) -> int:
        """Rebuild a projection (its active version unless ``version`` is given): in one
        transaction, remove the effects of events after ``from_position`` and put the
        checkpoint there; then catch up, reporting ``progress``. If another worker holds
        the projection's lease, that worker does the catching up and this call follows it.
        Returns the checkpoint reached."""
        track = await self._select(name, version)
        p, now = track.projection, self.clock()

        def reset(conn: Connection) -> None:
            if checkpoints.read(conn, p.name, p.version, lock=True) is None:
                raise ConfigurationError(f"projection {p.key} is not set up")
            p.reset(conn, from_position)
            checkpoints.change(conn, p.name, p.version, now, position=from_position,
                               state=checkpoints.REBUILDING, error=None, error_position=None,
                               attempts=0)

        await self.database.run(reset)
        self.progress.notify()
        lease = await self.database.try_lease(p.key)
        if lease is None:
            return await self._watch(track, progress)
        try:
            await self._catch_up(track, lease, progress)
        except Paused:
            pass  # paused while rebuilding: it goes on from here when resumed
        finally:
            await lease.release()
        return track.position

    async def _watch(self, track: Track, progress: Progress | None) -> int:
        p = track.projection
        while True:
            row = await self.database.run(lambda c: checkpoints.read(c, p.name, p.version),
                                          write=False)
            assert row is not None
            head = await self.store.storage.head_position()
            if progress is not None:
                progress(row.position, max(head, row.position))
            if row.state == checkpoints.FAILED:
                raise ProjectionFailedError(p.key, row.error_position, row.error or "failed")
            if row.state in (checkpoints.RUNNING, checkpoints.PAUSED):
                return row.position
            await asyncio.sleep(0.2)

    async def switch(self, name: str, version: int) -> None:
        """Make ``version`` the one queries read, atomically; it must have caught up with
        the version serving now and not be failed."""
        now = self.clock()

        def flip(conn: Connection) -> None:
            target = checkpoints.read(conn, name, version, lock=True)
            if target is None:
                raise ConfigurationError(f"projection {name!r} has no version {version}")
            current = checkpoints.read(conn, name, checkpoints.active_version(conn, name),
                                       lock=True)
            assert current is not None
            if target.state == checkpoints.FAILED:
                raise ProjectionFailedError(f"{name}@v{version}", target.error_position,
                                            target.error or "failed")
            if target.position < current.position:
                raise ProjectionError(
                    f"{name} version {version} is at position {target.position}, behind "
                    f"version {current.version} at {current.position}; let it catch up "
                    "before switching"
                )
            checkpoints.activate(conn, name, version, now)

        await self.database.run(flip)

    async def retire(self, name: str, version: int) -> None:
        """Drop an inactive version's tables and checkpoint (after a switch)."""
        track = self._track(name, version)
        p = track.projection

        def drop(conn: Connection) -> None:
            row = checkpoints.read(conn, name, version, lock=True)
            if row is not None and row.active:
                raise ConfigurationError(
                    f"{p.key} is the active version; switch to another one before retiring it"
                )
            p.metadata.drop_all(conn)
            checkpoints.forget(conn, name, version)

        await self.database.run(drop)


async def active_version(database: ReadModelDatabase, name: str) -> int:
    """The version of projection ``name`` that queries should read."""
    return await database.run(lambda c: checkpoints.active_version(c, name), write=False)
