"""The User aggregate: stored as its current state, publishing what happened to it."""

from __future__ import annotations

from dataclasses import dataclass

from examples.users.contracts import UserProfile
from invariant.domain import DomainError, DomainEvent, Identity, StateAggregate


@dataclass(frozen=True, slots=True)
class UserId(Identity):
    """Identifies a user."""


@dataclass(frozen=True)
class UserRegistered(DomainEvent):
    """A user signed up."""

    user_id: str
    email: str
    status: str


@dataclass(frozen=True)
class UserSuspended(DomainEvent):
    """A user may no longer sign in."""

    user_id: str


@dataclass(frozen=True)
class UserActivated(DomainEvent):
    """A user may sign in."""

    user_id: str


@dataclass(frozen=True)
class EmailChanged(DomainEvent):
    """A user moved to another email address."""

    user_id: str
    email: str


class UserAlreadySuspended(DomainError):
    """Suspending a suspended user is refused (the command is probably repeated)."""


class User(StateAggregate[UserId, UserProfile]):
    """A user account. The profile is a contract value: every change is validated."""

    @classmethod
    def register(cls, id: UserId, data: object) -> User:
        """A new user from untrusted input (raises ValidationError listing every problem)."""
        profile = UserProfile.create(data)
        user = cls(id, profile)
        user.record(UserRegistered(id.value, profile.email, profile.status))
        return user

    def suspend(self) -> None:
        """Suspend the user."""
        if self.state.status == "suspended":
            raise UserAlreadySuspended(f"user {self.id} is already suspended")
        self.change(self.state.suspend(), UserSuspended(self.id.value))

    def activate(self, age: int | None = None) -> None:
        """Activate the user (the contract requires a known age)."""
        self.change(self.state.activate(age), UserActivated(self.id.value))

    def change_email(self, email: str) -> None:
        """Move the account to another email address."""
        self.change(self.state.with_email(email), EmailChanged(self.id.value, email))
