"""Following the log live: each projection in a task of its own, run only while this worker
holds its lease; a standby takes over when the holder dies. Waits for commits when idle,
and reads its checkpoint again only after an idle wait: the lease holder is the only one to
move it, and a page claimed from a checkpoint that a rebuild or a pause changed meanwhile is
refused (see :mod:`invariant.projections.catch_up`).
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import SQLAlchemyError

from invariant.domain.errors import ProjectionFailedError, StoreError
from invariant.projections import checkpoints
from invariant.projections.catch_up import CatchingUp, Paused, Track

_log = logging.getLogger("invariant.projections")


class FollowingLive(CatchingUp):
    """The live side of :class:`~invariant.projections.ProjectionRunner`."""

    async def run(self, name: str | None = None) -> None:
        """Follow the log forever (until cancelled): each projection in its own task, run
        only while this worker holds its lease; waits for commits when idle."""
        tracks = [t for t in self._tracks.values()
                  if name is None or t.projection.name == name]
        async with asyncio.TaskGroup() as group:
            for track in tracks:
                group.create_task(self._follow(track), name=f"projection {track.projection.key}")

    async def _follow(self, track: Track) -> None:
        attempt = 0
        while True:
            try:
                await self._follow_with_lease(track)
                attempt = 0
            except (StoreError, OSError, SQLAlchemyError) as exc:
                # The database or the store is unreachable: not the projection's fault, and
                # no event is skipped by waiting. Retry for as long as it takes, loudly.
                attempt += 1
                delay = self.retry.delay(attempt)
                _log.error("projection %s: %s; retrying in %.1f s", track.projection.key, exc,
                           delay, exc_info=exc)
                await asyncio.sleep(delay)

    async def _follow_with_lease(self, track: Track) -> None:
        lease = await self.database.try_lease(track.projection.key)
        if lease is None:
            await asyncio.sleep(self.lease_retry)  # a standby: take over when it is free
            return
        loop = asyncio.get_running_loop()
        load = True
        try:
            while lease.held():
                try:
                    await self._catch_up(track, lease, None, load=load)
                except (ProjectionFailedError, Paused):
                    await self._wait_resumed(track)
                    load = True
                    continue
                idle_since = loop.time()
                await self.store.storage.wait_for_commit(track.position, self.idle_recheck)
                # Woken by a commit, the checkpoint is where this worker, which holds the
                # lease, left it: read it again only after an idle wait. A rebuild or a
                # pause from elsewhere is found then, or by the next page's claim.
                load = loop.time() - idle_since >= self.idle_recheck
        finally:
            await lease.release()

    async def _wait_resumed(self, track: Track) -> None:
        """A failed or paused projection sleeps until someone resumes or rebuilds it."""
        p = track.projection
        while True:
            row = await self.database.run(lambda c: checkpoints.read(c, p.name, p.version),
                                          write=False)
            if row is None or row.state not in checkpoints.STOPPED:
                return
            await asyncio.sleep(self.idle_recheck / 10)
