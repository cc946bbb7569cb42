"""Loading event-sourced aggregates: snapshot + tail, or as of a version or a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from invariant.domain.aggregate import AggregateRoot, stream_id_for
from invariant.domain.errors import AggregateNotFoundError, ConfigurationError, ValidationError
from invariant.store.event_store import EventStore
from invariant.store.port import SnapshotTailReader
from invariant.store.records import SnapshotRecord, StreamDataRow

A = TypeVar("A", bound=AggregateRoot[Any])


@dataclass(frozen=True, slots=True)
class SnapshotPolicy:
    """Take a snapshot once ``every`` events have been appended since the last one.

    Crossing the threshold counts, not landing on a multiple: a commit of several events that
    jumps from version 98 to 103 with ``every=100`` still snapshots.
    """

    every: int

    def __post_init__(self) -> None:
        if not isinstance(self.every, int) or self.every < 1:
            raise ConfigurationError(f"snapshot interval must be an int >= 1, got {self.every!r}")

    def due(self, last_snapshot_version: int, new_version: int) -> bool:
        return new_version - last_snapshot_version >= self.every


@dataclass(slots=True)
class Loaded(Generic[A]):
    aggregate: A
    snapshot_version: int
    from_cache: bool = False


class AggregateCache:
    """Recently saved aggregates, kept in memory to skip replaying their history.

    A command's load *takes* the cached instance (no one else can see it while the command
    runs) and uses it without reading the store: the append's expected version refuses it
    if the stream moved on meanwhile (see ``UnitOfWork``). Only a successful commit puts an
    aggregate back; a failed command leaves no trace. Reads (``Repository.load``, ``find``)
    leave the cache alone: they replay the stream into an instance of their own, which no
    command changes later, and the next command still finds the cached one. The least
    recently saved entries are dropped beyond ``size``.
    """

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ConfigurationError("cache size must be >= 0")
        self.size = size
        self._entries: dict[str, Loaded[Any]] = {}

    def take(self, stream_id: str) -> Loaded[Any] | None:
        return self._entries.pop(stream_id, None)

    def put(self, stream_id: str, loaded: Loaded[Any]) -> None:
        """Keep ``loaded`` (a newer version of the stream already kept stays instead)."""
        if self.size == 0:
            return
        entries = self._entries
        kept = entries.pop(stream_id, None)
        entries[stream_id] = loaded if kept is None or \
            kept.aggregate.version <= loaded.aggregate.version else kept
        if len(entries) > self.size:
            del entries[next(iter(entries))]

    def __len__(self) -> int:
        return len(self._entries)


class Repository(Generic[A]):
    """Loads one aggregate type from an :class:`EventStore` (writes go through the unit of work)."""

    def __init__(
        self,
        store: EventStore,
        aggregate_type: type[A],
        *,
        snapshots: SnapshotPolicy | None = None,
        cache: AggregateCache | None = None,
    ) -> None:
        if snapshots is not None and not aggregate_type.supports_snapshots():
            raise ConfigurationError(
                f"{aggregate_type.__name__} has a snapshot policy but does not implement "
                "to_snapshot() and from_snapshot()"
            )
        if snapshots is not None:
            _check_snapshot_upcasters(store, aggregate_type)
        self.store = store
        self.aggregate_type = aggregate_type
        self.snapshots = snapshots
        self.cache = cache
        self._tail_reader = isinstance(store.storage, SnapshotTailReader)

    def stream_id(self, aggregate_id: object) -> str:
        return stream_id_for(self.aggregate_type, aggregate_id)

    async def load(self, aggregate_id: Any) -> A:
        """The current aggregate; :class:`AggregateNotFoundError` when it has no events."""
        loaded = await self.load_tracked(aggregate_id)
        if loaded is None:
            raise AggregateNotFoundError(self.aggregate_type.__name__, str(aggregate_id))
        return loaded.aggregate

    async def find(self, aggregate_id: Any) -> A | None:
        loaded = await self.load_tracked(aggregate_id)
        return None if loaded is None else loaded.aggregate

    async def load_tracked(self, aggregate_id: Any, *, to_version: int | None = None,
                           trust_cache: bool = False) -> Loaded[A] | None:
        """The aggregate and the version of the snapshot it came from.

        ``trust_cache`` takes a cached aggregate as it is, without reading the store: only
        for writes, whose expected-version check refuses a stale aggregate (see
        ``UnitOfWork``). Other loads replay the stream and leave the cache alone.
        """
        stream = self.stream_id(aggregate_id)
        if trust_cache and self.cache is not None and to_version is None:
            cached = self.cache.take(stream)
            if cached is not None:
                return Loaded(cached.aggregate, cached.snapshot_version, from_cache=True)
        base: A | None = None
        start = 0
        snapshot_version = 0
        if self.snapshots is not None:
            storage = self.store.storage
            if to_version is None and self._tail_reader:
                # The snapshot and the events after it together (one round trip on
                # PostgreSQL); the whole stream again only if the snapshot cannot be used.
                snap, tail = await storage.read_snapshot_tail(stream)  # type: ignore[attr-defined]
                if snap is None:
                    return self._replay(aggregate_id, None, tail, 0)
                base = self._restore(aggregate_id, snap)
                if base is not None:
                    return self._replay(aggregate_id, base, tail, snap.version)
            else:
                snap = await storage.read_snapshot(stream)
                if snap is not None and (to_version is None or snap.version <= to_version):
                    base = self._restore(aggregate_id, snap)
                    if base is not None:
                        start = snapshot_version = snap.version
        rows = await self.store.storage.read_stream_data(
            stream, after_version=start, to_version=to_version
        )
        return self._replay(aggregate_id, base, rows, snapshot_version)

    def _replay(self, aggregate_id: Any, base: A | None, rows: list[StreamDataRow],
                snapshot_version: int) -> Loaded[A] | None:
        """``rows`` applied to ``base`` (to a new aggregate without one); None when there is
        neither."""
        if base is None and not rows:
            return None
        aggregate = base if base is not None else self.aggregate_type(aggregate_id)
        # Same apply path as AggregateRoot.rehydrate, fused with decoding.
        applied = self.store.decode_into(rows, aggregate.apply, aggregate.applier_for)
        aggregate._restored_at(aggregate.version + applied)
        return Loaded(aggregate, snapshot_version)

    async def load_at(
        self, aggregate_id: Any, *, version: int | None = None, as_of: datetime | None = None
    ) -> A:
        """The aggregate as it was at stream ``version``, or as of the time ``as_of``."""
        if (version is None) == (as_of is None):
            raise ValidationError.single(
                "load_at", "give exactly one of version= or as_of=", "invalid_temporal_query"
            )
        if version is not None:
            if version < 1:
                raise ValidationError.single("version", "must be >= 1", "invalid_version")
            loaded = await self.load_tracked(aggregate_id, to_version=version)
        else:
            assert as_of is not None
            if as_of.tzinfo is None:
                raise ValidationError.single(
                    "as_of", "must be timezone-aware (UTC recommended)", "naive_datetime"
                )
            records = await self.store.storage.read_stream(
                self.stream_id(aggregate_id), recorded_until=as_of
            )
            events = [self.store.decode_event(r) for r in records]
            loaded = (
                Loaded(self.aggregate_type.rehydrate(aggregate_id, events), 0) if events else None
            )
        if loaded is None:
            when = f"version {version}" if version is not None else f"{as_of}"
            raise AggregateNotFoundError(
                self.aggregate_type.__name__, f"{aggregate_id} (as of {when})"
            )
        return loaded.aggregate

    def _restore(self, aggregate_id: Any, snap: SnapshotRecord) -> A | None:
        cls = self.aggregate_type
        target = cls.snapshot_schema_version
        # Snapshots are named by the category; those written before were named by the
        # class, and are still read while the class keeps that name.
        if snap.aggregate_type not in (cls.category, cls.__name__) \
                or snap.schema_version > target:
            return None  # another type, or written by newer code: never misapply
        state = snap.state
        if snap.schema_version < target:
            upcast = self.store.upcasters.upcast_snapshot(
                cls.category, snap.schema_version, target, state
            )
            if upcast is None:
                return None  # no way to the current shape: replay the stream instead
            state = upcast
        return cls.from_snapshot(aggregate_id, state)._restored_at(snap.version)

    def snapshot_for(self, aggregate: A, last_snapshot_version: int) -> SnapshotRecord | None:
        """A snapshot of ``aggregate`` if the policy says one is due."""
        if self.snapshots is None or not self.snapshots.due(
            last_snapshot_version, aggregate.version
        ):
            return None
        return SnapshotRecord(
            stream_id=aggregate.stream_id(),
            aggregate_type=type(aggregate).category,
            version=aggregate.version,
            schema_version=type(aggregate).snapshot_schema_version,
            state=dict(aggregate.to_snapshot()),
        )


def _check_snapshot_upcasters(store: EventStore, aggregate_type: type[AggregateRoot[Any]]
                              ) -> None:
    """Snapshot upcasters are registered under the category: one registered under the class
    name would never run (its snapshots would be replayed around), so say so at start-up."""
    name, category = aggregate_type.__name__, aggregate_type.category
    if name != category and name in store.upcasters.snapshot_names:
        raise ConfigurationError(
            f"a snapshot upcaster is registered for {name!r}, but snapshots of {name} are "
            f"named by its category: register it as register_snapshot({category!r}, ...)"
        )
