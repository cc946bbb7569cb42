"""identity's use cases: register, verify, resend a code, log in, change the password.

Each use case loads and saves accounts in one transaction of the :class:`AccountStore`,
which also takes the integration events to publish (the outbox, in that same
transaction): an email is never sent inside the request; notifications sends it later.
Password hashing is slow on purpose and runs outside those transactions.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from invariant.domain import DomainError, NotFoundError, UniquenessError
from invariant.messaging.published_language import IntegrationEvent
from shop.identity.domain import (
    Account,
    AlreadyVerified,
    Guesses,
    Reserved,
    Role,
    Verification,
    email_key,
)
from shop.identity.published import (
    CodeSeal,
    PasswordChanged,
    UserRegistered,
    UserVerified,
    VerificationCodeIssued,
)
from shop.kernel import CustomerId

Clock = Callable[[], datetime]
T = TypeVar("T")
SOURCE_LENGTH = 64
"""The longest client address kept (an IPv6 address has at most 45 characters)."""


# -- ports ------------------------------------------------------------------------------

class PasswordHasher(Protocol):
    """Hashes and checks passwords (slowly, off the event loop)."""

    async def hash(self, password: str) -> str:
        """A salted hash of ``password``."""
        ...

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches; ``None`` (no such account) takes as long and is
        False, so that response times do not tell which emails are registered."""
        ...


class CodeDigest(Protocol):
    """The keyed digest a one-time code is stored as."""

    def __call__(self, user_id: str, code: str) -> str: ...


class AccountSession(Protocol):
    """The accounts of one transaction, and the integration events it publishes."""

    def by_email(self, email: str) -> Account | None:
        """The account of ``email`` (compared case-insensitively), locked for this
        transaction."""
        ...

    def get(self, user_id: CustomerId) -> Account | None:
        """The account ``user_id``, locked for this transaction."""
        ...

    def add(self, account: Account) -> None:
        """Store a new account; UniquenessError when its email is taken."""
        ...

    def save(self, account: Account) -> None:
        """Store a changed account; ConcurrencyError when it changed since it was read."""
        ...

    def publish(self, event: IntegrationEvent, user_id: CustomerId, now: datetime) -> None:
        """Publish ``event`` if (and only if) this transaction commits (the outbox)."""
        ...

    def guesses(self, key: str, source: str) -> Guesses:
        """The password guesses for the email key ``key`` from the address ``source``
        and from everywhere, locked for this transaction (concurrent guesses wait)."""
        ...

    def save_guesses(self, key: str, source: str, guesses: Guesses) -> None:
        """Store the counts :meth:`guesses` returned, changed."""
        ...

    def forget_guesses(self, now: datetime) -> None:
        """Delete a few counts that are of no more use at ``now`` (forgotten, and not
        trusting their address any more)."""
        ...


class AccountStore(Protocol):
    """Where accounts live."""

    async def run(self, work: Callable[[AccountSession], T]) -> T:
        """Run ``work`` in one transaction: committed when it returns, rolled back if it
        raises. ``work`` is synchronous: slow things (hashing) happen before or after."""
        ...


class TokenIssuer(Protocol):
    """Issues signed access tokens (shop's :class:`~shop.platform.auth.Tokens`)."""

    @property
    def ttl_seconds(self) -> int: ...

    def issue(self, user_id: str, version: int) -> str:
        """A token for account ``user_id`` at its token version ``version``."""
        ...


# -- commands, queries and their results --------------------------------------------------

@dataclass(frozen=True, slots=True)
class Register:
    """Sign up with an email address and a password; a code is emailed to verify it."""

    email: str
    password: str


@dataclass(frozen=True, slots=True)
class Verify:
    """Prove the email address with the code that was sent to it."""

    email: str
    code: str


@dataclass(frozen=True, slots=True)
class SendNewCode:
    """Email a new code (the previous one stops working)."""

    email: str


@dataclass(frozen=True, slots=True)
class LogIn:
    """Exchange email and password for an access token; ``source`` is the address the
    guess comes from (its throttle's key, with the email)."""

    email: str
    password: str
    source: str


@dataclass(frozen=True, slots=True)
class ChangePassword:
    """Replace the password of the signed-in user (who must know the current one; a wrong
    one counts as a wrong log-in from ``source``)."""

    user_id: str
    current_password: str
    new_password: str
    source: str


@dataclass(frozen=True, slots=True)
class AccountView:
    """An account as its owner sees it (never any secret)."""

    user_id: str
    email: str
    role: Role
    verified: bool


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A signed access token and its lifetime in seconds."""

    access_token: str
    expires_in: int
    token_type: str = "bearer"


class InvalidCredentials(DomainError):
    """The email or the password is wrong (one message for both: no user enumeration)."""

    def __init__(self) -> None:
        super().__init__("the email or password is wrong")


class WrongCurrentPassword(DomainError):
    """Changing the password needs the current one."""

    def __init__(self) -> None:
        super().__init__("the current password is wrong")


class CodeRejected(DomainError):
    """A verification code that did not verify the account; the message says why."""

    def __init__(self, outcome: Verification, tries_left: int = 0) -> None:
        self.outcome = outcome
        messages = {
            Verification.WRONG: f"the code is wrong; {tries_left} tries left before it "
                                "stops working",
            Verification.EXPIRED: "the code has expired; ask for a new one with "
                                  "POST /identity/verification-code",
            Verification.LOCKED: "too many wrong codes: this code no longer works; ask for a "
                                 "new one with POST /identity/verification-code",
            Verification.NO_CODE: "the code is not valid for this email; ask for a new one "
                                  "with POST /identity/verification-code",
        }
        super().__init__(messages.get(outcome, "the code was not accepted"))


def view(account: Account) -> AccountView:
    """The owner's view of ``account``."""
    return AccountView(account.id.value, account.email, account.role, account.is_verified)


def new_code() -> str:
    """A uniformly random 6-digit code."""
    return f"{secrets.randbelow(1_000_000):06d}"


# -- the use cases --------------------------------------------------------------------------

class IdentityService:
    """identity's use cases over its ports."""

    def __init__(self, store: AccountStore, passwords: PasswordHasher, digest: CodeDigest,
                 seal: CodeSeal, tokens: TokenIssuer, clock: Clock) -> None:
        self.store = store
        self.passwords = passwords
        self.digest = digest
        self.seal = seal
        self.tokens = tokens
        self.clock = clock

    async def register(self, command: Register) -> AccountView:
        """A new unverified account; its code goes out by email (through the outbox)."""
        password_hash = await self.passwords.hash(command.password)
        code, now = new_code(), self.clock()

        def work(session: AccountSession) -> Account:
            if session.by_email(command.email) is not None:
                raise UniquenessError("account", ("email",))
            account = Account.register(CustomerId.new(), command.email, password_hash, now)
            pending = account.issue_code(self.digest(account.id.value, code), now)
            _add_registered(session, account, now)
            self._announce_code(session, account, code, pending.expires_at, now)
            return account
        return view(await self.store.run(work))

    async def verify(self, command: Verify) -> AccountView:
        """Verify the account with its code; CodeRejected says why a code did not work.
        Wrong tries are recorded even though the request fails."""
        now = self.clock()

        def work(session: AccountSession) -> tuple[Account | None, Verification]:
            account = session.by_email(command.email)
            if account is None:
                return None, Verification.NO_CODE
            outcome = account.verify(self.digest(account.id.value, command.code), now)
            if outcome in (Verification.VERIFIED, Verification.WRONG, Verification.LOCKED):
                session.save(account)
            if outcome is Verification.VERIFIED:
                session.publish(UserVerified(user_id=account.id.value, email=account.email),
                                account.id, now)
            return account, outcome
        account, outcome = await self.store.run(work)
        if account is None or outcome is not Verification.VERIFIED:
            raise CodeRejected(outcome, account.tries_left if account else 0)
        return view(account)

    async def send_new_code(self, command: SendNewCode) -> None:
        """Email a new code to an unverified account (rate-limited:
        CodeRequestedTooSoon). Unknown and verified addresses get nothing, silently."""
        code, now = new_code(), self.clock()

        def work(session: AccountSession) -> None:
            account = session.by_email(command.email)
            if account is None or account.is_verified:
                return
            pending = account.issue_code(self.digest(account.id.value, code), now)
            session.save(account)
            self._announce_code(session, account, code, pending.expires_at, now)
        await self.store.run(work)

    def _announce_code(self, session: AccountSession, account: Account, code: str,
                       expires_at: datetime, now: datetime) -> None:
        """Publish the code, sealed: the email is sent from notifications, later."""
        session.publish(VerificationCodeIssued(
            user_id=account.id.value, email=account.email,
            sealed_code=self.seal.seal(code, now), expires_at=expires_at), account.id, now)

    async def log_in(self, command: LogIn) -> AccessToken:
        """An access token for a verified account whose password matches. The guess is
        counted before the password is checked (TooManyPasswordGuesses if it must wait),
        for unknown emails alike."""
        key, source = email_key(command.email), command.source
        reserved = await self._reserve_guess(key, source)
        account = await self.store.run(lambda session: session.by_email(command.email))
        matches = await self.passwords.verify(
            account.password_hash if account else None, command.password)
        if account is None or not matches:
            raise InvalidCredentials()  # counted already
        await self._guessed_right(key, source, reserved)
        account.ensure_may_log_in()
        return AccessToken(self.tokens.issue(account.id.value, account.token_version),
                           self.tokens.ttl_seconds)

    async def change_password(self, command: ChangePassword) -> AccountView:
        """Replace the password, revoking every token issued so far; the owner is told by
        email. The current password is a guess like a log-in's (same counts)."""
        user_id = CustomerId(command.user_id)
        account = await self.store.run(lambda session: _existing(session, user_id))
        reserved = await self._reserve_guess(account.key, command.source)
        if not await self.passwords.verify(account.password_hash, command.current_password):
            raise WrongCurrentPassword()  # counted already
        await self._guessed_right(account.key, command.source, reserved)
        new_hash = await self.passwords.hash(command.new_password)
        now = self.clock()

        def work(session: AccountSession) -> Account:
            account = _existing(session, user_id)
            account.change_password(new_hash)
            session.save(account)
            session.publish(PasswordChanged(
                user_id=account.id.value, email=account.email, changed_at=now), user_id, now)
            return account
        return view(await self.store.run(work))

    async def _reserve_guess(self, key: str, source: str) -> Reserved:
        """Count a password guess for ``key`` from ``source`` as wrong, committed before
        the slow check runs: however many guesses arrive at once, no more are checked than
        the counts allow (the rest: TooManyPasswordGuesses)."""
        now = self.clock()

        def work(session: AccountSession) -> Reserved:
            reserved = session.guesses(key, source).reserve(now)
            session.save_guesses(key, source, reserved.guesses)
            session.forget_guesses(now)
            return reserved
        return await self.store.run(work)

    async def _guessed_right(self, key: str, source: str, reserved: Reserved) -> None:
        """The reserved guess was right: reset its address's count and trust it."""
        now = self.clock()

        def work(session: AccountSession) -> None:
            guesses = session.guesses(key, source)
            session.save_guesses(key, source, guesses.right(reserved, now))
        await self.store.run(work)

    async def me(self, user_id: str) -> AccountView:
        """The caller's own account."""
        return view(await self.store.run(lambda session: _existing(session, CustomerId(user_id))))

    async def ensure_admin(self, email: str, password: str) -> bool:
        """Make the admin account (verified) unless an account has that email; whether it
        was made now."""
        if await self.store.run(lambda session: session.by_email(email)) is not None:
            return False
        password_hash = await self.passwords.hash(password)
        now = self.clock()

        def work(session: AccountSession) -> bool:
            if session.by_email(email) is not None:
                return False  # another instance made it meanwhile
            account = Account.administrator(CustomerId.new(), email, password_hash, now)
            _add_registered(session, account, now)
            return True
        return await self.store.run(work)


def _existing(session: AccountSession, user_id: CustomerId) -> Account:
    """The account of a signed-in user (NotFoundError if it was removed since)."""
    account = session.get(user_id)
    if account is None:
        raise NotFoundError("this account no longer exists")
    return account


def _add_registered(session: AccountSession, account: Account, now: datetime) -> None:
    """Store a new account and publish that it registered."""
    session.add(account)
    session.publish(UserRegistered(
        user_id=account.id.value, email=account.email, registered_at=now), account.id, now)


__all__ = [
    "AccessToken", "AccountStore", "AccountView", "AlreadyVerified", "ChangePassword",
    "CodeRejected", "IdentityService", "InvalidCredentials", "LogIn", "Register",
    "SendNewCode", "Verify", "WrongCurrentPassword",
]
