"""The one composition root: settings and modules in, a :class:`Host` out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from invariant.application.messages import Command
from invariant.application.middleware import default_middleware
from invariant.clock import Clock, utc_now
from invariant.config import Settings
from invariant.domain.errors import ConfigurationError
from invariant.hosting.adapters import open_broker, open_read_models, open_storage
from invariant.hosting.application import build_app
from invariant.hosting.composition import Composition, compose
from invariant.hosting.host import Host
from invariant.hosting.module import Module
from invariant.hosting.roles import ALL_ROLES, Role, roles_from
from invariant.retry import RetryPolicy
from invariant.store.memory import MemoryStorage
from invariant.store.port import EventStorage

if TYPE_CHECKING:
    from invariant.messaging.port import Broker
    from invariant.processes import ProcessManager, ProcessRunner
    from invariant.projections import ReadModelDatabase

COMMAND_RETRIES = 3
"""How often a command that lost a race is run again on fresh state, by default."""


def bootstrap(settings: Settings, modules: Sequence[Module],
              roles: Iterable[Role | str] = ALL_ROLES, *,
              storage: EventStorage | None = None,
              read_models: ReadModelDatabase | None = None,
              broker: Broker | None = None,
              clock: Clock = utc_now,
              command_retries: int = COMMAND_RETRIES,
              consumer_backoff: RetryPolicy | None = None) -> Host:
    """The host of ``modules`` running ``roles`` (all of them by default: the embedded
    mode). A service runs the same call with its own module and the roles it is for.

    ``storage``, ``read_models`` and ``broker`` replace what ``settings`` would open (the
    caller then closes them); ``clock`` drives the process runner;
    ``command_retries`` is how often a command that lost a race runs again on fresh state;
    ``consumer_backoff`` how consumers retry a failing message before parking it.
    Nothing is started: ``async with host:`` does.
    """
    wanted = roles_from(roles)
    composition = compose(modules)
    owns_storage = storage is None
    storage = storage if storage is not None else open_storage(settings)
    owns_read_models = read_models is None
    if read_models is None and _needs_database(composition, wanted):
        _refuse_memory(storage, wanted)
        read_models = open_read_models(settings, storage)
    app = build_app(
        replace(settings, broker=None, broker_url=None),  # the host runs the relay itself
        events=composition.events, command_handlers=composition.commands,
        query_handlers=lambda app: composition.queries,
        projections=composition.projections if Role.PROJECTIONS in wanted else (),
        storage=storage, read_models=read_models,
        middleware=default_middleware(storage, retries=command_retries))
    app.owns_storage = owns_storage
    host = Host(app, composition, wanted, read_models=read_models,
                owns_read_models=owns_read_models)
    if read_models is not None:
        _add_workers(host, settings, read_models, broker, clock, consumer_backoff)
    return host


def _needs_database(composition: Composition, roles: frozenset[Role]) -> bool:
    return Role.RELAY in roles or any(
        m.tables is not None or m.projections or m.consumers or m.jobs or m.processes
        for m in composition.modules)


def _refuse_memory(storage: EventStorage, roles: frozenset[Role]) -> None:
    if isinstance(storage, MemoryStorage):
        relay = " (or leave out the relay role)" if Role.RELAY in roles else ""
        raise ConfigurationError(
            "tables, projections, the relay, consumers, jobs and processes live in the event "
            f"store's database; set INVARIANT_STORE=sqlite or postgres{relay}")


def _add_workers(host: Host, settings: Settings, read_models: ReadModelDatabase,
                 broker: Broker | None, clock: Clock, backoff: RetryPolicy | None) -> None:
    composition, roles = host.composition, host.roles
    consumers = composition.consumers if Role.CONSUMERS in roles else {}
    runner = _process_runner(host, read_models, clock)
    receivers = _accepted(composition) if Role.COMMANDS in roles else {}
    feeds = [m for m in composition.processes if runner is not None and runner.remote(m)]
    if Role.RELAY in roles or consumers or receivers or feeds:
        from invariant.hosting.broker_watch import BrokerWatch
        from invariant.messaging.consumer import Consumer

        host.broker = broker if broker is not None else open_broker(settings, read_models)
        host.broker_watch = BrokerWatch(host.broker)
        host.consumers = [Consumer(name, read_models, handler, backoff=backoff)
                          for name, handler in consumers.items()]
    if receivers or feeds:
        _add_remote_parts(host, read_models, runner, receivers, feeds, backoff)
    if Role.RELAY in roles:
        from invariant.messaging.relay import OutboxRelay

        assert host.broker_watch is not None
        host.relay = OutboxRelay(read_models, host.broker_watch)
    if Role.JOBS in roles and composition.jobs:
        from invariant.messaging.jobs import JobWorker

        host.jobs = JobWorker(read_models, composition.jobs)
    host.processes = runner


def _process_runner(host: Host, read_models: ReadModelDatabase, clock: Clock
                    ) -> ProcessRunner | None:
    composition = host.composition
    if Role.PROCESSES not in host.roles or not composition.processes:
        return None
    from invariant.processes import ProcessRunner

    return ProcessRunner(host.app.store, read_models, host.commands, composition.processes,
                         commands=list(composition.commands), clock=clock,
                         local_events={e.event_type for e in composition.events},
                         local_commands={c.__qualname__ for c in composition.commands})


def _accepted(composition: Composition) -> dict[str, list[type[Command[Any]]]]:
    return {f"commands-{m.name}": list(m.accepts) for m in composition.modules if m.accepts}


def _add_remote_parts(host: Host, read_models: ReadModelDatabase,
                      runner: ProcessRunner | None,
                      receivers: dict[str, list[type[Command[Any]]]],
                      feeds: list[ProcessManager], backoff: RetryPolicy | None) -> None:
    """A service's links to the others through the broker (see :mod:`.remote`)."""
    from invariant.hosting.remote import CommandReceiver, CommandSender, ProcessFeed

    assert host.broker_watch is not None
    for name, accepted in receivers.items():
        host.consumers.append(CommandReceiver(name, read_models, host.commands, accepted,
                                              backoff=backoff))
    if runner is not None:
        runner.dispatcher.forward = CommandSender(host.broker_watch)
        host.consumers.extend(ProcessFeed(runner, manager, read_models, backoff=backoff)
                              for manager in feeds)
