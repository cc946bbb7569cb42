"""identity's HTTP routes (``/identity/...``).

User enumeration, decided: registering an email that already has an account is refused
with 409 (the caller must learn why sign-up failed, as on nearly every sign-up form). The
other routes do not tell whether an email is registered: a failed login says "the email or
password is wrong" (and takes as long for an unknown email: a dummy argon2 check), verify
answers an unknown email as it answers a wrong code, and asking for a new code answers 202
whether or not an unverified account exists; password guesses are throttled alike for
unknown and known emails (429 with the same Retry-After). The password and the code are
never echoed back, not even in validation errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Path, Request, status
from pydantic import BaseModel, ConfigDict, Field

from invariant.domain.errors import NotFoundError
from shop.identity.application import (
    SOURCE_LENGTH,
    AccessToken,
    AccountView,
    ChangePassword,
    IdentityService,
    InvalidCredentials,
    LogIn,
    Register,
    SendNewCode,
    Verify,
)
from shop.identity.domain import (
    CodeRequestedTooSoon,
    NotVerified,
    Role,
    TooManyPasswordGuesses,
)
from shop.platform.auth import AccountDirectory, CurrentUser, SignIn
from shop.platform.errors import Forbidden, NotAuthenticated, TooManyRequests
from shop.platform.service_calls import require_service

_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
EMAIL_PATTERN = rf"^{_LOCAL}@{_DOMAIN}$"
"""An ASCII email address. Our own pattern, not email-validator's: that refuses
special-use domains such as ``.local`` and ``.test``, which a development shop (and its
admin account) uses; in the OpenAPI document, so clients can check addresses first."""

Email = Annotated[str, Field(max_length=254, pattern=EMAIL_PATTERN,
                             examples=["ada@example.com"])]
NewPassword = Annotated[str, Field(min_length=8, max_length=128,
                                   description="8 to 128 characters")]
AnyPassword = Annotated[str, Field(min_length=1, max_length=128)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RegistrationIn(_Body):
    email: Email
    password: NewPassword


class VerificationIn(_Body):
    email: Email
    code: str = Field(pattern=r"^[0-9]{6}$", description="the 6-digit code from the email")


class CodeRequestIn(_Body):
    email: Email


class LoginIn(_Body):
    email: Email
    password: AnyPassword


class PasswordChangeIn(_Body):
    current_password: AnyPassword
    new_password: NewPassword


class AccountOut(BaseModel):
    """An account as its owner sees it."""

    user_id: str
    email: str
    role: Role
    verified: bool

    @classmethod
    def of(cls, account: AccountView) -> AccountOut:
        return cls(user_id=account.user_id, email=account.email, role=account.role,
                   verified=account.verified)


class TokenOut(BaseModel):
    """An access token: send it as ``Authorization: Bearer <access_token>``."""

    access_token: str
    token_type: str
    expires_in: int


class Notice(BaseModel):
    detail: str


def client_address(request: Request) -> str:
    """The address a request comes from: the ASGI client's host (behind a proxy, the
    forwarded address only if the server is told to trust the proxy's header)."""
    client = request.client
    return client.host[:SOURCE_LENGTH] if client is not None and client.host else "unknown"


def retry_after(exc: TooManyPasswordGuesses) -> float:
    """Whole seconds, rounded up: a client that waits that long is not refused again."""
    return float(math.ceil(exc.retry_after.total_seconds()))


async def logged_in(service: IdentityService, email: str, password: str, source: str
                    ) -> AccessToken:
    """A log-in as the API and the console answer it: refusals are 401, 403 (not
    verified) or 429 (too many guesses, with Retry-After)."""
    try:
        return await service.log_in(LogIn(email, password, source))
    except InvalidCredentials as exc:
        raise NotAuthenticated(str(exc)) from None
    except NotVerified as exc:
        raise Forbidden(str(exc)) from None
    except TooManyPasswordGuesses as exc:
        raise TooManyRequests(str(exc), retry_after(exc)) from None


def signing_in(service: Callable[[], IdentityService]) -> SignIn:
    """The :class:`SignIn` of the console's log-in form."""
    async def sign_in(email: str, password: str, source: str) -> str:
        return (await logged_in(service(), email, password, source)).access_token

    return sign_in


def router(service: Callable[[], IdentityService]) -> APIRouter:
    """identity's routes over the service ``service()`` returns."""
    api = APIRouter(prefix="/identity", tags=["identity"])

    @api.post("/register", status_code=status.HTTP_201_CREATED)
    async def register(body: RegistrationIn) -> AccountOut:
        """Sign up; a 6-digit code is emailed to verify the address (409: the email has an
        account already)."""
        return AccountOut.of(await service().register(Register(body.email, body.password)))

    @api.post("/verify")
    async def verify(body: VerificationIn) -> AccountOut:
        """Verify the email address with the emailed code (at most 5 wrong tries per code;
        a code works for 10 minutes)."""
        return AccountOut.of(await service().verify(Verify(body.email, body.code)))

    @api.post("/verification-code", status_code=status.HTTP_202_ACCEPTED)
    async def send_new_code(body: CodeRequestIn) -> Notice:
        """Email a new code to an unverified account (the previous code stops working);
        one per minute, else 429 with Retry-After."""
        try:
            await service().send_new_code(SendNewCode(body.email))
        except CodeRequestedTooSoon as exc:
            raise TooManyRequests(str(exc), exc.retry_after.total_seconds()) from None
        return Notice(detail="if an unverified account has this email, a new code is on "
                             "its way")

    @api.post("/login")
    async def log_in(body: LoginIn, request: Request) -> TokenOut:
        """Exchange email and password for an access token (403 until the email is
        verified; 429 with Retry-After after too many wrong passwords)."""
        token = await logged_in(service(), body.email, body.password, client_address(request))
        return TokenOut(access_token=token.access_token, token_type=token.token_type,
                        expires_in=token.expires_in)

    @api.post("/password")
    async def change_password(body: PasswordChangeIn, user: CurrentUser, request: Request
                              ) -> AccountOut:
        """Change the signed-in user's password (the current one is required, and a wrong
        one counts as a wrong log-in); every access token issued so far stops working, so
        log in again. The owner is told by email."""
        try:
            account = await service().change_password(ChangePassword(
                user.user_id, body.current_password, body.new_password,
                client_address(request)))
        except TooManyPasswordGuesses as exc:
            raise TooManyRequests(str(exc), retry_after(exc)) from None
        return AccountOut.of(account)

    @api.get("/me")
    async def me(user: CurrentUser) -> AccountOut:
        """The signed-in user's account."""
        return AccountOut.of(await service().me(user.user_id))

    return api


class AccessOut(BaseModel):
    """What an account allows now, for another service checking an access token."""

    role: str
    token_version: int


def access_router(directory: AccountDirectory, secret: str) -> APIRouter:
    """The route other services ask whether an access token's account still allows it
    (services only: not part of the public API), to include in identity's router."""
    api = APIRouter(tags=["identity"], include_in_schema=False)

    @api.get("/accounts/{user_id}/access")  # under identity's /identity
    async def access(user_id: Annotated[str, Path(max_length=200)],
                     request: Request) -> AccessOut:
        require_service(request, secret)
        found = await directory.access(user_id)
        if found is None:
            raise NotFoundError(f"no account {user_id!r}")
        return AccessOut(role=found.role, token_version=found.token_version)

    return api
