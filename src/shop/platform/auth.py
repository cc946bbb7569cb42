"""Access tokens and who is calling: signed (HMAC-SHA256 JWT), expiring, and checked
against the account they name on every request.

A token names its account (``sub``) and the account's token version when it was issued
(``ver``). A signature proves only that the shop issued the token once; so each request also
asks the :class:`AccountDirectory` (identity's accounts: one primary-key lookup) whether the
account still exists and still has that token version (a password change moves it on,
revoking every earlier token), and takes the caller's role from the account, never from the
token.

Routes declare who may call them with the annotated dependencies :data:`CurrentUser`
(any signed-in user, customer or admin) and :data:`AdminUser` (admins only). A missing,
tampered, expired, malformed or revoked token, or one whose account is gone, is 401
(``WWW-Authenticate: Bearer``); a valid token of a non-admin on an admin route is 403.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Literal, Protocol

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from invariant.clock import Clock, utc_now
from shop.platform.errors import Forbidden, NotAuthenticated

Role = Literal["customer", "admin"]
_ALGORITHM = "HS256"
_ISSUER = "shop"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: the account its access token names, with the account's role."""

    user_id: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says: whose it is, and the account's token version then."""

    user_id: str
    version: int


@dataclass(frozen=True, slots=True)
class AccountAccess:
    """What an account allows now: its role and its current token version."""

    role: Role
    token_version: int


class AccountDirectory(Protocol):
    """Where the accounts behind tokens are looked up (identity provides it)."""

    async def access(self, user_id: str) -> AccountAccess | None:
        """The account ``user_id``'s role and token version; None if there is none."""
        ...


class SignIn(Protocol):
    """Exchanges an email and password for an access token (identity provides it);
    refusals are :class:`NotAuthenticated`, ``Forbidden`` or ``TooManyRequests`` saying
    why."""

    async def __call__(self, email: str, password: str, source: str) -> str:
        """An access token; ``source`` is the address the guess comes from."""
        ...


class Tokens:
    """Issues and verifies access tokens signed with ``secret``.

    The claims of the last ``remember`` tokens verified are kept with their expiry, so a
    token used again (every request of a signed-in client) is not decoded and its
    signature not checked again: the same token string can only have the same claims.
    Expiry is checked against the clock on every use, and revocation is not affected (it
    is the account's, checked on every request: see :func:`principal_of`).
    """

    def __init__(self, secret: str, ttl: float, *, clock: Clock = utc_now,
                 remember: int = 4096) -> None:
        if len(secret) < 32:
            raise ValueError("the token secret must be at least 32 characters")
        if remember < 0:
            raise ValueError(f"tokens to remember must be >= 0, not {remember}")
        self._secret = secret
        self._ttl = timedelta(seconds=ttl)
        self._clock = clock
        self._remember = remember
        self._verified: dict[str, tuple[TokenClaims, float]] = {}

    @property
    def ttl_seconds(self) -> int:
        return int(self._ttl.total_seconds())

    def issue(self, user_id: str, version: int) -> str:
        """A token for account ``user_id`` at its token version ``version``."""
        now = self._clock()
        claims = {"sub": user_id, "ver": version, "iss": _ISSUER, "iat": now,
                  "exp": now + self._ttl, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def verify(self, token: str) -> TokenClaims:
        """The claims of a token this shop signed and that has not expired (it may still
        be revoked: see :func:`current_user`)."""
        known = self._verified.get(token)
        if known is not None:
            if known[1] > self._clock().timestamp():
                return known[0]
            del self._verified[token]
            raise NotAuthenticated("the access token has expired; log in again")
        verified, expires = self._verify(token)
        if self._remember:
            if len(self._verified) >= self._remember:
                del self._verified[next(iter(self._verified))]  # the oldest verified
            self._verified[token] = (verified, expires)
        return verified

    def _verify(self, token: str) -> tuple[TokenClaims, float]:
        """The claims of ``token`` and its expiry (a Unix time), from its signed text."""
        try:
            claims, expires = self._decode(token)
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("the access token has expired; log in again") from None
        except jwt.InvalidTokenError:
            raise NotAuthenticated("the access token is not valid; log in again") from None
        version, subject = claims.get("ver"), claims.get("sub")
        if type(version) is not int or not isinstance(subject, str):
            raise NotAuthenticated("the access token is not valid; log in again")
        return TokenClaims(subject, version), expires

    def _decode(self, token: str) -> tuple[dict[str, object], float]:
        """Check the signature, then the expiry against the clock (tests move time)."""
        claims: dict[str, object] = jwt.decode(
            token, self._secret, algorithms=[_ALGORITHM], issuer=_ISSUER,
            options={"require": ["sub", "ver", "exp", "iat", "iss"], "verify_exp": False,
                     "verify_iat": False})
        exp = claims["exp"]
        if not isinstance(exp, int | float) or exp <= self._clock().timestamp():
            raise jwt.ExpiredSignatureError("expired")
        return claims, float(exp)


_bearer = HTTPBearer(auto_error=False, description="An access token from POST /identity/login")
BearerToken = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
"""The request's ``Authorization: Bearer`` credentials, if any (checked by the caller)."""


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller of a route that needs a signed-in user: a valid token whose account
    exists and has not revoked it."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticated("this needs an access token: Authorization: Bearer <token> "
                               "(get one from POST /identity/login)")
    shop = request.app.state.shop
    return await principal_of(credentials.credentials, shop.tokens, shop.accounts)


async def principal_of(token: str, tokens: Tokens, directory: AccountDirectory | None
                       ) -> Principal:
    """Who ``token`` belongs to now: a valid token whose account exists and has not
    revoked it (else :class:`NotAuthenticated`)."""
    claims = tokens.verify(token)
    access = None if directory is None else await directory.access(claims.user_id)
    if access is None:
        raise NotAuthenticated("the account of this access token does not exist")
    if access.token_version != claims.version:
        raise NotAuthenticated("this access token was revoked (the password was changed); "
                               "log in again")
    return Principal(claims.user_id, access.role)


async def admin_user(principal: Annotated[Principal, Depends(current_user)]) -> Principal:
    """The caller of an admin route."""
    if not principal.is_admin:
        raise Forbidden("this needs an admin account")
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]
AdminUser = Annotated[Principal, Depends(admin_user)]
