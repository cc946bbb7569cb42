"""One command, one transaction: events, snapshots and outbox rows are committed together."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

from invariant.application.repository import (
    A,
    AggregateCache,
    Loaded,
    Repository,
    SnapshotPolicy,
)
from invariant.domain.aggregate import AggregateRoot
from invariant.domain.errors import (
    AggregateNotFoundError,
    ConcurrencyError,
    ConfigurationError,
    InvariantError,
)
from invariant.store.event_store import EventStore
from invariant.store.records import (
    AppendRequest,
    CommandRecord,
    Commit,
    CommitResult,
    OutboxMessage,
    SnapshotRecord,
    StreamState,
)
from invariant.telemetry import commits as telemetry

T = TypeVar("T")


class Aggregates:
    """The aggregate types an application stores, each with its repository settings."""

    def __init__(
        self,
        store: EventStore,
        snapshots: Mapping[type[AggregateRoot[Any]], int] | None = None,
        *,
        cache_size: int = 10_000,
    ) -> None:
        self.store = store
        self.cache = AggregateCache(cache_size)
        self.claims = Claims()
        self._snapshots = {cls: SnapshotPolicy(every) for cls, every in (snapshots or {}).items()}
        _one_snapshot_type_per_category(self._snapshots)
        self._repos: dict[type[AggregateRoot[Any]], Repository[Any]] = {}

    def repository(self, aggregate_type: type[A]) -> Repository[A]:
        repo = self._repos.get(aggregate_type)
        if repo is None:
            repo = Repository(
                self.store, aggregate_type, snapshots=self._snapshots.get(aggregate_type),
                cache=self.cache if self.cache.size else None,
            )
            self._repos[aggregate_type] = repo
        return repo

    def unit_of_work(self, metadata: Mapping[str, Any] | None = None) -> UnitOfWork:
        return UnitOfWork(self, metadata=metadata)

    async def run(
        self,
        command: Callable[[UnitOfWork], Awaitable[T]],
        *,
        retries: int = 0,
        metadata: Mapping[str, Any] | None = None,
    ) -> Outcome[T]:
        """Run ``command`` in a fresh unit of work and commit it.

        On a :class:`ConcurrencyError` the command is re-run from a fresh load, at most
        ``retries`` more times, with a short jittered pause between attempts.
        """
        if retries < 0:
            raise ConfigurationError("retries must be >= 0")
        attempt = 0
        while True:
            try:
                value, result = await fresh_attempt(
                    lambda: self.unit_of_work(metadata), lambda uow: _run_and_commit(command, uow)
                )
                return Outcome(value, result, attempt)
            except ConcurrencyError:
                if attempt >= retries:
                    raise
                attempt += 1
                await asyncio.sleep(random.uniform(0, 0.002 * attempt))


def _one_snapshot_type_per_category(types: Iterable[type[AggregateRoot[Any]]]) -> None:
    # A stream has one snapshot row, named by the category: two types snapshotting the same
    # streams would overwrite each other's and could read the other's as their own.
    seen: dict[str, type[AggregateRoot[Any]]] = {}
    for cls in types:
        other = seen.setdefault(cls.category, cls)
        if other is not cls:
            raise ConfigurationError(
                f"{other.__name__} and {cls.__name__} both take snapshots of the "
                f"{cls.category!r} streams; snapshots are named by the category, so only one "
                "aggregate type per category may take them"
            )


async def _run_and_commit(command: Callable[[UnitOfWork], Awaitable[T]], uow: UnitOfWork
                          ) -> tuple[T, CommitResult]:
    value = await command(uow)
    return value, await uow.commit()


async def fresh_attempt(make_uow: Callable[[], UnitOfWork],
                        body: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """Run ``body`` in a new unit of work; if it failed while using cached aggregates, run
    it once more from a fresh load (the failed attempt took them out of the cache).

    Cached aggregates are not re-read before a command: another process may have written
    their streams since. The append's expected version refuses a stale one at commit; a
    command that decided on one and failed before it (a business rule refusing what the
    stale state showed: an order still empty, a balance too low) did not fail on the
    stream's current state. Either way this second attempt, on the stored state, decides
    what the caller sees.
    """
    uow = make_uow()
    try:
        return await _claiming(uow, body)
    except Exception:
        if not uow.served_from_cache:
            raise
    return await _claiming(make_uow(), body)


async def _claiming(uow: UnitOfWork, body: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """Run ``body`` with ``uow`` claiming the streams it loads (see :class:`Claims`)."""
    claims = uow._aggregates.claims
    claim = uow._claim = claims.open()
    running = _RUNNING.set(claim)
    try:
        return await body(uow)
    finally:
        _RUNNING.reset(running)
        claims.close(claim)


WAIT_AT_MOST = 1.0
"""Seconds a command waits for an older one to finish with a stream before it loads the
stream anyway (as if nothing held it): a bound for a command that waits, itself, for the
one behind it."""


class _Claim:
    """The streams one running command loaded, when it started, and the command it runs
    inside of, if any."""

    __slots__ = ("ended", "order", "outer", "streams")

    def __init__(self, order: int, outer: _Claim | None) -> None:
        self.order = order
        self.outer = outer
        self.streams: list[str] = []
        self.ended: asyncio.Event | None = None

    def inside(self, other: _Claim) -> bool:
        """Whether this command runs inside ``other`` (which waits for it)."""
        outer = self.outer
        while outer is not None:
            if outer is other:
                return True
            outer = outer.outer
        return False


_RUNNING: ContextVar[_Claim | None] = ContextVar("invariant_running_command", default=None)
"""The claim of the command whose handler is running (the commands it runs are inside it)."""


class Claims:
    """The streams that the commands running in this process have loaded.

    A command that loads a stream an older command (one that started before it) still
    holds waits until that one has committed or failed, then loads it: from the aggregate
    cache, where the older one's commit left it. Without this, commands of one process on
    the same aggregate (a product's stock, reserved by many orders at once) race: the later
    ones miss the cache (the first took it), replay the stream, and all but one lose at
    commit and run again. Optimistic concurrency is unchanged: commands of other processes
    still race, and the expected version refuses the losers.

    Only an older holder is waited for, so no two commands wait for each other; a command
    never waits for one it runs inside of (dispatched by its handler, also from a task the
    handler started), nor longer than :data:`WAIT_AT_MOST`. A command held up by a younger
    one loads the stream as before.
    """

    def __init__(self) -> None:
        self._holders: dict[str, _Claim] = {}
        self._opened = 0

    def open(self) -> _Claim:
        self._opened += 1
        return _Claim(self._opened, _RUNNING.get())

    async def take(self, claim: _Claim, stream: str) -> None:
        """Hold ``stream`` for ``claim``'s command, first waiting for an older holder."""
        holders = self._holders
        while True:
            holder = holders.get(stream)
            if holder is None:
                holders[stream] = claim
                claim.streams.append(stream)
                return
            if holder is claim or holder.order > claim.order or claim.inside(holder):
                return
            if holder.ended is None:
                holder.ended = asyncio.Event()
            try:
                async with asyncio.timeout(WAIT_AT_MOST):
                    await holder.ended.wait()
            except TimeoutError:
                return

    def close(self, claim: _Claim) -> None:
        """The command of ``claim`` has ended: its streams are free."""
        holders = self._holders
        for stream in claim.streams:
            if holders.get(stream) is claim:
                del holders[stream]
        if claim.ended is not None:
            claim.ended.set()

    def __len__(self) -> int:
        """How many streams are held now."""
        return len(self._holders)


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """What a command returned, and what its commit wrote (for read-your-writes)."""

    value: T
    result: CommitResult
    retries: int

    @property
    def position(self) -> int:
        return self.result.position


@dataclass(slots=True)
class _Tracked:
    stream: str
    aggregate: AggregateRoot[Any]
    repository: Repository[Any]
    snapshot_version: int
    new: bool
    from_cache: bool = False
    """Taken from the aggregate cache unverified (see :meth:`UnitOfWork.commit`)."""


class UnitOfWork:
    """Tracks the aggregates a command touches and commits all their changes at once.

    Nothing is written until :meth:`commit`; leaving an ``async with`` block without
    committing discards the changes.
    """

    def __init__(self, aggregates: Aggregates, *, metadata: Mapping[str, Any] | None = None
                 ) -> None:
        self._aggregates = aggregates
        self._store = aggregates.store
        self.metadata: dict[str, Any] = dict(metadata) if metadata else {}
        self._tracked: dict[str, _Tracked] = {}
        self._messages: list[OutboxMessage] = []
        self._committed = False
        self._claim: _Claim | None = None
        self.served_from_cache = False
        """True when an aggregate came from the cache unverified: a conflict on commit may
        only mean the cache was stale, and one fresh attempt is owed (see ``fresh_attempt``)."""

    async def get(self, aggregate_type: type[A], aggregate_id: Any) -> A:
        """Load (once per unit of work) and track an aggregate; raises if it does not exist."""
        found = await self.find(aggregate_type, aggregate_id)
        if found is None:
            raise AggregateNotFoundError(aggregate_type.__name__, str(aggregate_id))
        return found

    async def find(self, aggregate_type: type[A], aggregate_id: Any) -> A | None:
        repo = self._aggregates.repository(aggregate_type)
        stream = repo.stream_id(aggregate_id)
        tracked = self._tracked.get(stream)
        if tracked is not None:
            return tracked.aggregate  # type: ignore[return-value]
        if self._claim is not None:
            await self._aggregates.claims.take(self._claim, stream)
            tracked = self._tracked.get(stream)  # loaded meanwhile, by the same command
            if tracked is not None:
                return tracked.aggregate  # type: ignore[return-value]
        loaded = await repo.load_tracked(aggregate_id, trust_cache=True)
        if loaded is None:
            return None
        if loaded.from_cache:
            self.served_from_cache = True
        self._tracked[stream] = _Tracked(stream, loaded.aggregate, repo, loaded.snapshot_version,
                                         False, loaded.from_cache)
        return loaded.aggregate

    async def find_or_add(self, aggregate_type: type[A], aggregate_id: Any) -> A:
        """The aggregate if it exists, else a new one (``aggregate_type(aggregate_id)``),
        tracked either way: for aggregates that begin with their first command (a stock
        item, a payment per order). Two units of work that both create it conflict at
        commit (the second's stream exists), so a retry sees the first one's."""
        found = await self.find(aggregate_type, aggregate_id)
        if found is None:
            found = aggregate_type(aggregate_id)
            self.add(found)
        return found

    def add(self, aggregate: AggregateRoot[Any]) -> None:
        """Track a new aggregate; committing fails if its stream already exists."""
        repo = self._aggregates.repository(type(aggregate))
        stream = aggregate.stream_id()
        if stream in self._tracked and self._tracked[stream].aggregate is not aggregate:
            raise ConfigurationError(f"another instance of {stream} is already tracked")
        self._tracked[stream] = _Tracked(stream, aggregate, repo, 0,
                                         aggregate.persisted_version == 0)

    def emit(self, message: OutboxMessage) -> None:
        """Put a message (e.g. an integration event) in the outbox with this commit."""
        self._messages.append(message)

    async def commit(self, *, command: CommandRecord | None = None) -> CommitResult:
        """Write every change in one transaction (with ``command``'s record, if given)."""
        if self._committed:
            raise InvariantError("this unit of work was committed already; start a new one")
        await self._check_unchanged_from_cache()
        appends: list[AppendRequest] = []
        snapshots: list[SnapshotRecord] = []
        changed: list[_Tracked] = []
        for stream, t in self._tracked.items():
            pending = t.aggregate._pending
            if not pending:
                continue
            expected = StreamState.NO_STREAM if t.new else t.aggregate.persisted_version
            appends.append(
                AppendRequest(stream, expected, self._store.new_events(pending, self.metadata))
            )
            snap = t.repository.snapshot_for(t.aggregate, t.snapshot_version)
            if snap is not None:
                snapshots.append(snap)
                t.snapshot_version = snap.version
            changed.append(t)
        if not appends and not self._messages and command is None:
            self._committed = True
            self._keep()
            return CommitResult(())
        result = await telemetry.commit(
            self._store.storage, Commit(appends=appends, snapshots=snapshots,
                                        messages=tuple(self._messages), command=command))
        self._committed = True
        for t in changed:
            t.aggregate.mark_saved()
            t.new = False
        self._keep()
        return result

    async def _check_unchanged_from_cache(self) -> None:
        """:class:`ConcurrencyError` if an aggregate this command took from the cache and
        left unchanged is behind its stream.

        Another process may have written the stream since it was cached, and the command
        decided on what the cached state showed: to do nothing (a release with no
        reservation to release yet), or to change another aggregate. A changed aggregate is
        checked by its append's expected version; an unchanged one only here. The error
        makes :func:`fresh_attempt` run the command again on the stored state."""
        for t in self._tracked.values():
            if t.from_cache and not t.aggregate._pending:
                actual = await self._store.storage.stream_version(t.stream)
                if actual != t.aggregate.version:
                    raise ConcurrencyError(t.stream, t.aggregate.version, actual)

    def _keep(self) -> None:
        """After a successful commit, put every aggregate it loaded or saved back in the
        cache (those it loaded unchanged too: the next command on them needs no replay)."""
        for t in self._tracked.values():
            cache = t.repository.cache
            if cache is not None and not t.new and not t.aggregate._pending:
                cache.put(t.stream, Loaded(t.aggregate, t.snapshot_version))

    @property
    def tracked(self) -> Iterable[AggregateRoot[Any]]:
        return [t.aggregate for t in self._tracked.values()]

    async def __aenter__(self) -> UnitOfWork:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._tracked.clear()
        self._messages.clear()
