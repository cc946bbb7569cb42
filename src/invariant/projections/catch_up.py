"""Catching up: a projection's pages applied from its checkpoint to the head, exactly once.

Each page is applied in one transaction that first moves the checkpoint row from where the
page starts to the page's end (one UPDATE, which locks the row until the transaction ends)
and applies nothing if the checkpoint was no longer there. A crash rolls back the whole
page; a second worker racing on the same page finds the checkpoint moved and applies
nothing.

Pages are read lean (no event ids, stream versions, metadata or recorded times) and one
page ahead; a handler that asks for a missing field rolls its page back and makes its
projection read every field from then on (see :class:`DetailsNotLoaded`).

Never skipping: a page that fails is retried as single events, each with exponential
backoff; an event that still fails stops the projection *before* it, with the error and
position in its status, until :meth:`ProjectionRunner.resume` or ``rebuild``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from invariant.clock import Clock
from invariant.domain.errors import ConfigurationError, ProjectionError, ProjectionFailedError
from invariant.projections import checkpoints
from invariant.projections.cache import QueryCache
from invariant.projections.collector import CollectorPause
from invariant.projections.projection import Projection
from invariant.retry import RetryPolicy
from invariant.sql.database import Lease, ReadModelDatabase
from invariant.store.batch import EventBatch, decode_log_page, decode_type_page
from invariant.store.event_store import DetailsNotLoaded, EventEnvelope, EventStore
from invariant.store.signal import CommitSignal
from invariant.tasks import stop_task
from invariant.telemetry.tracing import traced

Progress = Callable[[int, int], None]
"""Called with ``(checkpoint, head)`` after every page."""


class Paused(ProjectionError):
    """An operator paused the projection: its workers leave it alone until it is resumed."""


class _Moved(Exception):
    """The checkpoint is not where this page starts: another worker or a rebuild moved it."""

    def __init__(self, position: int) -> None:
        self.position = position


@dataclass(slots=True)
class Track:
    """One projection version as the runner follows it: where it stands and how it is read."""

    projection: Projection
    read_types: list[str]
    position: int = 0
    state: str = checkpoints.RUNNING
    applied: int = field(default=0)
    details: bool = False
    """Read with every envelope field: set once a handler asked for one (see below)."""
    filter: bool = field(init=False)
    """Whether read events may be of types the projection does not handle."""
    one_type: str | None = field(init=False)
    """The stored type, when the projection reads one only: its lean pages are read
    without the type column (``read_type_log``)."""

    def __post_init__(self) -> None:
        self.filter = not set(self.read_types) <= self.projection.handled
        self.one_type = self.read_types[0] if len(self.read_types) == 1 else None


# A page is the list of what the storage returned: lean rows ``(position, stream_id,
# event_type, schema_version, data)`` of ``read_log`` (without event_type, of
# ``read_type_log``, when the track reads one type), or RecordedEvents of ``read_all``
# (``lean`` says which). Lean envelopes lack event ids, stream versions, metadata and
# recorded times; a handler that asks for one gets DetailsNotLoaded and the page notes it
# (EventBatch.wanted, whether the handler lets the error through or not): the page is rolled
# back, and the projection's pages are read with every field from then on.


def _apply(projection: Projection, batch: EventBatch, conn: Connection) -> None:
    """Apply ``batch``; :class:`DetailsNotLoaded` when a handler asked one of its lean
    envelopes for a field it lacks, whatever the handler did with that error, so that the
    page is rolled back and read again with every field."""
    try:
        projection.apply_batch(batch, conn)
    except Exception as exc:
        if batch.wanted:
            raise DetailsNotLoaded(", ".join(batch.wanted)) from exc
        raise
    if batch.wanted:
        raise DetailsNotLoaded(", ".join(batch.wanted))


def _position_of(item: Any, lean: bool) -> int:
    return int(item[0] if lean else item.position)


@dataclass(slots=True)
class _Page:
    after: int
    items: Sequence[Any]
    lean: bool
    last: int
    """The position of the last item (0 if none)."""
    batch: EventBatch | None = None
    """Decoded when read; None if an event failed to decode (found when applied)."""


async def _discard(task: asyncio.Task[Any]) -> None:
    """Cancel a read-ahead that is no longer wanted; whatever it failed with does not matter
    (the page is read again)."""
    with contextlib.suppress(Exception):
        await stop_task(task)


class CatchingUp:
    """The catching-up side of :class:`~invariant.projections.ProjectionRunner`."""

    # Set up by :class:`~invariant.projections.ProjectionRunner`:
    store: EventStore
    database: ReadModelDatabase
    page_size: int
    retry: RetryPolicy
    cache: QueryCache | None
    idle_recheck: float
    lease_retry: float
    clock: Clock
    progress: CommitSignal
    """Notified after every page applied and every failure noted."""
    _log_reader: bool
    """Whether the storage reads lean pages (:class:`~invariant.store.port.LogReader`)."""
    _tracks: dict[str, Track]
    """Every registered projection version, by key."""
    _collector: CollectorPause
    """Held while catching up (enabled by ``pause_gc=True``)."""

    async def catch_up(self, name: str | None = None, *, progress: Progress | None = None
                       ) -> int:
        """Apply every event up to the current head to the projections (all, or the
        versions of ``name``) whose lease is free; returns the number of handled events.

        Raises :class:`ProjectionFailedError` when a projection stops at a failing event.
        """
        applied = 0
        for track in list(self._tracks.values()):
            if name is not None and track.projection.name != name:
                continue
            lease = await self.database.try_lease(track.projection.key)
            if lease is None:
                continue
            try:
                applied += await self._catch_up(track, lease, progress)
            except Paused:
                continue
            finally:
                await lease.release()
        return applied

    async def _load(self, track: Track) -> None:
        p = track.projection
        row = await self.database.run(lambda c: checkpoints.read(c, p.name, p.version),
                                      write=False)
        if row is None:
            raise ConfigurationError(f"projection {p.key} is not set up; call setup() first")
        if row.state == checkpoints.FAILED:
            raise ProjectionFailedError(p.key, row.error_position, row.error or "failed")
        if row.state == checkpoints.PAUSED:
            raise Paused(p.key)
        track.position, track.state = row.position, row.state

    async def _catch_up(self, track: Track, lease: Lease, progress: Progress | None, *,
                        load: bool = True) -> int:
        """Catch ``track`` up to the head; ``load=False`` trusts its position and state as
        this worker left them (a page claimed from a checkpoint that moved meanwhile, or
        that is paused or failed, is refused and says so: nothing is applied twice)."""
        if load:
            await self._load(track)
        before = track.applied
        # Read before any page: a short page holds every handled event up to this head, so
        # the checkpoint may move past the unhandled ones in between.
        head = await self.store.storage.head_position()
        ahead: asyncio.Task[_Page] | None = None
        with self._collector as collector:
            try:
                while lease.held():
                    collector.tick()
                    page = await self._next(track, ahead)
                    ahead = None
                    full = len(page.items) >= self.page_size
                    end = page.last if full else max(head, page.last)
                    if end <= track.position and (full or track.state != checkpoints.REBUILDING):
                        break
                    if full:
                        # Read (and decode) the next page while this one is being applied.
                        ahead = asyncio.create_task(self._read_page(track, end))
                    try:
                        await self._apply_page(track, page.items, page.lean,
                                               max(end, track.position), not full,
                                               page.batch)
                    except _Moved as moved:
                        track.position = moved.position
                        continue
                    except DetailsNotLoaded:
                        # The page was rolled back: read it again, with every field.
                        track.details = True
                        continue
                    if progress is not None:
                        progress(track.position, max(head, track.position))
                    if not full:
                        break
            finally:
                if ahead is not None:
                    await _discard(ahead)
        return track.applied - before

    def _lean(self, track: Track) -> bool:
        return self._log_reader and not track.details

    async def _next(self, track: Track, ahead: asyncio.Task[_Page] | None) -> _Page:
        """The page read ahead if it still fits (it starts at the checkpoint and is read the
        way the projection needs now), else a fresh read."""
        if ahead is not None:
            page = await ahead
            if page.after == track.position and page.lean == self._lean(track):
                return page
        return await self._read_page(track, track.position)

    async def _read_page(self, track: Track, after: int) -> _Page:
        storage = self.store.storage
        items: Sequence[Any]
        if self._lean(track):
            if track.one_type is not None:
                items = await storage.read_type_log(  # type: ignore[attr-defined]
                    track.one_type, after_position=after, limit=self.page_size)
            else:
                items = await storage.read_log(  # type: ignore[attr-defined]
                    after_position=after, limit=self.page_size, event_types=track.read_types)
            page = _Page(after, items, True, items[-1][0] if items else 0)
        else:
            items = await storage.read_all(after_position=after, limit=self.page_size,
                                           event_types=track.read_types)
            page = _Page(after, items, False, items[-1].position if items else 0)
        try:
            page.batch = self._batch(track, items, page.lean)
        except Exception:
            page.batch = None  # decoded (and failing) event by event when applied
        return page

    def _batch(self, track: Track, items: Sequence[Any], lean: bool) -> EventBatch:
        handled = track.projection.handled if track.filter else None
        if lean:
            if track.one_type is not None:
                return decode_type_page(self.store, track.one_type, items, handled)
            return decode_log_page(self.store, items, handled)
        envelopes = map(self.store.envelope, items)
        return EventBatch.of(envelopes if handled is None
                             else [e for e in envelopes if e.event_type in handled])

    async def _apply_page(self, track: Track, items: Sequence[Any], lean: bool, end: int,
                          caught_up: bool, batch: EventBatch | None = None
                          ) -> None:
        try:
            await traced("projection page", self._commit_page(
                track, items, lean, end, caught_up, batch), {
                "invariant.projection": track.projection.key, "invariant.page.events":
                len(items), "invariant.page.end": end})
        except (_Moved, Paused, ProjectionFailedError, DetailsNotLoaded):
            raise
        except Exception as exc:
            if len(items) <= 1:
                await self._retry(track, items, lean, end, caught_up, exc)
                return
            # Find the failing event: apply the page one event per transaction.
            for i, item in enumerate(items):
                last = i == len(items) - 1
                await self._apply_page(track, [item], lean,
                                       end if last else _position_of(item, lean),
                                       caught_up and last)

    async def _retry(self, track: Track, items: Sequence[Any], lean: bool, end: int,
                     caught_up: bool, error: Exception) -> None:
        p = track.projection
        at = _position_of(items[0], lean) if items else end
        attempt = 1
        while True:
            message = f"{type(error).__name__}: {error}"
            final = attempt >= self.retry.attempts
            await self._note_failure(track, at, message, attempt, final)
            if final:
                raise ProjectionFailedError(p.key, at, message) from error
            await asyncio.sleep(self.retry.delay(attempt))
            try:
                await self._commit_page(track, items, lean, end, caught_up)
                return
            except (_Moved, Paused, ProjectionFailedError, DetailsNotLoaded):
                raise
            except Exception as exc:
                error = exc
                attempt += 1

    async def _note_failure(self, track: Track, at: int, message: str, attempt: int,
                            final: bool) -> None:
        p, expected, now = track.projection, track.position, self.clock()

        def note(conn: Connection) -> None:
            row = checkpoints.read(conn, p.name, p.version, lock=True)
            if row is None or row.position != expected:
                raise _Moved(expected if row is None else row.position)
            values: dict[str, object] = {"error": message, "error_position": at,
                                         "attempts": attempt}
            if final:
                values["state"] = checkpoints.FAILED
            checkpoints.change(conn, p.name, p.version, now, **values)

        await self.database.run(note)
        if final:
            track.state = checkpoints.FAILED
            self.progress.notify()

    async def _commit_page(self, track: Track, items: Sequence[Any], lean: bool, end: int,
                           caught_up: bool, decoded: EventBatch | None = None
                           ) -> None:
        p, expected, now = track.projection, track.position, self.clock()
        envelopes = self._batch(track, items, lean) if decoded is None else decoded

        def work(conn: Connection) -> str:
            # The checkpoint moves first (and stays locked): if the handler fails, the
            # transaction rolls both back.
            state = checkpoints.claim(conn, p.name, p.version, now, expected, end,
                                      caught_up=caught_up)
            if state is None:
                row = checkpoints.read(conn, p.name, p.version)
                if row is None:
                    raise ConfigurationError(f"projection {p.key} is not set up")
                if row.state == checkpoints.FAILED:
                    raise ProjectionFailedError(p.key, row.error_position,
                                                row.error or "failed")
                if row.state == checkpoints.PAUSED:
                    raise Paused(p.key)
                raise _Moved(row.position)
            if envelopes:
                _apply(p, envelopes, conn)
            return state

        track.state = await self.database.run(work)
        track.position = end
        track.applied += len(envelopes)
        self.progress.notify()
        if self.cache is not None and envelopes:
            await self._invalidate(track, envelopes)

    async def _with_details(self, track: Track, envelopes: Sequence[EventEnvelope]
                            ) -> list[EventEnvelope]:
        """The same events as ``envelopes`` (lean ones), read again with every field."""
        wanted = {e.position for e in envelopes}
        last = envelopes[-1].position
        position = envelopes[0].position - 1
        out: list[EventEnvelope] = []
        while position < last:
            records = await self.store.storage.read_all(
                after_position=position, limit=self.page_size, event_types=track.read_types)
            if not records:
                break
            out.extend(self.store.envelope(r) for r in records if r.position in wanted)
            position = records[-1].position
        return out

    async def _invalidate(self, track: Track, envelopes: EventBatch) -> None:
        assert self.cache is not None
        p = track.projection
        tags: set[str] | None
        try:
            tags = {tag for e in envelopes for tag in p.cache_tags(e)}
        except DetailsNotLoaded:
            tags = None
        if tags is None or envelopes.wanted:  # the page's cache tags need every field
            track.details = True
            full = await self._with_details(track, envelopes)
            tags = {tag for e in full for tag in p.cache_tags(e)}
        if not tags:
            return
        attempt = 1
        while True:
            try:
                await self.cache.invalidate(tags)
                return
            except Exception as exc:
                if attempt >= self.retry.attempts:
                    # The read model is right; cached answers may be stale: stop and say so.
                    await self._note_failure(
                        track, track.position,
                        f"cache invalidation failed ({type(exc).__name__}: {exc}); the read "
                        "model is up to date, cached answers may be stale until their TTL",
                        attempt, final=True,
                    )
                    raise ProjectionFailedError(track.projection.key, track.position,
                                                str(exc)) from exc
                await asyncio.sleep(self.retry.delay(attempt))
                attempt += 1
