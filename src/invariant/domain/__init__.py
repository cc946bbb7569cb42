"""The pure domain kit: no I/O, standard library only."""

from invariant.domain.aggregate import AggregateRoot, applies, stream_id_for
from invariant.domain.entity import Entity
from invariant.domain.errors import (
    AggregateNotFoundError,
    ConcurrencyError,
    ConfigurationError,
    ConflictError,
    CurrencyMismatchError,
    DomainError,
    DuplicateCommandError,
    DuplicateEventError,
    FieldError,
    InvariantError,
    NegativeAmountError,
    NotFoundError,
    OutcomeUnknownError,
    ProjectionError,
    ProjectionFailedError,
    ProjectionLagError,
    SerializationError,
    StoreError,
    UnavailableError,
    UniquenessError,
    ValidationError,
)
from invariant.domain.events import DomainEvent
from invariant.domain.identity import Identity
from invariant.domain.money import Currency, Money
from invariant.domain.state_aggregate import StateAggregate
from invariant.domain.values import ValueObject

__all__ = [
    "AggregateNotFoundError",
    "AggregateRoot",
    "ConcurrencyError",
    "ConfigurationError",
    "ConflictError",
    "Currency",
    "CurrencyMismatchError",
    "DomainError",
    "DomainEvent",
    "DuplicateCommandError",
    "DuplicateEventError",
    "Entity",
    "FieldError",
    "Identity",
    "InvariantError",
    "Money",
    "NegativeAmountError",
    "NotFoundError",
    "OutcomeUnknownError",
    "ProjectionError",
    "ProjectionFailedError",
    "ProjectionLagError",
    "SerializationError",
    "StateAggregate",
    "StoreError",
    "UnavailableError",
    "UniquenessError",
    "ValidationError",
    "ValueObject",
    "applies",
    "stream_id_for",
]
