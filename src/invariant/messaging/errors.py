"""Messaging errors, under invariant's :class:`~invariant.errors.InvariantError`."""

from __future__ import annotations

from invariant.domain.errors import InvariantError


class MessagingError(InvariantError):
    """Something went wrong publishing or consuming messages."""


class BrokerError(MessagingError):
    """The broker refused or did not confirm an operation; the caller may retry it."""


class PermanentMessageError(MessagingError):
    """A message that no retry can handle (e.g. an unsupported version): it is parked in
    the dead-letter store at once."""


class UnsupportedVersionError(PermanentMessageError):
    """An integration event of a type or version this consumer does not support."""


class UnreadableMessageError(PermanentMessageError):
    """The broker delivered a body that is not an invariant message (bytes another program
    published, a corrupted body): it is parked with its bytes, never handled or replayed."""
