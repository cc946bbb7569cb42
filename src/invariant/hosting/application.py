"""One application's core: its event store, unit of work, buses and projections, and
the outbox relay of the embedded mode. :func:`build_app` wires it from explicit
registrations; a :class:`~invariant.hosting.Host` builds one from its modules."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from invariant.application.bus import (
    AnyCommandHandler,
    CommandBus,
    Middleware,
    QueryBus,
    QueryHandler,
)
from invariant.application.messages import Command, Query
from invariant.application.middleware import default_middleware
from invariant.application.unit_of_work import Aggregates
from invariant.config import Settings
from invariant.domain.aggregate import AggregateRoot
from invariant.domain.errors import ConfigurationError
from invariant.domain.events import DomainEvent
from invariant.hosting.adapters import open_broker, open_read_models, open_storage
from invariant.store.event_store import EventStore
from invariant.store.memory import MemoryStorage
from invariant.store.port import EventStorage
from invariant.store.registry import EventRegistry
from invariant.store.upcasting import Upcasters
from invariant.tasks import stop_task

if TYPE_CHECKING:  # imported when used: SQLAlchemy only for applications with projections
    from invariant.messaging.port import Broker
    from invariant.messaging.relay import OutboxRelay
    from invariant.projections import (
        Projection,
        ProjectionRunner,
        ReadModelDatabase,
    )


@dataclass
class App:
    """A wired application: what :func:`build_app` returns. Use it as an async context
    manager: entering sets the storage and read models up and starts following the log
    with the projections; leaving stops them and closes every connection."""

    settings: Settings
    storage: EventStorage
    store: EventStore
    aggregates: Aggregates
    commands: CommandBus
    queries: QueryBus
    projections: ProjectionRunner | None = None
    read_models: ReadModelDatabase | None = None
    owns_storage: bool = True
    """False when the caller passed the storage in: then the caller closes it."""
    owns_read_models: bool = True
    """False when the caller passed the read-model database in: then the caller closes it."""
    relay: OutboxRelay | None = None
    """The outbox relay running inside the application (embedded mode), when a broker was
    passed in or ``INVARIANT_BROKER`` is set; ``relay.broker`` is the broker."""
    _live: asyncio.Task[None] | None = field(default=None, repr=False)
    _relaying: asyncio.Task[None] | None = field(default=None, repr=False)
    _stop_relay: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    async def __aenter__(self) -> App:
        await self.storage.setup()
        if self.projections is not None:
            await self.projections.setup()
            self._live = asyncio.create_task(self.projections.run())
        if self.relay is not None:
            await self.relay.broker.connect()
            await self.relay.setup()
            self._stop_relay.clear()
            self._relaying = asyncio.create_task(self.relay.run(stop=self._stop_relay))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._relaying is not None and self.relay is not None:
            self._stop_relay.set()
            await self._relaying
            self._relaying = None
            await self.relay.broker.close()
        if self._live is not None:
            live, self._live = self._live, None
            await stop_task(live)
        if self.read_models is not None and self.owns_read_models:
            await self.read_models.close()
        if self.owns_storage:
            await self.storage.close()


QueryHandlers = Callable[["App"], Mapping[type[Query], QueryHandler]]


def build_app(
    settings: Settings,
    *,
    events: Iterable[type[DomainEvent]],
    command_handlers: Mapping[type[Command[Any]], AnyCommandHandler],
    commands: Iterable[type[Command[Any]]] = (),
    query_handlers: QueryHandlers | None = None,
    queries: Iterable[type[Query]] = (),
    upcasters: Upcasters | None = None,
    snapshots: Mapping[type[AggregateRoot[Any]], int] | None = None,
    projections: Sequence[Projection] = (),
    middleware: Sequence[Middleware] | None = None,
    storage: EventStorage | None = None,
    read_models: ReadModelDatabase | None = None,
    broker: Broker | None = None,
) -> App:
    """Build every part of an application from ``settings`` and the application's own
    registrations; the one place where dependencies are chosen and passed in.

    ``query_handlers`` is a function of the wired :class:`App`, so query handlers get the
    read models or repositories they need without globals. ``storage`` overrides the
    settings' store (tests pass one in); ``read_models`` is the read-model database to use
    (by default one is opened in the store's database when projections or the relay need
    it); the caller closes what it passed in. ``broker`` runs the outbox relay inside the
    application (the embedded mode: e.g. an ``InProcessBroker``); without it, the broker
    ``INVARIANT_BROKER`` names (:func:`open_broker`) does, when set; with neither, run
    ``invariant relay run`` as its own process (the distributed mode).
    """
    owns_storage = storage is None
    in_database = broker is None and settings.broker == "sql"
    if broker is None and settings.broker is not None and not in_database:
        broker = open_broker(settings)
    if (broker is not None or in_database) and (isinstance(storage, MemoryStorage) or (
            storage is None and settings.store == "memory")):
        raise ConfigurationError(
            "the outbox relay reads the outbox in the event store's database; set "
            "INVARIANT_STORE=sqlite or postgres, or unset INVARIANT_BROKER (pass no broker)")
    storage = storage if storage is not None else open_storage(settings)
    store = EventStore(storage, EventRegistry(events), upcasters)
    aggregates = Aggregates(store, snapshots)
    bus = CommandBus(
        aggregates, command_handlers, commands=commands,
        middleware=default_middleware(storage) if middleware is None else middleware,
    )
    owns_read_models = read_models is None
    runner: ProjectionRunner | None = None
    if read_models is None and (projections or broker is not None or in_database):
        read_models = open_read_models(settings, storage)
    if in_database:
        broker = open_broker(settings, read_models)
    if projections:
        from invariant.projections import ProjectionRunner

        assert read_models is not None
        runner = ProjectionRunner(store, read_models, projections)
    relay: OutboxRelay | None = None
    if broker is not None:
        from invariant.messaging.relay import OutboxRelay

        assert read_models is not None
        relay = OutboxRelay(read_models, broker)
    app = App(settings, storage, store, aggregates, bus, QueryBus({}), runner, read_models,
              owns_storage, owns_read_models, relay)
    app.queries = QueryBus(query_handlers(app) if query_handlers else {}, queries=queries)
    return app

