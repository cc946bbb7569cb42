"""Application layer: buses, middleware, repositories and the unit of work."""

from invariant.application.bus import (
    AnyCommandHandler,
    CommandBus,
    CommandHandler,
    Dispatch,
    QueryBus,
)
from invariant.application.messages import Command, CommandResult, Query
from invariant.application.middleware import (
    IdempotencyMiddleware,
    LoggingMiddleware,
    RetryMiddleware,
    SequenceMiddleware,
    TracingMiddleware,
    ValidationMiddleware,
    default_middleware,
)
from invariant.application.repository import AggregateCache, Repository, SnapshotPolicy
from invariant.application.unit_of_work import Aggregates, Outcome, UnitOfWork

__all__ = [
    "AggregateCache",
    "Aggregates",
    "AnyCommandHandler",
    "Command",
    "CommandBus",
    "CommandHandler",
    "CommandResult",
    "Dispatch",
    "IdempotencyMiddleware",
    "LoggingMiddleware",
    "Outcome",
    "Query",
    "QueryBus",
    "Repository",
    "RetryMiddleware",
    "SequenceMiddleware",
    "SnapshotPolicy",
    "TracingMiddleware",
    "UnitOfWork",
    "ValidationMiddleware",
    "default_middleware",
]
