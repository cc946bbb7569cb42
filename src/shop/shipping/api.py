"""Shipping's HTTP API (admin only): the carrier's failure switch and shipment lookups."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from shop.platform.auth import AdminUser
from shop.platform.routing import Body, IdPath, ShopDep
from shop.shipping.application import (
    GetCarrierRefusal,
    GetShipment,
    ShipmentView,
    SwitchCarrierRefusal,
)


class Failures(Body):
    """Whether the carrier refuses new shipments (fulfilment then refunds and cancels)."""

    refuse: bool


class ShipmentOut(BaseModel):
    """An order's shipment: ``new`` (none yet), ``created``, ``refused`` or ``cancelled``."""

    order_id: str
    status: str
    tracking_number: str | None


def router() -> APIRouter:
    api = APIRouter(tags=["shipping"])

    @api.get("/admin/shipping/failures", summary="Whether the carrier refuses shipments")
    async def get_failures(shop: ShopDep, admin: AdminUser) -> Failures:
        return Failures(refuse=await shop.queries.ask(GetCarrierRefusal()))

    @api.put("/admin/shipping/failures", summary="Make the carrier refuse shipments, or not")
    async def set_failures(shop: ShopDep, admin: AdminUser, body: Failures) -> Failures:
        result = await shop.commands.dispatch(SwitchCarrierRefusal(refuse=body.refuse))
        return Failures(refuse=result.value)

    @api.get("/admin/shipping/shipments/{order_id}", summary="An order's shipment")
    async def get_shipment(shop: ShopDep, admin: AdminUser, order_id: IdPath
                           ) -> ShipmentOut:
        view: ShipmentView = await shop.queries.ask(GetShipment(order_id))
        return ShipmentOut(order_id=view.order_id, status=view.status,
                           tracking_number=view.tracking_number)

    return api
