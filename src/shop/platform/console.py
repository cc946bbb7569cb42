"""invariant's console in shop, at ``/console``: the running shop as the console operates
it, and the gate of identity's accounts (the admins of the API are the console's
operators, refused and revoked exactly as the API refuses and revokes their tokens)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request

from invariant.console import Gate, LoginRefused, Operated, Operator, console_router
from shop.platform.auth import SignIn, principal_of
from shop.platform.errors import Forbidden, NotAuthenticated, TooManyRequests
from shop.platform.module import SIGN_IN
from shop.platform.runtime import Shop

PREFIX = "/console"


class ShopGate(Gate):
    """identity's accounts, as the API checks them."""

    def __init__(self, shop: Shop) -> None:
        self._shop = shop
        found = shop.host.provided(SIGN_IN)
        self._sign_in: SignIn | None = found[0] if found else None

    async def log_in(self, email: str, password: str, client: str) -> str:
        if self._sign_in is None:
            raise LoginRefused("this shop has no accounts to log in with")
        try:
            return await self._sign_in(email, password, client)
        except (NotAuthenticated, Forbidden, TooManyRequests) as exc:
            raise LoginRefused(exc.detail) from None

    async def operator(self, token: str) -> Operator | None:
        try:
            caller = await principal_of(token, self._shop.tokens, self._shop.accounts)
        except NotAuthenticated:
            return None
        return Operator(caller.user_id, caller.is_admin)


def operated(shop: Shop) -> Operated:
    """The running shop as the console sees it (its parts as ``invariant`` gets them)."""
    from shop.operations import shop_parts

    return Operated("shop", shop.app.store.storage, shop.read_models, shop_parts(shop),
                    ShopGate(shop), shop.settings.secret)


def router() -> APIRouter:
    """The console's routes, for the shop the app serves."""
    def locate(request: Request) -> Operated:
        found: Operated | None = getattr(request.app.state, "console", None)
        if found is None:
            found = request.app.state.console = operated(request.app.state.shop)
        return found

    return console_router(locate, prefix=PREFIX)
