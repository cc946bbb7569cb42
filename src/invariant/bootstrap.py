"""``invariant.bootstrap``: where applications were wired before :mod:`invariant.hosting`.

Everything it exported still imports from here. :func:`bootstrap` takes both calls: with
``modules`` it builds a :class:`~invariant.hosting.Host` (the composition root), with the
former keywords (``events=``, ``command_handlers=``, ...) the single-application
:class:`~invariant.hosting.App` of :func:`~invariant.hosting.build_app`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

from invariant.hosting import (
    ALL_ROLES,
    App,
    Host,
    Module,
    Role,
    build_app,
    open_broker,
    open_job_queue,
    open_read_models,
    open_storage,
)
from invariant.hosting import bootstrap as _host
from invariant.hosting.application import QueryHandlers

if TYPE_CHECKING:
    from invariant.application.bus import AnyCommandHandler, Middleware
    from invariant.application.messages import Command, Query
    from invariant.clock import Clock
    from invariant.config import Settings
    from invariant.domain.aggregate import AggregateRoot
    from invariant.domain.events import DomainEvent
    from invariant.messaging.port import Broker
    from invariant.projections import Projection, ReadModelDatabase
    from invariant.retry import RetryPolicy
    from invariant.store.port import EventStorage
    from invariant.store.upcasting import Upcasters


@overload
def bootstrap(settings: Settings, modules: Sequence[Module],
              roles: Iterable[Role | str] = ALL_ROLES, *,
              storage: EventStorage | None = None, read_models: ReadModelDatabase | None = None,
              broker: Broker | None = None, clock: Clock = ...,
              command_retries: int = ..., consumer_backoff: RetryPolicy | None = None) -> Host:
    ...


@overload
def bootstrap(settings: Settings, *, events: Iterable[type[DomainEvent]],
              command_handlers: Mapping[type[Command[Any]], AnyCommandHandler],
              commands: Iterable[type[Command[Any]]] = (),
              query_handlers: QueryHandlers | None = None,
              queries: Iterable[type[Query]] = (), upcasters: Upcasters | None = None,
              snapshots: Mapping[type[AggregateRoot[Any]], int] | None = None,
              projections: Sequence[Projection] = (),
              middleware: Sequence[Middleware] | None = None,
              storage: EventStorage | None = None, read_models: ReadModelDatabase | None = None,
              broker: Broker | None = None) -> App:
    ...


def bootstrap(settings: Settings, modules: Sequence[Module] | None = None,
              roles: Iterable[Role | str] = ALL_ROLES, **options: Any) -> Host | App:
    """The host of ``modules`` (see :func:`invariant.hosting.bootstrap`), or, called with
    the former keywords, one application (see :func:`invariant.hosting.build_app`)."""
    if modules is not None:
        return _host(settings, modules, roles, **options)
    return build_app(settings, **options)


__all__ = ["App", "Host", "bootstrap", "open_broker", "open_job_queue", "open_read_models",
           "open_storage"]
