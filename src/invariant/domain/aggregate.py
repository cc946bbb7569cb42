"""Aggregate roots: consistency boundaries that record what happened to them as events."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Self, TypeVar

from invariant.domain.entity import Entity
from invariant.domain.errors import ConfigurationError
from invariant.domain.events import DomainEvent

IdT = TypeVar("IdT")


class AggregateRoot(Entity[IdT]):
    """An event-sourced aggregate root.

    Commands are methods that check the rules and call :meth:`record`; :meth:`apply` is the
    only place state changes, and it is the same path used when the aggregate is rebuilt
    from its stream. Subclasses implement ``apply`` (a ``match`` on the event is the usual
    shape) and start from a blank state in ``__init__(self, id)``.

    ``category`` names the streams (``"<category>-<id>"``); it defaults to the class name.
    To support snapshots, implement :meth:`to_snapshot` and :meth:`from_snapshot` and bump
    ``snapshot_schema_version`` whenever the snapshot shape changes.
    """

    category: ClassVar[str]
    snapshot_schema_version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "category" not in cls.__dict__:
            cls.category = cls.__name__
        if not cls.category or "-" in cls.category:
            raise ConfigurationError(
                f"{cls.__name__}.category must be non-empty and contain no '-', "
                f"got {cls.category!r} (stream ids are '<category>-<id>')"
            )

    def __init__(self, id: IdT) -> None:
        super().__init__(id)
        self._version = 0
        self._pending: list[DomainEvent] = []

    @property
    def version(self) -> int:
        """The stream version this state reflects, pending events included."""
        return self._version

    @property
    def persisted_version(self) -> int:
        """The stream version as last loaded or saved (what an append must expect)."""
        return self._version - len(self._pending)

    @property
    def pending_events(self) -> tuple[DomainEvent, ...]:
        """Events recorded since the aggregate was loaded or last saved."""
        return tuple(self._pending)

    def record(self, event: DomainEvent) -> None:
        """Apply a new event to the state and keep it to be saved."""
        self.apply(event)
        self._version += 1
        self._pending.append(event)

    def apply(self, event: DomainEvent) -> None:
        """Evolve the state by one event. Must not check rules or raise for valid history."""
        raise NotImplementedError(f"{type(self).__name__} must implement apply(event)")

    def mark_saved(self) -> list[DomainEvent]:
        """Forget the pending events after they were stored; returns them."""
        events, self._pending = self._pending, []
        return events

    @classmethod
    def rehydrate(
        cls, id: IdT, events: Iterable[DomainEvent], *, base: Self | None = None
    ) -> Self:
        """Rebuild from history (optionally on top of a restored snapshot)."""
        aggregate = base if base is not None else cls(id)
        apply = aggregate.apply
        history = events if isinstance(events, list | tuple) else list(events)
        for event in history:
            apply(event)
        aggregate._version += len(history)
        return aggregate

    def to_snapshot(self) -> Mapping[str, Any]:
        """The state as JSON-compatible data, for snapshots. Override to enable snapshots."""
        raise NotImplementedError

    @classmethod
    def from_snapshot(cls, id: IdT, state: Mapping[str, Any]) -> Self:
        """Restore from :meth:`to_snapshot` data. Override to enable snapshots."""
        raise NotImplementedError

    @classmethod
    def supports_snapshots(cls) -> bool:
        return (
            cls.to_snapshot is not AggregateRoot.to_snapshot
            and cls.from_snapshot.__func__ is not AggregateRoot.from_snapshot.__func__  # type: ignore[attr-defined]
        )

    def _restored_at(self, version: int) -> Self:
        self._version = version
        return self

    def stream_id(self) -> str:
        return stream_id_for(type(self), self.id)


def stream_id_for(aggregate_type: type[AggregateRoot[Any]], aggregate_id: object) -> str:
    """The stream of an aggregate: ``"<category>-<id>"``."""
    return f"{aggregate_type.category}-{aggregate_id!s}"
