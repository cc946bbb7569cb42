"""The running shop: every context's module wired onto one event store, one database, one
command bus, one broker, and the workers that move work between them.

Embedded mode (the default): SQLite, a durable broker in the same database, and all the
workers in this process:

* the projections (read models from the event log),
* the process runner (fulfilment: reacts to events, sends commands, fires deadlines),
* the outbox relay (committed outbox rows → broker) and the consumers (broker → inbox +
  effects, poison messages parked in the dead-letter store),
* the job worker (e.g. sending emails, with retries and a dead state).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from invariant.application.middleware import default_middleware
from invariant.bootstrap import App, bootstrap, open_broker, open_read_models, open_storage
from invariant.clock import Clock, utc_now
from invariant.config import Settings
from invariant.domain.errors import ConfigurationError
from invariant.messaging.consumer import Consumer
from invariant.messaging.jobs import JobWorker
from invariant.messaging.port import Broker
from invariant.messaging.relay import OutboxRelay
from invariant.processes import ProcessRunner
from invariant.projections import ReadModelDatabase
from invariant.retry import RetryPolicy
from invariant.store.port import EventStorage
from invariant.tasks import stop_task, wait_briefly
from shop.config import ShopSettings
from shop.platform.auth import AccountDirectory, Tokens
from shop.platform.broker_watch import BrokerWatch
from shop.platform.module import Module, ModuleFactory

log = logging.getLogger("shop")
COMMAND_RETRIES = 10


def default_modules() -> list[ModuleFactory]:
    """Every bounded context of shop, in start-up order."""
    from shop import (
        analytics,
        billing,
        catalog,
        fulfilment,
        identity,
        inventory,
        notifications,
        ordering,
        payments,
        shipping,
    )

    return [identity.module, notifications.module, catalog.module, inventory.module,
            ordering.module, payments.module, shipping.module, fulfilment.module,
            billing.module, analytics.module]


def invariant_settings(settings: ShopSettings) -> Settings:
    """invariant's settings as shop runs with them: its broker is ``sql`` (durable, in its
    own database) unless ``INVARIANT_BROKER`` names another."""
    return replace(settings.invariant, broker=settings.invariant.broker or "sql")


class Shop:
    """All of shop in one process. ``async with Shop(settings) as shop:`` starts it."""

    def __init__(self, settings: ShopSettings, *, modules: Sequence[ModuleFactory] | None = None,
                 clock: Clock = utc_now, storage: EventStorage | None = None,
                 broker: Broker | None = None, consumer_backoff: RetryPolicy | None = None,
                 read_models: ReadModelDatabase | None = None) -> None:
        self.settings = settings.resolved()
        self.clock = clock
        self.tokens = Tokens(self.settings.secret, self.settings.token_ttl, clock=clock)
        self.modules: list[Module] = [factory(self) for factory in
                                      (default_modules() if modules is None else modules)]
        names = [m.name for m in self.modules]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"a module is registered twice: {sorted(names)}")
        directories = [m.accounts for m in self.modules if m.accounts is not None]
        if len(directories) > 1:
            raise ConfigurationError("more than one module gives the accounts tokens are "
                                     "checked against; one context owns accounts")
        self.accounts: AccountDirectory | None = directories[0] if directories else None
        """Who access tokens are checked against (None: no accounts, every token is 401)."""
        commands = _merge("command", {m.name: m.commands for m in self.modules})
        queries = _merge("query", {m.name: m.queries for m in self.modules})
        # The shop runs its own relay (after its consumers declared their groups), so the
        # application is built without one.
        self.owns_storage = storage is None
        storage = storage if storage is not None else open_storage(self.settings.invariant)
        self.owns_read_models = read_models is None
        self.read_models: ReadModelDatabase = read_models if read_models is not None else (
            open_read_models(self.settings.invariant, storage))
        self.app: App = bootstrap(
            replace(self.settings.invariant, broker=None, broker_url=None),
            events=[e for m in self.modules for e in m.events],
            command_handlers=commands,
            query_handlers=lambda app: queries,
            projections=[p for m in self.modules for p in m.projections],
            storage=storage,
            read_models=self.read_models,
            # Many customers may reserve the last units of one product at once: a command
            # that lost a race is run again on fresh state, up to COMMAND_RETRIES times.
            middleware=default_middleware(storage, retries=COMMAND_RETRIES),
        )
        self.broker: Broker = broker if broker is not None else open_broker(
            invariant_settings(self.settings), self.read_models)
        """``INVARIANT_BROKER`` (default ``sql``: durable, in the shop's own database)."""
        self.broker_watch = BrokerWatch(self.broker)
        """The broker as the relay and the consumers use it: it tells whether it answers."""
        self.relay = OutboxRelay(self.read_models, self.broker_watch)
        self.consumers = [Consumer(name, self.read_models, handler, backoff=consumer_backoff)
                          for m in self.modules for name, handler in m.consumers.items()]
        self.jobs = JobWorker(self.read_models, _merge("job", {m.name: m.jobs
                                                               for m in self.modules}))
        managers = [p for m in self.modules for p in m.processes]
        self.processes = ProcessRunner(self.app.store, self.read_models, self.app.commands,
                                       managers, commands=list(commands), clock=clock)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._stack = contextlib.AsyncExitStack()

    @property
    def commands(self) -> Any:
        """The command bus (every context's commands)."""
        return self.app.commands

    @property
    def queries(self) -> Any:
        """The query bus."""
        return self.app.queries

    async def __aenter__(self) -> Shop:
        try:
            await self._start()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def _start(self) -> None:
        self.app.owns_storage = self.owns_storage
        if self.owns_read_models:
            self._stack.push_async_callback(self.read_models.close)
        await self._stack.enter_async_context(self.app)
        for module in self.modules:
            if module.tables is not None:
                await self.read_models.run(module.tables.create_all)
        for module in self.modules:
            if module.setup is not None:
                await module.setup(self)
        for module in self.modules:
            if module.lifespan is not None:
                await self._stack.enter_async_context(module.lifespan(self))
        await self.broker.connect()
        self._stack.push_async_callback(self.broker.close)
        for consumer in self.consumers:  # declared before anything is relayed to them
            await consumer.setup()
            await consumer.declare(self.broker)
        await self.relay.setup()
        await self.jobs.setup()
        await self.processes.setup()
        self._stop.clear()
        self._spawn(self.relay.run(stop=self._stop), "relay")
        for consumer in self.consumers:
            self._spawn(consumer.consume(self.broker_watch, stop=self._stop, poll=0.2),
                        f"consumer {consumer.name}")
        self._spawn(self.jobs.run(stop=self._stop, idle=0.1), "jobs")
        self._spawn(self.processes.run(), "processes")

    def _spawn(self, work: Any, name: str) -> None:
        task = asyncio.create_task(work, name=name)
        task.add_done_callback(_report_crash)
        self._tasks.append(task)

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        for task in self._tasks:
            if task.get_name() == "processes":
                task.cancel()
        try:
            for task in self._tasks:
                # Given 10 s to stop, then cancelled. A crash was logged by _report_crash;
                # a cancellation of this shutdown itself propagates (after the closing).
                if not await wait_briefly(task, 10):
                    with contextlib.suppress(Exception):
                        await stop_task(task)
        finally:
            self._tasks.clear()
            await self._stack.aclose()


def _report_crash(task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("the %s worker stopped: %r", task.get_name(), exc, exc_info=exc)


def _merge(kind: str, parts: Mapping[str, Mapping[Any, Any]]) -> dict[Any, Any]:
    merged: dict[Any, Any] = {}
    owner: dict[Any, str] = {}
    for module, handlers in parts.items():
        for key, handler in handlers.items():
            if key in merged:
                raise ConfigurationError(
                    f"{kind} {getattr(key, '__name__', key)} is handled by both "
                    f"{owner[key]} and {module}; one context owns each {kind}")
            merged[key], owner[key] = handler, module
    return merged
