"""The identity domain: an account, its one-time verification code and the rules around it.

Pure: the standard library, invariant's domain kit and the shared kernel only. Secrets
never enter the model in the clear: an account holds its password *hash* (made by the
application's hasher) and the *digest* of its pending one-time code (a keyed hash made by
the application); the rules below compare digests in constant time.
"""

from __future__ import annotations

import enum
import hmac
import math
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


GUESSES_FREE = 5
"""Password guesses one address may make for one email before it must wait."""
ACCOUNT_GUESSES_FREE = 20
"""Password guesses for one email, from all addresses together that it does not trust,
before they must wait (the ceiling against guessing from many addresses)."""
FIRST_DELAY = timedelta(seconds=1)
"""The wait after the first guess beyond the free ones; it doubles with each further
guess..."""
MAX_DELAY = timedelta(minutes=15)
"""... up to this."""
FORGET_AFTER = timedelta(hours=24)
"""A count with no guess for this long starts again from zero."""
TRUST_FOR = timedelta(days=30)
"""How long an address the right password came from is exempt from the account-wide
ceiling (its own count still applies)."""


class TooManyPasswordGuesses(DomainError):
    """A password guess that must wait: too many wrong ones came before it."""

    def __init__(self, retry_after: timedelta) -> None:
        self.retry_after = retry_after
        seconds = max(1, math.ceil(retry_after.total_seconds()))
        super().__init__(f"too many wrong passwords for this account; try again in {seconds} s")


@dataclass(frozen=True, slots=True)
class GuessCount:
    """Password guesses counted against one key: every guess counts as wrong from the
    moment it is reserved (before it is checked), so that concurrent guesses see it."""

    guesses: int = 0
    last_at: datetime | None = None

    def _current(self, now: datetime) -> int:
        if self.last_at is None or now - self.last_at >= FORGET_AFTER:
            return 0
        return self.guesses

    def wait(self, free: int, now: datetime) -> timedelta:
        """How long until the next guess may be checked (zero: now)."""
        over = self._current(now) - free
        if over < 0 or self.last_at is None:
            return timedelta(0)
        delay = min(MAX_DELAY, FIRST_DELAY * (1 << min(over, 32)))
        return max(timedelta(0), self.last_at + delay - now)

    @property
    def forgotten_at(self) -> datetime | None:
        """When this count starts again from zero (None: it is zero)."""
        return None if self.last_at is None else self.last_at + FORGET_AFTER

    def counted(self, now: datetime) -> GuessCount:
        """One guess more, made at ``now``."""
        return GuessCount(self._current(now) + 1, now)

    def refunded(self) -> GuessCount:
        """One guess less: it turned out right."""
        return replace(self, guesses=max(0, self.guesses - 1))


@dataclass(frozen=True, slots=True)
class Guesses:
    """The password guesses that concern one guess: those from its address for its email
    (``source``), those for its email from every address (``account``), and until when
    the address is trusted for that email (the right password came from it).

    The policy: an address gets :data:`GUESSES_FREE` guesses, then waits
    :data:`FIRST_DELAY`, doubling with each guess up to :data:`MAX_DELAY`. Addresses the
    email does not trust share :data:`ACCOUNT_GUESSES_FREE` guesses with the same growing
    waits, so many addresses together cannot guess without limit; an address it trusts is
    exempt from that ceiling, so an attacker elsewhere cannot lock its owner out. The right
    password resets its address's count and trusts the address for :data:`TRUST_FOR`.
    Unknown emails are counted alike (no account enumeration)."""

    source: GuessCount = GuessCount()
    account: GuessCount = GuessCount()
    trusted_until: datetime | None = None

    def trusted(self, now: datetime) -> bool:
        return self.trusted_until is not None and now < self.trusted_until

    def reserve(self, now: datetime) -> Reserved:
        """Count a guess as wrong before it is checked; TooManyPasswordGuesses if it must
        wait (a refused guess is not counted: it was not checked)."""
        trusted = self.trusted(now)
        wait = self.source.wait(GUESSES_FREE, now)
        if not trusted:
            wait = max(wait, self.account.wait(ACCOUNT_GUESSES_FREE, now))
        if wait > timedelta(0):
            raise TooManyPasswordGuesses(wait)
        account = self.account if trusted else self.account.counted(now)
        return Reserved(replace(self, source=self.source.counted(now), account=account),
                        account_counted=not trusted)

    def right(self, reserved: Reserved, now: datetime) -> Guesses:
        """The reserved guess was the right password: its address starts from zero and is
        trusted; the account-wide count takes back this one guess (not the others)."""
        account = self.account.refunded() if reserved.account_counted else self.account
        return Guesses(GuessCount(0, now), account, now + TRUST_FOR)


@dataclass(frozen=True, slots=True)
class Reserved:
    """A guess that may be checked now, and the counts with it counted as wrong."""

    guesses: Guesses
    account_counted: bool


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
    token_version: int = 0
    """Access tokens name the token version they were issued at; a password change moves
    it on, so every token issued before stops working."""

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
        """Use a new password (its hash) from now on; the tokens issued so far are
        revoked."""
        self.password_hash = password_hash
        self.token_version += 1
