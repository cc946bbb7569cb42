"""State-stored aggregates: kept as their current state (one row), not as a stream of events."""

from __future__ import annotations

from typing import Generic, Self, TypeVar

from invariant.domain.entity import Entity
from invariant.domain.events import DomainEvent

IdT = TypeVar("IdT")
StateT = TypeVar("StateT")


class StateAggregate(Entity[IdT], Generic[IdT, StateT]):
    """An aggregate whose whole state is one immutable value, stored as one row.

    Commands replace the state with a new, validated value (:meth:`change`) and may record
    domain events; the repository writes the row and the events (to the outbox) in one
    transaction. ``version`` is the stored version the aggregate was loaded at (0 before its
    first save); a save made from a stale version is refused with ``ConcurrencyError``.

    Subclasses keep the constructor's signature (the repository restores them with
    ``cls(id, state, version=...)``) and hold no state outside ``state``.
    """

    def __init__(self, id: IdT, state: StateT, *, version: int = 0) -> None:
        super().__init__(id)
        self._state = state
        self._version = version
        self._pending: list[DomainEvent] = []

    @property
    def state(self) -> StateT:
        """The current state (an immutable value object)."""
        return self._state

    @property
    def version(self) -> int:
        """The stored version this aggregate was loaded or last saved at (0: never saved)."""
        return self._version

    @property
    def pending_events(self) -> tuple[DomainEvent, ...]:
        """Events recorded since the aggregate was loaded or last saved."""
        return tuple(self._pending)

    def change(self, state: StateT, *events: DomainEvent) -> None:
        """Replace the state with ``state`` and record ``events`` to be published with it."""
        self._state = state
        self._pending.extend(events)

    def record(self, event: DomainEvent) -> None:
        """Record an event without changing the state."""
        self._pending.append(event)

    def mark_saved(self, version: int) -> list[DomainEvent]:
        """Called by the repository after a commit: adopt ``version``, return the events."""
        events, self._pending = self._pending, []
        self._version = version
        return events

    @classmethod
    def restore(cls, id: IdT, state: StateT, version: int) -> Self:
        """Rebuild from storage, with no pending events."""
        return cls(id, state, version=version)
