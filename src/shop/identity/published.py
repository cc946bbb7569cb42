"""identity's published language: the integration events other contexts may consume, and
the seal that carries a one-time code to the notifications context.

=================================  =========================================================
``identity.user_registered`` v1    ``user_id, email, registered_at``
``identity.verification_code_issued``  ``user_id, email, sealed_code, expires_at``
  v1
``identity.user_verified`` v1      ``user_id, email``
``identity.password_changed`` v1   ``user_id, email, changed_at``
=================================  =========================================================

``sealed_code`` is the 6-digit code encrypted and authenticated with :class:`CodeSeal`
(Fernet: AES-128-CBC + HMAC-SHA256, with a key derived from ``SHOP_SECRET`` by HKDF-SHA256
for this one purpose). The broker, the outbox, the consumer inbox, dead letters and the
job table only ever see the sealed form; opening it needs the shop's secret, and a sealed
code stops opening once its time-to-live is over.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import ClassVar

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from invariant.messaging.published_language import IntegrationEvent, UtcTime

SOURCE = "identity"
_SEAL_PURPOSE = b"shop identity: sealed one-time codes v1"


class UserRegistered(IntegrationEvent):
    """A customer signed up (not verified yet); ``user_id`` is the customer id."""

    event_name: ClassVar[str] = "identity.user_registered"
    event_version: ClassVar[int] = 1

    user_id: str
    email: str
    registered_at: UtcTime


class VerificationCodeIssued(IntegrationEvent):
    """A one-time code was made for ``email``; it is only in ``sealed_code`` (see
    :class:`CodeSeal`), and works until ``expires_at``."""

    event_name: ClassVar[str] = "identity.verification_code_issued"
    event_version: ClassVar[int] = 1

    user_id: str
    email: str
    sealed_code: str
    expires_at: UtcTime


class UserVerified(IntegrationEvent):
    """The user proved they own ``email``: they may log in now."""

    event_name: ClassVar[str] = "identity.user_verified"
    event_version: ClassVar[int] = 1

    user_id: str
    email: str


class PasswordChanged(IntegrationEvent):
    """The user's password was changed (they are told by email, in case it was not them)."""

    event_name: ClassVar[str] = "identity.password_changed"
    event_version: ClassVar[int] = 1

    user_id: str
    email: str
    changed_at: UtcTime


PUBLISHED: tuple[type[IntegrationEvent], ...] = (
    UserRegistered, VerificationCodeIssued, UserVerified, PasswordChanged)


class SealError(Exception):
    """A sealed code could not be opened: tampered with, sealed with another secret, or
    older than its time-to-live."""


class CodeSeal:
    """Seals one-time codes for the trip identity → outbox → broker → notifications → email.

    The key is derived from the shop's secret (HKDF-SHA256, a purpose-specific ``info``), so
    it is never the token-signing key and a leaked sealed code reveals nothing without it.
    """

    def __init__(self, secret: str) -> None:
        if len(secret) < 32:
            raise ValueError("the seal secret must be at least 32 characters")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=_SEAL_PURPOSE).derive(secret.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, code: str, now: datetime) -> str:
        """``code`` encrypted and authenticated, stamped with ``now``."""
        return self._fernet.encrypt_at_time(code.encode(), int(now.timestamp())).decode()

    def open(self, sealed: str, now: datetime, ttl: timedelta) -> str:
        """The code inside ``sealed`` if it was sealed at most ``ttl`` before ``now``."""
        try:
            plain = self._fernet.decrypt_at_time(sealed.encode(), int(ttl.total_seconds()),
                                                 int(now.timestamp()))
        except (InvalidToken, ValueError) as exc:
            raise SealError("the sealed code is invalid or has expired") from exc
        return plain.decode()
