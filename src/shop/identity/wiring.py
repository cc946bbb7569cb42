"""How the identity context is put together for the platform: :func:`module`."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from shop.identity.api import access_router, router, signing_in
from shop.identity.application import IdentityService
from shop.identity.infrastructure import (
    Argon2Passwords,
    HmacCodeDigest,
    SqlAccountDirectory,
    SqlAccountStore,
    metadata,
    upgrade,
)
from shop.identity.published import PUBLISHED, CodeSeal
from shop.platform.module import ACCOUNTS, SIGN_IN, Module

if TYPE_CHECKING:
    from invariant.hosting import Host
    from shop.platform.context import ShopContext

log = logging.getLogger("shop.identity")


def module(shop: ShopContext) -> Module:
    """identity's part of the shop."""
    @functools.cache
    def service() -> IdentityService:
        # Built on first use: the shop's database exists only once the shop is assembled.
        settings = shop.settings
        return IdentityService(SqlAccountStore(shop.read_models), Argon2Passwords(),
                               HmacCodeDigest(settings.secret), CodeSeal(settings.secret),
                               shop.tokens, shop.clock)

    async def setup(host: Host) -> None:
        settings = shop.settings
        await shop.read_models.run(upgrade)  # before anything reads an account
        if await service().ensure_admin(settings.admin_email, settings.admin_password):
            log.info("made the admin account")

    accounts = SqlAccountDirectory(lambda: shop.read_models)
    routes = router(service)
    routes.include_router(access_router(accounts, shop.settings.secret))
    return Module(name="identity", integration_events=PUBLISHED, router=routes,
                  tables=metadata, setup=setup,
                  provides={ACCOUNTS: accounts, SIGN_IN: signing_in(service)})
