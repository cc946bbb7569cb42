"""Who may use the console: the application's own accounts, through a :class:`Gate` it
provides (shop's checks its identity context, as its API does), admins only.

The browser holds the token :meth:`Gate.log_in` issued in an HttpOnly, SameSite=Strict
session cookie; every request asks :meth:`Gate.operator` who that token belongs to now, so
a revoked token or a demoted account is refused at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from invariant.domain.errors import InvariantError


@dataclass(frozen=True, slots=True)
class Operator:
    """The person behind a console session: an account id and whether it is an admin."""

    id: str
    admin: bool


class LoginRefused(InvariantError):
    """The log-in was refused; the message says why, for the person at the form."""


class Gate(Protocol):
    """The accounts the console checks (see the module docstring)."""

    async def log_in(self, email: str, password: str, client: str) -> str:
        """A session token for this email and password, from address ``client``;
        :class:`LoginRefused` saying why not."""
        ...

    async def operator(self, token: str) -> Operator | None:
        """Whose session ``token`` is now; None when it is invalid, expired or revoked."""
        ...
