"""What a bounded context gives the platform: one :class:`Module` per context.

Each context package has ``module(shop) -> Module`` in its ``__init__``. The factory runs
before anything is started; handlers and routes close over ``shop`` and use its parts
(``shop.app``, ``shop.read_models``, ``shop.tokens``) when they run. State-stored
contexts keep their rows in ``shop.read_models`` (one synchronous transaction each, safe
beside the event store's writer on SQLite).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from sqlalchemy import MetaData

from invariant.application import Command, Query
from invariant.domain import DomainEvent
from invariant.messaging.consumer import Handler
from invariant.messaging.jobs import JobHandler
from invariant.messaging.published_language import IntegrationEvent
from invariant.processes import ProcessManager
from invariant.projections import Projection
from shop.platform.auth import AccountDirectory, SignIn

if TYPE_CHECKING:
    from shop.platform.runtime import Shop


@dataclass(frozen=True)
class Module:
    """A bounded context's contribution to the running shop.

    * ``events``: its domain event classes (event-sourced contexts).
    * ``commands``: ``{Command type: async def handle(command, uow)}`` on the shared bus.
    * ``queries``: ``{Query type: async def handle(query)}`` on the shared query bus.
    * ``projections``: read models fed from the event log.
    * ``processes``: process managers (they send commands of any context).
    * ``consumers``: ``{group name: handler(conn, message)}``: integration messages from
      the broker, each applied once (inbox) or parked after retries (dead letters).
    * ``jobs``: ``{job name: async def run(job)}`` for the background job worker.
    * ``integration_events``: the published language this context owns.
    * ``router``: its HTTP routes.
    * ``tables``: its own tables in ``shop.read_models``, created at start-up when missing
      (before any ``setup``).
    * ``setup``: idempotent start-up work (e.g. seed data), after the store is ready.
    * ``lifespan``: a service that runs while the shop runs (e.g. the local mail sink).
    * ``accounts``: the accounts access tokens are checked against (identity; at most one
      module gives them).
    * ``sign_in``: email and password to access token (identity), for the console's form.
    """

    name: str
    events: Sequence[type[DomainEvent]] = ()
    commands: Mapping[type[Command], Callable[..., Awaitable[Any]]] = field(
        default_factory=dict)
    queries: Mapping[type[Query], Callable[[Any], Awaitable[Any]]] = field(
        default_factory=dict)
    projections: Sequence[Projection] = ()
    processes: Sequence[ProcessManager] = ()
    consumers: Mapping[str, Handler] = field(default_factory=dict)
    jobs: Mapping[str, JobHandler] = field(default_factory=dict)
    integration_events: Sequence[type[IntegrationEvent]] = ()
    router: APIRouter | None = None
    tables: MetaData | None = None
    setup: Callable[[Shop], Awaitable[None]] | None = None
    lifespan: Callable[[Shop], AbstractAsyncContextManager[None]] | None = None
    accounts: AccountDirectory | None = None
    sign_in: SignIn | None = None


ModuleFactory = Callable[["Shop"], Module]
