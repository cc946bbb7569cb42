"""Commands, queries and what dispatching a command returns."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from uuid import UUID

R = TypeVar("R")


@dataclass(frozen=True, kw_only=True)
class Command(Generic[R]):
    """Base for commands: imperative names (``DepositMoney``), immutable, declared as frozen
    dataclasses. Every command carries an id; sending the same id again is handled once.

    ``R`` is what its handler returns: ``class OpenAccount(Command[str])`` is handled by an
    ``async def (OpenAccount, UnitOfWork) -> str``, and dispatching it gives a
    ``CommandResult[str]``."""

    command_id: UUID = field(default_factory=uuid.uuid4)

    def validate(self) -> None:
        """Raise :class:`~invariant.errors.ValidationError` when the command is malformed."""

    def sequence_key(self) -> str | None:
        """Commands with the same key are handled one at a time in a process, from their
        load to their commit (:class:`~invariant.application.middleware.SequenceMiddleware`);
        None (the default): no such order. For a handler that talks to the outside world
        between loading and committing, whose retry after a lost race cannot undo what it
        did: e.g. a refund must not close a payment while a charge of it waits for the
        provider."""
        return None


@dataclass(frozen=True)
class Query:
    """Base for queries, answered with read models or DTOs (never aggregates)."""

    def validate(self) -> None:
        """Raise :class:`~invariant.errors.ValidationError` when the query is malformed."""


@dataclass(frozen=True, slots=True)
class CommandResult(Generic[R]):
    """What a command did, with what a client needs to read its own writes.

    ``position`` is the global position of the last event written (wait for projections to
    reach it); ``versions`` the new version of every stream written. ``duplicate`` is true
    when the command id had been handled before and this is the first outcome again (its
    ``value`` is then the JSON form of what the handler returned).
    """

    command_id: UUID
    value: R
    position: int
    versions: dict[str, int]
    duplicate: bool = False
    retries: int = 0


def type_name(message: Any) -> str:
    return type(message).__qualname__
