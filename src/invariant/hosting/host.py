"""A running process of an application: the parts its roles ask for, started and stopped
in order. Built by :func:`invariant.hosting.bootstrap`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from invariant.hosting import heap
from invariant.hosting.application import App
from invariant.hosting.composition import Composition
from invariant.hosting.module import Module, Provision
from invariant.hosting.roles import Role
from invariant.tasks import stop_task, wait_briefly

if TYPE_CHECKING:
    from fastapi import APIRouter

    from invariant.application.bus import CommandBus, QueryBus
    from invariant.hosting.broker_watch import BrokerWatch
    from invariant.messaging.consumer import Consumer
    from invariant.messaging.jobs import JobWorker
    from invariant.messaging.port import Broker
    from invariant.messaging.relay import OutboxRelay
    from invariant.processes import ProcessRunner
    from invariant.projections import ReadModelDatabase

log = logging.getLogger("invariant.host")
T = TypeVar("T")
STOP_GRACE = 10.0
JOBS_IDLE = 1.0
"""How often an idle job worker looks for jobs it was not woken for: delayed jobs (retries
back off a second or more), jobs another process enqueued, claims a dead worker left. A
job enqueued in this process wakes it at once, so a shorter poll buys nothing but a
transaction every poll in every process (ten a second at 0.1 s, each instance)."""
"""Seconds a worker has to finish its current work once asked to stop; then cancelled."""


class Host:
    """One process of an application: its modules, the application core they share (event
    store, buses, projections) and the workers of its roles. ``async with host:`` starts
    it and stops it; entering and leaving happen in this order:

    1. the storage, and the projections following the log (role ``projections``);
    2. every module's tables, then its ``setup``, then its ``lifespan``;
    3. the broker, the consumers' groups (declared before anything is relayed to them),
       the relay's, the job worker's and the process runner's tables;
    4. the workers: relay, consumers, jobs, processes.

    Leaving asks every worker to stop, gives it :data:`STOP_GRACE` seconds, and closes
    in the reverse order.
    """

    def __init__(self, app: App, composition: Composition, roles: frozenset[Role], *,
                 read_models: ReadModelDatabase | None, owns_read_models: bool,
                 broker: Broker | None = None, broker_watch: BrokerWatch | None = None,
                 relay: OutboxRelay | None = None, consumers: Sequence[Consumer] = (),
                 jobs: JobWorker | None = None, processes: ProcessRunner | None = None
                 ) -> None:
        self.app = app
        """The application core: storage, event store, aggregates, buses, projections."""
        self.composition = composition
        self.roles = roles
        self.read_models = read_models
        """The read-model database (None when nothing this host runs needs one)."""
        self.owns_read_models = owns_read_models
        self.broker = broker
        """The broker the relay and the consumers use, as opened (None: neither runs)."""
        self.broker_watch = broker_watch
        """The broker as the workers call it: it tells whether it answers."""
        self.relay = relay
        self.consumers = list(consumers)
        self.jobs = jobs
        self.processes = processes
        self.stopping = asyncio.Event()
        """Set when the host is asked to stop; long-running work watches it."""
        self._tasks: list[asyncio.Task[Any]] = []
        self._stack = contextlib.AsyncExitStack()

    @property
    def modules(self) -> tuple[Module, ...]:
        return self.composition.modules

    @property
    def commands(self) -> CommandBus:
        """The command bus: every module's commands."""
        return self.app.commands

    @property
    def queries(self) -> QueryBus:
        """The query bus: every module's queries."""
        return self.app.queries

    @property
    def routers(self) -> list[APIRouter]:
        """The modules' HTTP routes to serve (none unless the host has role ``http``)."""
        if Role.HTTP not in self.roles:
            return []
        return [m.router for m in self.modules if m.router is not None]

    def provided(self, key: Provision[T]) -> list[T]:
        """What the modules offer under ``key`` (see :attr:`Module.provides`)."""
        return self.composition.provided(key)

    def spawn(self, work: Coroutine[Any, Any, object], name: str) -> None:
        """Run ``work`` as a worker of this host: a crash is logged, and it is stopped with
        the others (it should return once :attr:`stopping` is set)."""
        task = asyncio.create_task(work, name=name)
        task.add_done_callback(_report_crash)
        self._tasks.append(task)

    async def __aenter__(self) -> Host:
        try:
            await self._start()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def _start(self) -> None:
        if self.read_models is not None and self.owns_read_models:
            self._stack.push_async_callback(self.read_models.close)
        await self._stack.enter_async_context(self.app)
        await self._start_modules()
        await self._set_workers_up()
        self.stopping.clear()
        self._spawn_workers()
        heap.settle()  # what start-up built lives as long as the process

    async def _start_modules(self) -> None:
        for module in self.modules:
            if module.tables is not None:
                assert self.read_models is not None
                await self.read_models.run(module.tables.create_all)
        for module in self.modules:
            if module.setup is not None:
                await module.setup(self)
        for module in self.modules:
            if module.lifespan is not None:
                await self._stack.enter_async_context(module.lifespan(self))

    async def _set_workers_up(self) -> None:
        if self.broker is not None:
            await self.broker.connect()
            self._stack.push_async_callback(self.broker.close)
        for consumer in self.consumers:
            await consumer.setup()
            assert self.broker is not None
            await consumer.declare(self.broker)
        if self.relay is not None:
            await self.relay.setup()
        if self.jobs is not None:
            await self.jobs.setup()
        if self.processes is not None:
            await self.processes.setup()

    def _spawn_workers(self) -> None:
        stop = self.stopping
        if self.relay is not None:
            self.spawn(self.relay.run(stop=stop), "relay")
        for consumer in self.consumers:
            assert self.broker_watch is not None
            self.spawn(consumer.consume(self.broker_watch, stop=stop, poll=0.2),
                       f"consumer {consumer.name}")
        if self.jobs is not None:
            self.spawn(self.jobs.run(stop=stop, idle=JOBS_IDLE), "jobs")
        if self.processes is not None:
            self.spawn(self.processes.run(), "processes")

    async def __aexit__(self, *exc: object) -> None:
        self.stopping.set()
        for task in self._tasks:
            if task.get_name() == "processes":  # it has no stop event: it is cancelled
                task.cancel()
        try:
            for task in self._tasks:
                # A crash was logged by _report_crash; a cancellation of this shutdown
                # itself propagates (after the closing).
                if not await wait_briefly(task, STOP_GRACE):
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
