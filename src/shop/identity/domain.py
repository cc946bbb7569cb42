"""The identity domain: an account, its one-time verification code and the rules around it.

Pure: the standard library, invariant's domain kit and the shared kernel only. Secrets
never enter the model in the clear: an account holds its password *hash* (made by the
application's hasher) and the *digest* of its pending one-time code (a keyed hash made by
the application); the rules below compare digests in constant time.
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from invariant.domain import DomainError
from shop.kernel import CustomerId

Role = Literal["customer", "admin"]

CODE_TTL = timedelta(minutes=10)
"""How long a one-time code works after it was issued."""
MAX_WRONG_CODES = 5
"""Wrong tries a code survives; after that only a new code can verify the account."""
RESEND_INTERVAL = timedelta(seconds=60)
"""The shortest time between two codes for one account (the resend rate limit)."""


def email_key(email: str) -> str:
    """The form emails are compared (and kept unique) in: case-insensitive, trimmed."""
    return email.strip().lower()


class AlreadyVerified(DomainError):
    """The account is verified already: there is nothing to verify, no code to send."""

    def __init__(self) -> None:
        super().__init__("this account is already verified; log in with POST /identity/login")


class NotVerified(DomainError):
    """Logging in before verifying the email address."""

    def __init__(self) -> None:
        super().__init__(
            "verify your email address first: enter the 6-digit code we emailed you "
            "(POST /identity/verify), or ask for a new one (POST /identity/verification-code)")


MAX_LOGIN_FAILURES = 5
"""Wrong passwords for one email within :data:`LOGIN_WINDOW` that lock its log-in..."""
LOGIN_WINDOW = timedelta(minutes=15)
LOGIN_LOCKOUT = timedelta(minutes=15)
"""... for this long (known and unknown emails alike: no enumeration)."""


class TooManyLogIns(DomainError):
    """Log-in is locked for this email after too many wrong passwords."""

    def __init__(self, retry_after: timedelta) -> None:
        self.retry_after = retry_after
        seconds = max(1, round(retry_after.total_seconds()))
        super().__init__(f"too many wrong passwords for this email; try again in {seconds} s")


def login_locked(locked_until: datetime | None, now: datetime) -> None:
    """Refuse a log-in while the email's lock holds."""
    if locked_until is not None and now < locked_until:
        raise TooManyLogIns(locked_until - now)


class CodeRequestedTooSoon(DomainError):
    """A new code was asked for within :data:`RESEND_INTERVAL` of the last one."""

    def __init__(self, retry_after: timedelta) -> None:
        self.retry_after = retry_after
        seconds = max(1, round(retry_after.total_seconds()))
        super().__init__(f"a code was sent moments ago; you can ask for another in {seconds} s")


class Verification(enum.Enum):
    """What became of an attempt to verify an account with a code."""

    VERIFIED = "verified"
    WRONG = "wrong"
    EXPIRED = "expired"
    LOCKED = "locked"
    """Too many wrong tries: the code is dead, a new one is needed."""
    NO_CODE = "no_code"


@dataclass(frozen=True, slots=True)
class PendingCode:
    """The one-time code an account is waiting for (only its keyed digest)."""

    digest: str
    issued_at: datetime
    expires_at: datetime
    wrong_tries: int = 0

    def matches(self, digest: str) -> bool:
        """Whether ``digest`` is this code's, compared in constant time."""
        return hmac.compare_digest(self.digest, digest)


@dataclass(slots=True)
class Account:
    """A user account: who may log in, with which password hash and role."""

    id: CustomerId
    email: str
    role: Role
    password_hash: str
    registered_at: datetime
    verified_at: datetime | None = None
    code: PendingCode | None = None
    version: int = 0
    """The stored version this account was loaded at (0: not stored yet)."""

    @classmethod
    def register(cls, id: CustomerId, email: str, password_hash: str, now: datetime
                 ) -> Account:
        """A new, unverified customer account."""
        return cls(id, email.strip(), "customer", password_hash, now)

    @classmethod
    def administrator(cls, id: CustomerId, email: str, password_hash: str, now: datetime
                      ) -> Account:
        """The admin account made at start-up: verified from the start."""
        return cls(id, email.strip(), "admin", password_hash, now, verified_at=now)

    @property
    def key(self) -> str:
        """The account's email in its comparable form."""
        return email_key(self.email)

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None

    def issue_code(self, digest: str, now: datetime) -> PendingCode:
        """Replace any pending code with a new one (its digest), valid for CODE_TTL.
        Refused for a verified account, or within RESEND_INTERVAL of the last code."""
        if self.is_verified:
            raise AlreadyVerified()
        if self.code is not None:
            wait = self.code.issued_at + RESEND_INTERVAL - now
            if wait > timedelta(0):
                raise CodeRequestedTooSoon(wait)
        self.code = PendingCode(digest, now, now + CODE_TTL)
        return self.code

    def verify(self, digest: str, now: datetime) -> Verification:
        """Try the code whose digest is ``digest``. A wrong try is counted (so the caller
        must save the account whatever the outcome); the code dies after MAX_WRONG_CODES."""
        if self.is_verified:
            raise AlreadyVerified()
        code = self.code
        if code is None:
            return Verification.NO_CODE
        if code.wrong_tries >= MAX_WRONG_CODES:
            return Verification.LOCKED
        if now >= code.expires_at:
            return Verification.EXPIRED
        if not code.matches(digest):
            self.code = replace(code, wrong_tries=code.wrong_tries + 1)
            return (Verification.LOCKED if self.code.wrong_tries >= MAX_WRONG_CODES
                    else Verification.WRONG)
        self.verified_at, self.code = now, None
        return Verification.VERIFIED

    @property
    def tries_left(self) -> int:
        """Wrong tries the pending code still survives."""
        return 0 if self.code is None else max(0, MAX_WRONG_CODES - self.code.wrong_tries)

    def ensure_may_log_in(self) -> None:
        """Refuse an account whose email is not verified yet (after its password matched)."""
        if not self.is_verified:
            raise NotVerified()

    def change_password(self, password_hash: str) -> None:
        """Use a new password (its hash) from now on."""
        self.password_hash = password_hash
