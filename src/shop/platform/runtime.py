"""The running shop: settings, its modules, and invariant's host.

Embedded mode (the default): SQLite, a durable broker in the same database, and every
role in this process (the HTTP API, the projections, the process runner of fulfilment,
the outbox relay, the consumers and the job worker). ``roles`` and ``modules`` choose a
part of it: the same composition root runs one context as a service.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from invariant.application import CommandBus, QueryBus
from invariant.clock import Clock, utc_now
from invariant.config import Settings
from invariant.domain.errors import ConfigurationError
from invariant.hosting import ALL_ROLES, App, Host, Role, bootstrap
from invariant.messaging.consumer import Consumer
from invariant.messaging.jobs import JobWorker
from invariant.messaging.port import Broker
from invariant.projections import ReadModelDatabase
from invariant.retry import RetryPolicy
from invariant.store.port import EventStorage
from shop.config import ShopSettings
from shop.platform.auth import AccountDirectory, Tokens
from shop.platform.module import ACCOUNTS, Module, ModuleFactory

COMMAND_RETRIES = 10
"""Many customers may reserve the last units of one product at once: a command that lost
a race is run again on fresh state, up to this many times."""


def default_modules() -> list[ModuleFactory]:
    """Every bounded context of shop, in start-up order."""
    from shop.platform.contexts import CONTEXTS, wiring

    return [wiring(context) for context in CONTEXTS]


def invariant_settings(settings: ShopSettings) -> Settings:
    """invariant's settings as shop runs with them: its broker is ``sql`` (durable, in its
    own database) unless ``INVARIANT_BROKER`` names another."""
    return replace(settings.invariant, broker=settings.invariant.broker or "sql")


class Shop:
    """shop on one host. ``async with Shop(settings) as shop:`` starts it."""

    def __init__(self, settings: ShopSettings, *, modules: Sequence[ModuleFactory] | None = None,
                 roles: Iterable[Role | str] = ALL_ROLES, clock: Clock = utc_now,
                 storage: EventStorage | None = None, broker: Broker | None = None,
                 consumer_backoff: RetryPolicy | None = None,
                 read_models: ReadModelDatabase | None = None) -> None:
        self.settings = settings.resolved()
        self.clock = clock
        self.tokens = Tokens(self.settings.secret, self.settings.token_ttl, clock=clock)
        built = [factory(self) for factory in (default_modules() if modules is None
                                               else modules)]
        self.host: Host = bootstrap(
            invariant_settings(self.settings), built, roles, storage=storage,
            read_models=read_models, broker=broker, clock=clock,
            command_retries=COMMAND_RETRIES, consumer_backoff=consumer_backoff)
        directories = self.host.provided(ACCOUNTS)
        if len(directories) > 1:
            raise ConfigurationError("more than one module gives the accounts tokens are "
                                     "checked against; one context owns accounts")
        self.accounts: AccountDirectory | None = directories[0] if directories else None
        """Who access tokens are checked against (None: no accounts, every token is 401)."""

    @property
    def modules(self) -> tuple[Module, ...]:
        return self.host.modules

    @property
    def app(self) -> App:
        return self.host.app

    @property
    def read_models(self) -> ReadModelDatabase:
        if self.host.read_models is None:
            raise ConfigurationError("no module of this shop keeps a read-model database")
        return self.host.read_models

    @property
    def commands(self) -> CommandBus:
        """The command bus (every context's commands)."""
        return self.host.commands

    @property
    def queries(self) -> QueryBus:
        """The query bus."""
        return self.host.queries

    @property
    def broker(self) -> Broker | None:
        """``INVARIANT_BROKER`` (default ``sql``: durable, in the shop's own database)."""
        return self.host.broker

    @property
    def consumers(self) -> list[Consumer]:
        return self.host.consumers

    @property
    def jobs(self) -> JobWorker | None:
        return self.host.jobs

    async def __aenter__(self) -> Shop:
        await self.host.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.host.__aexit__(*exc)
