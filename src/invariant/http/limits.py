"""A cap on the size of request bodies, enforced before anything parses them.

FastAPI's own ``max_body_size`` answers a too-large ``Content-Length`` in plain text; this
one answers 413 problem+json like every other refusal (:mod:`invariant.http.errors`).
"""

from __future__ import annotations

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from invariant.domain.errors import ConfigurationError, InvariantError
from invariant.http.errors import http_error_response


class BodyTooLarge(HTTPException, InvariantError):
    """413: the request body is larger than the cap (raised while it is being read). An
    ``HTTPException`` first, so the HTTP error handler answers it."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body is larger than {max_bytes} bytes; "
                              f"send at most {max_bytes}")


class BodyLimit:
    """ASGI middleware refusing request bodies over ``max_bytes`` with 413.

    A ``Content-Length`` over the cap is refused at once, before the body is read. A body
    sent without one (chunked) is counted as it arrives: the read that passes the cap
    raises :class:`BodyTooLarge`, which the error handlers answer, and the rest of the body
    is never read."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ConfigurationError(f"max_bytes must not be negative, got {max_bytes}")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_bytes:
            response = http_error_response(BodyTooLarge(self.max_bytes))
            await response(scope, receive, send)
            return
        counted = 0

        async def receive_within_cap() -> Message:
            nonlocal counted
            message = await receive()
            if message["type"] == "http.request":
                counted += len(message.get("body", b""))
                if counted > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, receive_within_cap, send)
