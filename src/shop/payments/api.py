"""Payments over HTTP: the operator's switch on the (fake) payment provider."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from shop.payments.provider import FakePaymentProvider
from shop.platform.auth import AdminUser
from shop.platform.routing import Body

Mode = Literal["approve", "decline", "timeout"]


class ProviderMode(Body):
    """How the payment provider answers charges: approve them, decline them, or time out
    (hang longer than shop waits)."""

    mode: Mode


class ProviderStatus(BaseModel):
    """The provider's mode, and how many charges and refunds it made."""

    mode: Mode
    charges: int
    refunds: int


def router(provider: FakePaymentProvider) -> APIRouter:
    api = APIRouter(prefix="/admin/payments", tags=["payments"])

    def status() -> ProviderStatus:
        return ProviderStatus(mode=provider.mode, charges=provider.charges,
                              refunds=provider.refunds)

    @api.get("/provider")
    async def get_provider(admin: AdminUser) -> ProviderStatus:
        """The provider's mode, and how many charges and refunds it made."""
        return status()

    @api.put("/provider")
    async def set_provider(change: ProviderMode, admin: AdminUser) -> ProviderStatus:
        """Make the provider approve, decline or time out from now on."""
        provider.mode = change.mode
        return status()

    return api
