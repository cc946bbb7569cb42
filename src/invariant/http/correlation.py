"""The correlation id of a request: taken from ``X-Correlation-ID`` when a caller (a
gateway, another service) sends a sane one, made otherwise, sent back on the response, and
the flow's id while the request is handled: the commands it sends carry it in their
metadata, so their events, the messages relayed from them and the log lines of every
service on the way share it."""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from invariant.telemetry.correlation import CURRENT

HEADER = "X-Correlation-ID"
SHAPE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
"""What a correlation id taken from outside may look like (anything else is replaced)."""


def sane_or_new(given: str | None) -> str:
    """``given`` when it is a sane token, else a new id."""
    return given if given is not None and SHAPE.match(given) else uuid.uuid4().hex


class CorrelationIds:
    """ASGI middleware: each HTTP request handled as a flow of its correlation id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(HEADER.lower().encode())
        correlation = sane_or_new(None if given is None else given.decode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = correlation
            await send(message)

        token = CURRENT.set(correlation)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            CURRENT.reset(token)
