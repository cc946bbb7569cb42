"""Fulfilment's route for other services (not part of the public API): how far it got with
an order, for ordering's service when fulfilment runs as a service of its own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel

from shop.ordering.messages import GetFulfilmentStatus
from shop.platform.routing import ShopDep
from shop.platform.service_calls import require_service


class FulfilmentStatusOut(BaseModel):
    """Fulfilment's view of one order."""

    phase: str
    payment_attempts: int
    tracking_number: str | None
    reason: str | None


def router() -> APIRouter:
    api = APIRouter(prefix="/fulfilment", tags=["fulfilment"], include_in_schema=False)

    @api.get("/orders/{order_id}")
    async def status(order_id: Annotated[str, Path(max_length=200)], request: Request,
                     shop: ShopDep) -> FulfilmentStatusOut:
        require_service(request, shop.settings.secret)
        found = await shop.queries.ask(GetFulfilmentStatus(order_id))
        return FulfilmentStatusOut(phase=found.phase, payment_attempts=found.payment_attempts,
                                   tracking_number=found.tracking_number, reason=found.reason)

    return api
