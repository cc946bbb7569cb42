"""The seed's User contract: email unique, status active/suspended/pending, age 13-120 and
required for active users."""

from __future__ import annotations

from typing import Literal

from invariant.contracts import Contract, field, rule

Status = Literal["active", "suspended", "pending"]


class UserProfile(Contract, table="users", id_length=36):
    """What we know about a user; stored in ``users``, sharded by email."""

    email: str = field(format="email", length=255, unique=True, shard_key=True)
    status: Status = field(length=16, index=True)
    age: int | None = field(None, ge=13, le=120)

    @rule(field="age", code="required_when_active", message="is required for active users")
    def _age_required_when_active(self) -> bool:
        return self.status != "active" or self.age is not None

    @property
    def is_active(self) -> bool:
        """Whether the user may sign in."""
        return self.status == "active"

    def suspend(self) -> UserProfile:
        """The same profile, suspended (validated again, like every new value)."""
        return self.replace(status="suspended")

    def activate(self, age: int | None = None) -> UserProfile:
        """The same profile, active; an age must be known by then."""
        return self.replace(status="active", age=self.age if age is None else age)

    def with_email(self, email: str) -> UserProfile:
        """The same profile with another email address."""
        return self.replace(email=email)
