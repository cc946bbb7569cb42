"""invariant's exception tree (see :mod:`invariant.domain.errors` for the documented tree)."""

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
    SerializationError,
    StoreError,
    UniquenessError,
    ValidationError,
)

__all__ = [
    "AggregateNotFoundError",
    "ConcurrencyError",
    "ConfigurationError",
    "ConflictError",
    "CurrencyMismatchError",
    "DomainError",
    "DuplicateCommandError",
    "DuplicateEventError",
    "FieldError",
    "InvariantError",
    "NegativeAmountError",
    "NotFoundError",
    "SerializationError",
    "StoreError",
    "UniquenessError",
    "ValidationError",
]
