"""Modules put together: one registry of every command, query, projection, process,
consumer and job, where each is owned by exactly one module."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from invariant.application.bus import AnyCommandHandler, QueryHandler
from invariant.application.messages import Command, Query
from invariant.domain.errors import ConfigurationError
from invariant.domain.events import DomainEvent
from invariant.hosting.module import Module, Provision

if TYPE_CHECKING:
    from invariant.messaging.consumer import Handler
    from invariant.messaging.jobs import JobHandler
    from invariant.processes import ProcessManager
    from invariant.projections import Projection

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")


@dataclass(frozen=True)
class Composition:
    """Every part of ``modules``, merged; built by :func:`compose`."""

    modules: tuple[Module, ...]
    events: tuple[type[DomainEvent], ...]
    commands: dict[type[Command[Any]], AnyCommandHandler]
    queries: dict[type[Query], QueryHandler]
    projections: tuple[Projection, ...]
    processes: tuple[ProcessManager, ...]
    consumers: dict[str, Handler]
    jobs: dict[str, JobHandler]

    def provided(self, key: Provision[T]) -> list[T]:
        """What the modules offer under ``key``, in module order."""
        return [cast(T, m.provides[key]) for m in self.modules if key in m.provides]


def compose(modules: Sequence[Module]) -> Composition:
    """``modules`` as one registry; a :class:`ConfigurationError` when a module is given
    twice or two modules handle the same command, query, consumer group or job."""
    names = [m.name for m in modules]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigurationError(f"module(s) registered twice: {', '.join(twice)}")
    for module in modules:
        strays = [c.__qualname__ for c in module.accepts if c not in module.commands]
        if strays:
            raise ConfigurationError(
                f"module {module.name} accepts {', '.join(strays)} from other contexts but "
                "has no handler for it; list only commands of its own")
    return Composition(
        modules=tuple(modules),
        events=tuple(e for m in modules for e in m.events),
        commands=_merge("command", {m.name: m.commands for m in modules}),
        queries=_merge("query", {m.name: m.queries for m in modules}),
        projections=tuple(p for m in modules for p in m.projections),
        processes=tuple(p for m in modules for p in m.processes),
        consumers=_merge("consumer group", {m.name: m.consumers for m in modules}),
        jobs=_merge("job", {m.name: m.jobs for m in modules}),
    )


def _merge(kind: str, parts: Mapping[str, Mapping[K, V]]) -> dict[K, V]:
    merged: dict[K, V] = {}
    owner: dict[K, str] = {}
    for module, handlers in parts.items():
        for key, handler in handlers.items():
            if key in merged:
                raise ConfigurationError(
                    f"{kind} {_name(key)} is handled by both {owner[key]} and {module}; one "
                    f"context owns each {kind}")
            merged[key], owner[key] = handler, module
    return merged


def _name(key: Any) -> str:
    return str(getattr(key, "__name__", key))
