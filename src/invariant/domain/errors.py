"""The one exception tree of invariant.

Everything invariant raises on purpose derives from :class:`InvariantError`::

    InvariantError
    ├── DomainError                 a business rule refused the operation
    │   ├── ValidationError         a value is malformed (carries field errors)
    │   │   └── NegativeAmountError
    │   └── CurrencyMismatchError
    ├── NotFoundError               the thing asked for does not exist
    │   └── AggregateNotFoundError
    ├── ConflictError               the operation raced another one or repeats one
    │   ├── ConcurrencyError        expected version did not match (retry the command)
    │   ├── DuplicateEventError     an event id is already stored
    │   ├── DuplicateCommandError   a command id was already handled
    │   └── UniquenessError         a value that must be unique is already taken
    ├── ConfigurationError          the program is wired wrongly (fix the code or settings)
    │   └── MissingExtraError       an adapter's extra is not installed (invariant.extras)
    ├── SerializationError          data could not be encoded or decoded
    ├── StoreError                  the storage failed (see the chained driver error)
    ├── ProjectionError             a read model cannot give what was asked of it
    │   ├── ProjectionLagError      it did not reach a position in time (wait_until)
    │   └── ProjectionFailedError   it stopped at an event its handler keeps failing on
    ├── DetailsNotLoaded            a lean page's event was asked for what it did not load
    ├── MessagingError              publishing or consuming failed
    │   ├── BrokerError             the broker refused or did not confirm (retry it)
    │   └── PermanentMessageError   no retry can handle the message (parked at once)
    │       └── UnsupportedVersionError
    ├── BodyTooLarge                a request body passed the HTTP cap (answered 413)
    ├── UnavailableError            another service a call needs does not answer now
    │                               (``retry_after``: seconds worth waiting; see
    │                               :mod:`invariant.resilience`)
    └── OutcomeUnknownError         a call that may not be repeated got no answer: it
                                    may have been carried out (HTTP 504, never retried)

This module holds the tree's root and every branch domain code may raise or catch, in the
standard-library-only domain package; :mod:`invariant.errors` re-exports them for
application code. The last three live beside their adapters, which alone raise them:
``DetailsNotLoaded`` in :mod:`invariant.store.event_store`, the messaging errors in
:mod:`invariant.messaging.errors`, ``BodyTooLarge`` in :mod:`invariant.http.limits`.
``tests/test_error_tree.py`` fails when invariant raises anything outside the tree on
purpose.
"""

from __future__ import annotations

from dataclasses import dataclass


class InvariantError(Exception):
    """Base of every error invariant raises on purpose."""


class DomainError(InvariantError):
    """A business rule refused the operation; the message says which rule."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field: where, what, and a stable machine-readable code."""

    field: str
    message: str
    code: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "code": self.code}


class ValidationError(DomainError):
    """A value is malformed. ``errors`` lists every problem found, not only the first."""

    def __init__(self, errors: list[FieldError] | FieldError, *, subject: str = "value") -> None:
        self.errors: tuple[FieldError, ...] = (
            (errors,) if isinstance(errors, FieldError) else tuple(errors)
        )
        self.subject = subject
        details = "; ".join(f"{e.field}: {e.message}" for e in self.errors)
        super().__init__(f"invalid {subject}: {details}")

    def to_json(self) -> dict[str, object]:
        """``{"subject": ..., "errors": [{"field", "message", "code"}, ...]}``."""
        return {"subject": self.subject, "errors": [e.to_json() for e in self.errors]}

    @classmethod
    def single(
        cls, field: str, message: str, code: str, *, subject: str = "value"
    ) -> ValidationError:
        return cls([FieldError(field, message, code)], subject=subject)


class NegativeAmountError(ValidationError):
    """A money amount was negative where the domain forbids it."""


class CurrencyMismatchError(DomainError):
    """Two amounts in different currencies were combined."""

    def __init__(self, left: str, right: str) -> None:
        self.left = left
        self.right = right
        super().__init__(
            f"cannot combine {left} with {right}: convert one amount first"
        )


class NotFoundError(InvariantError):
    """The requested thing does not exist."""


class ConflictError(InvariantError):
    """The operation conflicts with another one; it may succeed when retried or is a repeat."""


class ConcurrencyError(ConflictError):
    """A stream (or stored aggregate) was changed by someone else since it was read.

    Reload and retry the command; :class:`~invariant.application.UnitOfWork` runners can do
    that for you with ``retries=``.
    """

    def __init__(self, stream_id: str, expected: int | None, actual: int) -> None:
        self.stream_id = stream_id
        self.expected = expected
        """The version the writer expected: an int, 0 when the stream was expected not to
        exist yet (the event store's ``StreamState.NO_STREAM``), or None when any version
        would have done (``StreamState.ANY``, refused only after losing repeated races)."""
        self.actual = actual
        """The version the stream (or row) had: an int, 0 when it does not exist."""
        wanted = ("any version" if expected is None
                  else "version 0 (no stream yet)" if expected == 0 else f"version {expected}")
        super().__init__(
            f"concurrency conflict on stream {stream_id!r}: expected {wanted}, "
            f"actual version {actual}; reload the aggregate and retry the command"
        )


class DuplicateEventError(ConflictError):
    """An appended event id is already stored; nothing of that append was written."""

    def __init__(self, event_ids: list[str]) -> None:
        self.event_ids = event_ids
        super().__init__(
            f"event id(s) already stored: {', '.join(event_ids)}; every event needs a new id "
            "(nothing of this append was written)"
        )


class UniquenessError(ConflictError):
    """A value that must be unique (an email, a SKU) is already taken by another record.

    ``fields`` names the field(s) of the unique constraint; the value itself is not repeated
    in the message, as it may be personal data.
    """

    def __init__(self, subject: str, fields: tuple[str, ...]) -> None:
        self.subject = subject
        self.fields = fields
        names = ", ".join(fields) or "a unique value"
        super().__init__(
            f"another {subject} already has this {names}; choose a different {names} "
            "or update the existing one"
        )


class DuplicateCommandError(ConflictError):
    """A command id was already handled; its stored outcome is what the sender gets back."""

    def __init__(self, command_id: str) -> None:
        self.command_id = command_id
        super().__init__(
            f"command {command_id} was already handled; nothing was changed again"
        )


class AggregateNotFoundError(NotFoundError):
    """No stream exists for the aggregate id asked for."""

    def __init__(self, aggregate_type: str, aggregate_id: str) -> None:
        self.aggregate_type = aggregate_type
        self.aggregate_id = aggregate_id
        super().__init__(f"{aggregate_type} {aggregate_id!r} does not exist")


class ConfigurationError(InvariantError):
    """The program is wired wrongly; the message says what to register or set."""


class SerializationError(InvariantError):
    """Data could not be encoded to, or decoded from, its stored form."""


class StoreError(InvariantError):
    """The storage failed; the driver's error is chained as ``__cause__``."""


class ProjectionError(InvariantError):
    """A projection (read model) cannot give what was asked of it."""


class ProjectionLagError(ProjectionError):
    """A projection did not reach the wanted position within the time allowed.

    The read model is behind, not broken: retry later, raise the timeout, or read from the
    write side when the caller needs its own write.
    """

    def __init__(self, projection: str, reached: int, wanted: int, timeout: float) -> None:
        self.projection = projection
        self.reached = reached
        self.wanted = wanted
        self.timeout = timeout
        super().__init__(
            f"projection {projection!r} reached position {reached}, not {wanted}, within "
            f"{timeout:g} s; it is behind (see `invariant projections status`): retry later "
            "or allow a longer timeout"
        )


class ProjectionFailedError(ProjectionError):
    """A projection stopped at an event its handler failed on; it will not move until
    the handler is fixed and the projection is resumed or rebuilt."""

    def __init__(self, projection: str, position: int | None, error: str) -> None:
        self.projection = projection
        self.position = position
        self.error = error
        super().__init__(
            f"projection {projection!r} is stopped at event {position}: {error}; fix the "
            "handler, then resume or rebuild it (`invariant projections rebuild`)"
        )


class OutcomeUnknownError(InvariantError):
    """A call that may not be repeated (a POST) reached another service, or may have, and
    no answer came back: it timed out, or the connection broke. It may or may not have
    taken effect there, so it is not retried and is not an :class:`UnavailableError`
    (which promises that nothing was decided): read the state it would have changed
    before sending it again."""

    def __init__(self, service: str, request: str, reason: str) -> None:
        self.service = service
        self.request = request
        super().__init__(
            f"{service} gave no answer to {request} ({reason}), and it may have been carried "
            "out: look at what it was to change (e.g. GET it) before sending it again")


class UnavailableError(InvariantError):
    """Another service a call needs does not answer now: it is down, slow, overloaded or
    failing. Nothing was decided by it; the same call may succeed after ``retry_after``
    seconds."""

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        self.retry_after = retry_after
        super().__init__(message)
