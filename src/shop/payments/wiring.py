"""How the payments context is put together for the platform: :func:`module`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shop.payments.api import router
from shop.payments.application import PaymentHandlers
from shop.payments.domain import EVENTS
from shop.payments.infrastructure import PaymentGateway
from shop.payments.messages import ChargePayment, RefundPayment
from shop.payments.provider import FakePaymentProvider
from shop.payments.published import PUBLISHED
from shop.platform.module import Module

if TYPE_CHECKING:
    from shop.platform.context import ShopContext


def module(shop: ShopContext) -> Module:
    """Payments' part of the shop, with its own provider (one per running shop)."""
    provider = FakePaymentProvider()
    gateway = PaymentGateway(provider, shop.settings.provider_timeout)
    return Module(
        name="payments",
        events=EVENTS,
        commands=PaymentHandlers(gateway, shop.clock).handlers(),
        accepts=(ChargePayment, RefundPayment),
        integration_events=PUBLISHED,
        router=router(provider),
    )
