"""How the shipping context is put together for the platform: :func:`module`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shop.kernel import OrderId
from shop.platform.module import Module
from shop.shipping.api import router
from shop.shipping.application import HANDLERS, GetCarrierRefusal, GetShipment, ShipmentView
from shop.shipping.domain import EVENTS, THE_CARRIER, Carrier, Shipment
from shop.shipping.messages import CancelShipment, CreateShipment

if TYPE_CHECKING:
    from shop.platform.context import ShopContext


def module(shop: ShopContext) -> Module:
    """Shipping on the shop's event store."""

    async def carrier_refusal(query: GetCarrierRefusal) -> bool:
        carrier = await shop.app.aggregates.repository(Carrier).find(THE_CARRIER)
        return carrier is not None and carrier.refuses

    async def shipment(query: GetShipment) -> ShipmentView:
        found = await shop.app.aggregates.repository(Shipment).find(OrderId(query.order_id))
        return ShipmentView.of(found if found is not None else Shipment(OrderId(query.order_id)))

    return Module(name="shipping", events=EVENTS, commands=HANDLERS,
                  accepts=(CreateShipment, CancelShipment),
                  queries={GetCarrierRefusal: carrier_refusal, GetShipment: shipment},
                  router=router())
