"""Aggregate roots: consistency boundaries that record what happened to them as events."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import FunctionType, MethodType
from typing import Any, ClassVar, Self, TypeVar

from invariant.domain.entity import Entity
from invariant.domain.errors import ConfigurationError
from invariant.domain.events import DomainEvent

IdT = TypeVar("IdT")
F = TypeVar("F", bound=Callable[..., None])

_APPLIES = "__invariant_applies__"
_Handler = Callable[[Any, Any], None]


def applies(*event_classes: type[DomainEvent]) -> Callable[[F], F]:
    """Mark an aggregate method as the way its state evolves by events of ``event_classes``::

        @applies(MoneyDeposited)
        def _deposited(self, event: MoneyDeposited) -> None:
            self.balance = self.balance + event.amount

    :meth:`AggregateRoot.apply` then calls it for those events (and for their subclasses,
    unless a subclass has a method of its own), when recording and when rebuilding alike.
    """
    if not event_classes or not all(
        isinstance(c, type) and issubclass(c, DomainEvent) for c in event_classes
    ):
        raise ConfigurationError(
            f"@applies takes one or more DomainEvent classes, got {event_classes!r}"
        )

    def mark(method: F) -> F:
        if not isinstance(method, FunctionType):
            raise ConfigurationError(
                f"@applies marks plain methods (def name(self, event)), not {method!r}"
            )
        setattr(method, _APPLIES, (*getattr(method, _APPLIES, ()), *event_classes))
        return method

    return mark


class AggregateRoot(Entity[IdT]):
    """An event-sourced aggregate root.

    Commands are methods that check the rules and call :meth:`record`; :meth:`apply` is the
    only place state changes, and it is the same path used when the aggregate is rebuilt
    from its stream. Subclasses either mark one method per event class with
    :func:`applies` (``apply`` then calls the method of the event's class), or override
    ``apply`` themselves (a ``match`` on the event). They start from a blank state in
    ``__init__(self, id)``.

    ``category`` names the streams (``"<category>-<id>"``); it defaults to the class name, so
    set it to keep a class's streams when renaming it. To support snapshots, implement
    :meth:`to_snapshot` and :meth:`from_snapshot` and bump ``snapshot_schema_version``
    whenever the snapshot shape changes. Snapshots are named by the ``category`` too (not
    the class name), and so are their upcasters (``register_snapshot("account", 1, ...)``).
    """

    category: ClassVar[str]
    snapshot_schema_version: ClassVar[int] = 1
    # The @applies methods by the event class they name, and by every event class met so far
    # (found through the event class's bases); built per subclass.
    _handlers: ClassVar[dict[type[DomainEvent], _Handler]] = {}
    _resolved: ClassVar[dict[type[DomainEvent], _Handler]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "category" not in cls.__dict__:
            cls.category = cls.__name__
        if not cls.category or "-" in cls.category:
            raise ConfigurationError(
                f"{cls.__name__}.category must be non-empty and contain no '-', "
                f"got {cls.category!r} (stream ids are '<category>-<id>')"
            )
        names: dict[type[DomainEvent], str] = {}
        for klass in reversed(cls.__mro__):
            own: dict[type[DomainEvent], str] = {}
            for name, member in klass.__dict__.items():
                if not isinstance(member, FunctionType):
                    continue
                for event_class in getattr(member, _APPLIES, ()):
                    if event_class in own:
                        raise ConfigurationError(
                            f"{klass.__name__}.{own[event_class]} and {klass.__name__}.{name} "
                            f"both apply {event_class.__name__}: keep one"
                        )
                    own[event_class] = name
            names.update(own)
        # By name, so that a subclass overriding a handler method is the one called.
        cls._handlers = {event_class: getattr(cls, name) for event_class, name in names.items()}
        cls._resolved = dict(cls._handlers)

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
        """Evolve the state by one event. Must not check rules or raise for valid history.

        Calls the :func:`applies` method of the event's class; override it to apply events
        some other way (e.g. a ``match``).
        """
        handler = self._resolved.get(type(event))
        if handler is None:
            handler = type(self)._handler_for(type(event))
        handler(self, event)

    def applier_for(self, event_class: type[DomainEvent]) -> Callable[[DomainEvent], None]:
        """What :meth:`apply` does with events of exactly ``event_class``, looked up once.

        The :func:`applies` method bound to this aggregate, or ``apply`` itself when a
        subclass overrides it (or has no method for that class, so that the call raises
        what ``apply`` raises). Rebuilding from history calls it once per run of events of
        one class.
        """
        cls = type(self)
        if cls.apply is AggregateRoot.apply:
            handler = cls._resolved.get(event_class) or cls._find_handler(event_class)
            if handler is not None:
                return MethodType(handler, self)
        return self.apply

    @classmethod
    def _find_handler(cls, event_class: type[DomainEvent]) -> _Handler | None:
        for klass in event_class.__mro__:
            handler = cls._handlers.get(klass)
            if handler is not None:
                cls._resolved[event_class] = handler
                return handler
        return None

    @classmethod
    def _handler_for(cls, event_class: type[DomainEvent]) -> _Handler:
        handler = cls._find_handler(event_class)
        if handler is not None:
            return handler
        if not cls._handlers:
            raise NotImplementedError(
                f"{cls.__name__} must implement apply(event), or mark a method per event "
                "class with @applies(EventClass)"
            )
        raise NotImplementedError(
            f"{cls.__name__} has no @applies method for {event_class.__name__} "
            f"(it applies {', '.join(sorted(c.__name__ for c in cls._handlers))})"
        )

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
        applier_for = aggregate.applier_for
        apply: Callable[[DomainEvent], None] = aggregate.apply
        last: type[DomainEvent] | None = None
        count = 0
        for count, event in enumerate(events, 1):  # noqa: B007
            if type(event) is not last:
                last = type(event)
                apply = applier_for(last)
            apply(event)
        aggregate._version += count
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
