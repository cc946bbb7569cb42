"""Command and query buses: explicit handlers, checked at start-up, with middleware."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from invariant.application.messages import Command, CommandResult, Query
from invariant.application.unit_of_work import Aggregates, UnitOfWork, fresh_attempt
from invariant.domain.aggregate import AggregateRoot
from invariant.domain.errors import ConfigurationError
from invariant.store.records import CommandRecord
from invariant.telemetry.correlation import correlation_id

C = TypeVar("C", bound=Command[Any])
R = TypeVar("R")

CommandHandler = Callable[[C, UnitOfWork], Awaitable[R]]
"""``async def handle(command: C, uow) -> R``: handles one command type ``C`` whose result
type is ``R`` (``C`` is a ``Command[R]``)."""
AnyCommandHandler = CommandHandler[Any, Any]
"""A handler of some command type, as a registry of several types keeps it."""
QueryHandler = Callable[[Any], Awaitable[Any]]


@dataclass(slots=True)
class Dispatch:
    """One command on its way through the middleware to its handler."""

    command: Command[Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    record_outcome: bool = False
    """Set by the idempotency middleware: write the command record in the same commit."""
    attempt: int = 0


Next = Callable[[Dispatch], Awaitable[CommandResult[Any]]]
Middleware = Callable[[Dispatch, Next], Awaitable[CommandResult[Any]]]


def _check_handler(message_type: type, handler: Callable[..., Any], base: type, role: str
                   ) -> None:
    """Refuse at start-up what would fail at first use: wrong types, sync handlers."""
    if not (isinstance(message_type, type) and issubclass(message_type, base)):
        raise ConfigurationError(f"{message_type!r} is not a {base.__name__} subclass")
    target: Any = handler
    if not (inspect.isfunction(handler) or inspect.ismethod(handler)
            or isinstance(handler, functools.partial)):
        target = getattr(handler, "__call__", None)  # noqa: B004 - a handler object
    if target is None or not inspect.iscoroutinefunction(target):
        raise ConfigurationError(
            f"the {role} for {message_type.__name__} must be an async function, got {handler!r}"
        )
    if isinstance(target, functools.partial):
        return  # bound arguments: nothing reliable to compare
    try:
        hints = typing.get_type_hints(target)
    except (NameError, TypeError):
        return  # unresolvable annotations: nothing to check against
    params = [p for p in inspect.signature(target).parameters.values() if p.name != "self"]
    declared = hints.get(params[0].name) if params else None
    if isinstance(declared, type) and not issubclass(message_type, declared):
        raise ConfigurationError(
            f"{getattr(handler, '__qualname__', handler)} is registered for "
            f"{message_type.__name__} but takes {declared.__name__}"
        )


class CommandBus:
    """Dispatches each command type to its one handler, in a unit of work.

    ``handlers`` maps command types to ``async def handle(command, uow) -> value``. Pass every
    command type the application defines as ``commands``: one without a handler is an error
    here, at start-up, not at first use.
    """

    def __init__(
        self,
        aggregates: Aggregates,
        handlers: Mapping[type[Command[Any]], AnyCommandHandler],
        *,
        middleware: Sequence[Middleware] = (),
        commands: Iterable[type[Command[Any]]] = (),
    ) -> None:
        for command_type, handler in handlers.items():
            _check_handler(command_type, handler, Command, "command handler")
        missing = sorted(c.__qualname__ for c in commands if c not in handlers)
        if missing:
            raise ConfigurationError(f"no handler registered for command(s): {', '.join(missing)}")
        self._aggregates = aggregates
        self._handlers = dict(handlers)
        self._middleware = tuple(middleware)

    @property
    def aggregates(self) -> Aggregates:
        return self._aggregates

    async def dispatch(self, command: Command[R], *, metadata: Mapping[str, Any] | None = None
                       ) -> CommandResult[R]:
        """Run the command through the middleware and its handler; commit its changes.
        The result's ``value`` is what the handler returned (its JSON form when the command
        id was handled before: ``duplicate``)."""
        if type(command) not in self._handlers:
            raise ConfigurationError(
                f"no handler registered for {type(command).__qualname__}; register it when "
                "building the CommandBus"
            )
        # A command sent while a flow is handled (a request, a message) belongs to it.
        meta = {"correlation_id": correlation_id() or str(command.command_id),
                **(metadata or {})}
        meta.setdefault("causation_id", str(command.command_id))
        dispatch = Dispatch(command, meta)
        # The handler registered for type(command) returns R (see CommandHandler).
        return cast(CommandResult[R], await self._chain(0)(dispatch))

    def _chain(self, index: int) -> Next:
        if index == len(self._middleware):
            return self._handle
        middleware = self._middleware[index]
        rest = self._chain(index + 1)

        async def step(dispatch: Dispatch) -> CommandResult[Any]:
            return await middleware(dispatch, rest)

        return step

    async def _handle(self, dispatch: Dispatch) -> CommandResult[Any]:
        command = dispatch.command
        handler = self._handlers[type(command)]

        async def attempt(uow: UnitOfWork) -> CommandResult[Any]:
            value = await handler(command, uow)
            record = (
                CommandRecord(command.command_id, type(command).__qualname__, value)
                if dispatch.record_outcome else None
            )
            result = await uow.commit(command=record)
            return CommandResult(command.command_id, value, result.position, result.versions,
                                 retries=dispatch.attempt)

        return await fresh_attempt(
            lambda: self._aggregates.unit_of_work(dispatch.metadata), attempt
        )


class QueryBus:
    """Answers each query type with its one handler (``async def handle(query) -> dto``)."""

    def __init__(
        self,
        handlers: Mapping[type[Query], QueryHandler],
        *,
        queries: Iterable[type[Query]] = (),
        middleware: Sequence[Callable[[Query, QueryHandler], Awaitable[Any]]] = (),
    ) -> None:
        for query_type, handler in handlers.items():
            _check_handler(query_type, handler, Query, "query handler")
        missing = sorted(q.__qualname__ for q in queries if q not in handlers)
        if missing:
            raise ConfigurationError(f"no handler registered for query(ies): {', '.join(missing)}")
        self._handlers = dict(handlers)
        self._middleware = tuple(middleware)

    async def ask(self, query: Query) -> Any:
        """The read model or DTO that answers ``query``."""
        handler = self._handlers.get(type(query))
        if handler is None:
            raise ConfigurationError(f"no handler registered for {type(query).__qualname__}")
        query.validate()
        call: QueryHandler = handler
        for middleware in reversed(self._middleware):
            call = _wrap(middleware, call)
        result = await call(query)
        if isinstance(result, AggregateRoot):
            raise ConfigurationError(
                f"the handler for {type(query).__qualname__} returned an aggregate; query "
                "handlers return read models or DTOs"
            )
        return result


def _wrap(middleware: Callable[[Query, QueryHandler], Awaitable[Any]], inner: QueryHandler
          ) -> QueryHandler:
    async def call(query: Any) -> Any:
        return await middleware(query, inner)

    return call
