"""Access tokens and who is calling: signed (HMAC-SHA256 JWT), expiring, with a role.

Routes declare who may call them with the annotated dependencies :data:`CurrentUser`
(any signed-in user, customer or admin) and :data:`AdminUser` (admins only). A missing,
tampered, expired or malformed token is 401 (``WWW-Authenticate: Bearer``); a valid token
without the admin role on an admin route is 403.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Literal

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
    """The caller, as its access token names it."""

    user_id: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class Tokens:
    """Issues and verifies access tokens signed with ``secret``."""

    def __init__(self, secret: str, ttl: float, *, clock: Clock = utc_now) -> None:
        if len(secret) < 32:
            raise ValueError("the token secret must be at least 32 characters")
        self._secret = secret
        self._ttl = timedelta(seconds=ttl)
        self._clock = clock

    @property
    def ttl_seconds(self) -> int:
        return int(self._ttl.total_seconds())

    def issue(self, user_id: str, role: Role) -> str:
        now = self._clock()
        claims = {"sub": user_id, "role": role, "iss": _ISSUER, "iat": now,
                  "exp": now + self._ttl, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def verify(self, token: str) -> Principal:
        try:
            claims = self._decode(token)
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("the access token has expired; log in again") from None
        except jwt.InvalidTokenError:
            raise NotAuthenticated("the access token is not valid; log in again") from None
        role, subject = claims.get("role"), claims.get("sub")
        if role not in ("customer", "admin") or not isinstance(subject, str):
            raise NotAuthenticated("the access token is not valid; log in again")
        return Principal(subject, "admin" if role == "admin" else "customer")

    def _decode(self, token: str) -> dict[str, object]:
        """Check the signature, then the expiry against the clock (tests move time)."""
        claims: dict[str, object] = jwt.decode(
            token, self._secret, algorithms=[_ALGORITHM], issuer=_ISSUER,
            options={"require": ["sub", "role", "exp", "iat", "iss"], "verify_exp": False,
                     "verify_iat": False})
        exp = claims["exp"]
        if not isinstance(exp, int | float) or exp <= self._clock().timestamp():
            raise jwt.ExpiredSignatureError("expired")
        return claims


_bearer = HTTPBearer(auto_error=False, description="An access token from POST /identity/login")


def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller of a route that needs a signed-in user."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticated("this needs an access token: Authorization: Bearer <token> "
                               "(get one from POST /identity/login)")
    tokens: Tokens = request.app.state.shop.tokens
    return tokens.verify(credentials.credentials)


def admin_user(principal: Annotated[Principal, Depends(current_user)]) -> Principal:
    """The caller of an admin route."""
    if not principal.is_admin:
        raise Forbidden("this needs an admin account")
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]
AdminUser = Annotated[Principal, Depends(admin_user)]
