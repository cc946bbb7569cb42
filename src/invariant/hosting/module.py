"""What a bounded context contributes to a host: one :class:`Module` per context.

A module is data: its event and command types with their handlers, its queries, its
projections, process managers, consumers and jobs, its HTTP routes and its tables. The
host composes the modules it is given (all of them in one process, or a subset in a
service) and runs the parts its roles ask for; a module never reaches for the host that
runs it, so the same module runs embedded or on its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from invariant.application.bus import AnyCommandHandler, QueryHandler
from invariant.application.messages import Command, Query
from invariant.domain.events import DomainEvent

if TYPE_CHECKING:  # the adapters' libraries are loaded only by the modules that use them
    from fastapi import APIRouter
    from sqlalchemy import MetaData

    from invariant.hosting.host import Host
    from invariant.messaging.consumer import Handler
    from invariant.messaging.jobs import JobHandler
    from invariant.messaging.published_language import IntegrationEvent
    from invariant.processes import ProcessManager
    from invariant.projections import Projection

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Provision(Generic[T]):
    """A typed name for something one module offers the others or the platform (e.g. the
    accounts access tokens are checked against): the module puts it in
    :attr:`Module.provides`, the platform asks :meth:`Host.provided` for it by this key."""

    name: str


@dataclass(frozen=True)
class Module:
    """A bounded context's contribution to a host.

    * ``events``: its domain event classes (event-sourced contexts).
    * ``commands``: ``{Command type: async def handle(command, uow)}`` on the shared bus.
    * ``accepts``: those of its commands other contexts' process managers send it; in a
      service (role ``commands``) they arrive as messages through the broker.
    * ``queries``: ``{Query type: async def handle(query)}`` on the shared query bus.
    * ``projections``: read models fed from the event log (role ``projections``).
    * ``processes``: process managers and sagas (role ``processes``).
    * ``consumers``: ``{group name: handler(conn, message)}``: integration messages from
      the broker, each applied once (inbox) or parked after retries (role ``consumers``).
    * ``jobs``: ``{job name: async def run(job)}`` for the job worker (role ``jobs``).
    * ``integration_events``: the published language this context owns.
    * ``router``: its HTTP routes (role ``http``).
    * ``tables``: its own tables in the read-model database, created at start-up when
      missing (before any ``setup``).
    * ``setup``: idempotent start-up work (e.g. seed data), once the store is ready.
    * ``lifespan``: a service that runs while the host runs (e.g. a local mail sink).
    * ``provides``: what it offers others, by :class:`Provision` key.
    """

    name: str
    events: Sequence[type[DomainEvent]] = ()
    commands: Mapping[type[Command[Any]], AnyCommandHandler] = field(default_factory=dict)
    accepts: Sequence[type[Command[Any]]] = ()
    queries: Mapping[type[Query], QueryHandler] = field(default_factory=dict)
    projections: Sequence[Projection] = ()
    processes: Sequence[ProcessManager] = ()
    consumers: Mapping[str, Handler] = field(default_factory=dict)
    jobs: Mapping[str, JobHandler] = field(default_factory=dict)
    integration_events: Sequence[type[IntegrationEvent]] = ()
    router: APIRouter | None = None
    tables: MetaData | None = None
    setup: Callable[[Host], Awaitable[None]] | None = None
    lifespan: Callable[[Host], AbstractAsyncContextManager[None]] | None = None
    provides: Mapping[Provision[Any], object] = field(default_factory=dict)
