"""What a projection declares: its name and version, the events it handles, its tables,
and how it applies a page of events to them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Self

from sqlalchemy import Connection, MetaData, Table

from invariant.domain.errors import ConfigurationError
from invariant.domain.events import DomainEvent
from invariant.projections import checkpoints
from invariant.store.batch import EventBatch
from invariant.store.event_store import EventEnvelope, EventStore


class Projection:
    """A read model built from the global log.

    Subclasses set ``name`` and ``event_types`` (event classes or stored type names),
    create their tables in :meth:`define` with :meth:`table_name` (the version is part of
    every table's name, so version 2 is built beside version 1), and override :meth:`apply`
    (one event) or :meth:`apply_batch` (a page, e.g. to aggregate before writing).

    Handlers are synchronous SQLAlchemy Core on the connection of the page's transaction;
    the checkpoint is written in that same transaction. They must not commit, and should
    not call other services: a page may be retried. A page's upsert of many rows runs
    faster through :func:`invariant.sql.direct.execute_many` (the same statement, on the
    driver's cursor).

    Envelopes are read lean while a projection catches up: the event, stream id, position,
    type and schema versions. The first time a handler (or :meth:`cache_tags`) asks for
    ``event_id``, ``stream_version``, ``metadata`` or ``recorded_at``, the page is rolled
    back and read again with every field, as are this projection's later pages.
    """

    name: ClassVar[str]
    event_types: ClassVar[tuple[type[DomainEvent] | str, ...]]
    version: int = 1

    def __init__(self, version: int | None = None) -> None:
        if version is not None:
            self.version = version
        if not getattr(self, "name", "") or not self.event_types:
            raise ConfigurationError(
                f"{type(self).__name__} must declare a name and at least one event type"
            )
        self.handled: frozenset[str] = frozenset(
            t if isinstance(t, str) else t.event_type for t in self.event_types
        )
        self.metadata = MetaData()
        self.define(self.metadata)

    @classmethod
    def serving(cls, conn: Connection) -> Self:
        """This projection at the version that serves queries now (after a side-by-side
        rebuild is switched, the new one), for a query to read its tables. One instance per
        version is built and kept, so a query costs one checkpoint lookup."""
        version = checkpoints.active_version(conn, cls.name)
        built: dict[int, Self] = cls.__dict__.get("_serving_versions") or {}
        if not built:
            cls._serving_versions = built  # type: ignore[attr-defined]
        found = built.get(version)
        if found is None:
            found = built[version] = cls(version)
        return found

    @property
    def key(self) -> str:
        """``name@version``: how this version is named in leases and messages."""
        return f"{self.name}@v{self.version}"

    def table_name(self, base: str) -> str:
        """``<name>_<base>_v<version>``."""
        return f"{self.name}_{base}_v{self.version}"

    @property
    def tables(self) -> list[Table]:
        return list(self.metadata.sorted_tables)

    def define(self, metadata: MetaData) -> None:
        """Create this version's tables in ``metadata``."""
        raise NotImplementedError

    def apply(self, envelope: EventEnvelope, conn: Connection) -> None:
        """Apply one event of a handled type."""
        raise NotImplementedError(f"{type(self).__name__} must override apply or apply_batch")

    def apply_batch(self, batch: EventBatch, conn: Connection) -> None:
        """Apply a page of handled events, in position order (default: one by one).

        ``batch`` is a sequence of envelopes; a handler that needs only the events, their
        streams or positions reads its columns (``batch.events``, ``batch.stream_ids``,
        ``batch.positions``) and no envelope is made (see :class:`EventBatch`).
        """
        for envelope in batch:
            self.apply(envelope, conn)

    def reset(self, conn: Connection, after: int) -> None:
        """Remove the effects of every event after position ``after``.

        The default empties the tables, which is right for ``after == 0`` only; a read model
        that can tell which rows later events made (rows keyed by position) overrides this
        to rebuild from a position.
        """
        if after != 0:
            raise ConfigurationError(
                f"projection {self.key} cannot rebuild from position {after}: it does not "
                "know which of its rows events after it made; rebuild from 0, or override "
                "Projection.reset"
            )
        for table in reversed(self.tables):
            conn.execute(table.delete())

    def cache_tags(self, envelope: EventEnvelope) -> Iterable[str]:
        """Query-cache tags whose entries this event makes stale (see QueryCache)."""
        return ()


@dataclass(frozen=True)
class ProjectionSet:
    """An application's projections and the event store they read (what an application
    gives ``invariant projections``: see :class:`~invariant.operable.Parts`)."""

    store: EventStore
    projections: Sequence[Projection]
