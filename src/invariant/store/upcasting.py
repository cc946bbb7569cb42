"""Upcasters: turn events (and snapshots) stored in an old shape into the current shape on read.

Stored data is never rewritten. An upcaster is registered for one ``(type, schema_version)``
and produces ``schema_version + 1``, optionally under a new type name; chains run until no
upcaster matches (v1 → v2 → v3 …).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from invariant.domain.errors import ConfigurationError, SerializationError

Transform = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Step:
    transform: Transform
    new_type: str


class Upcasters:
    """A registry of upcasting steps for events and snapshots."""

    def __init__(self) -> None:
        self._events: dict[tuple[str, int], _Step] = {}
        self._snapshots: dict[tuple[str, int], Transform] = {}
        self.event_types: frozenset[str] = frozenset()
        self.highest_from: dict[str, int] = {}
        """Per event type, the highest schema version an upcaster starts from."""

    def register(
        self,
        event_type: str,
        from_version: int,
        transform: Transform | None = None,
        *,
        rename_to: str | None = None,
    ) -> None:
        """Upcast ``event_type`` stored at ``from_version`` to ``from_version + 1``.

        ``transform`` gets a copy of the data and returns the new data (add defaults, rename
        fields); ``rename_to`` also changes the event type name.
        """
        key = (event_type, from_version)
        if key in self._events:
            raise ConfigurationError(f"an upcaster for {event_type} v{from_version} exists already")
        if from_version < 1:
            raise ConfigurationError("schema versions start at 1")
        self._events[key] = _Step(transform or (lambda d: d), rename_to or event_type)
        self.event_types = frozenset(t for t, _ in self._events)
        self.highest_from[event_type] = max(self.highest_from.get(event_type, 0), from_version)

    def upcaster(self, event_type: str, from_version: int, *, rename_to: str | None = None
                 ) -> Callable[[Transform], Transform]:
        """Decorator form of :meth:`register`."""

        def deco(fn: Transform) -> Transform:
            self.register(event_type, from_version, fn, rename_to=rename_to)
            return fn

        return deco

    def sources_of(self, event_types: Iterable[str]) -> frozenset[str]:
        """The stored types whose events may be read as one of ``event_types``: those types
        and every type an upcaster renames into one of them, directly or along a chain.
        Events of any other type never become one of ``event_types``."""
        renamed_from: dict[str, set[str]] = {}
        for (stored, _), step in self._events.items():
            if step.new_type != stored:
                renamed_from.setdefault(step.new_type, set()).add(stored)
        found = set(event_types)
        todo = list(found)
        while todo:
            for source in renamed_from.get(todo.pop(), ()):
                if source not in found:
                    found.add(source)
                    todo.append(source)
        return frozenset(found)

    def upcast(self, event_type: str, version: int, data: dict[str, Any]
               ) -> tuple[str, int, dict[str, Any]]:
        """Run the chain from ``(event_type, version)``; returns the final type, version, data."""
        step = self._events.get((event_type, version))
        while step is not None:
            try:
                data = step.transform(dict(data))
            except Exception as exc:
                raise SerializationError(
                    f"upcaster for {event_type} v{version} failed on {data!r}: {exc}"
                ) from exc
            event_type, version = step.new_type, version + 1
            step = self._events.get((event_type, version))
        return event_type, version, data

    def register_snapshot(self, category: str, from_version: int, transform: Transform
                          ) -> None:
        """Upcast snapshots of the aggregate whose ``category`` is given (``"account"`` for
        ``BankAccount``), made with snapshot schema ``from_version``.

        Snapshots are named by the category, not the class name, so that renaming a class
        whose ``category`` is set keeps its snapshots and their upcasters.
        """
        key = (category, from_version)
        if key in self._snapshots:
            raise ConfigurationError(
                f"a snapshot upcaster for {category} v{from_version} exists already"
            )
        self._snapshots[key] = transform

    @property
    def snapshot_names(self) -> frozenset[str]:
        """The categories that have snapshot upcasters."""
        return frozenset(name for name, _ in self._snapshots)

    def upcast_snapshot(self, category: str, version: int, target: int,
                        state: dict[str, Any]) -> dict[str, Any] | None:
        """The state in schema ``target``, or None when no chain of upcasters reaches it."""
        while version < target:
            step = self._snapshots.get((category, version))
            if step is None:
                return None
            try:
                state = step(dict(state))
            except Exception as exc:
                raise SerializationError(
                    f"snapshot upcaster for {category} v{version} failed: {exc}"
                ) from exc
            version += 1
        return state if version == target else None
