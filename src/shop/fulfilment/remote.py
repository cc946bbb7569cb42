"""Ordering's question to fulfilment, :class:`GetFulfilmentStatus`, answered by fulfilment's
service over its route for services (``GET /fulfilment/orders/{id}``, with the services'
credential) through the resilient client; an UnavailableError (503) when it does not
answer."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from invariant.http import HttpService
from invariant.resilience import DependencyFailedError
from shop.ordering.messages import FulfilmentStatus, GetFulfilmentStatus
from shop.platform.service_calls import HEADER, credential

SERVICE = "fulfilment"


class RemoteFulfilment:
    """Asks fulfilment's service how far it got with an order."""

    def __init__(self, client: HttpService, secret: str) -> None:
        self._client = client
        self._headers = {HEADER: credential(secret)}

    async def status(self, query: GetFulfilmentStatus) -> FulfilmentStatus:
        """The answer to :class:`GetFulfilmentStatus`, from fulfilment's service."""
        response = await self._client.request(
            "GET", f"/fulfilment/orders/{quote(query.order_id, safe='')}",
            headers=self._headers)
        if response.status_code != 200:
            raise DependencyFailedError(
                SERVICE, f"it answered {response.status_code} to a status lookup")
        return _status(response.json())


def _status(body: Any) -> FulfilmentStatus:
    try:
        attempts = body["payment_attempts"]
        if type(attempts) is not int:
            raise TypeError("payment_attempts is not a whole number")
        return FulfilmentStatus(str(body["phase"]), attempts, body["tracking_number"],
                                body["reason"])
    except (KeyError, TypeError) as exc:
        raise DependencyFailedError(
            SERVICE, f"its status answer is not fulfilment's shape ({exc!r})") from exc
