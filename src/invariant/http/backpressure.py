"""Intake refused while background work is behind: 503 problem+json with ``Retry-After``.

:class:`Backpressure` is ASGI middleware in front of an application's routes. A request
that brings work (``POST``, ``PUT``, ``PATCH``, ``DELETE``) while the
:class:`~invariant.backlog.Backlog` is over its bound is answered ``503`` with a
``Retry-After`` header and a problem+json body saying how much waits; reads, and paths
under the ``exempt`` prefixes (an operator's), always pass. Once the workers have
drained the backlog below the bound, the same request is accepted.

With ``wait`` (seconds), such a request is first held, for ``wait`` seconds at most, until
the backlog is back under its bound (:meth:`~invariant.backlog.Backlog.settle`), and then
handled: intake slows to the pace the background work keeps, and only a request held
that long is refused. Held requests do no work, so they cost the workers nothing.

The bound is the backlog's: a count of items, and with ``Backlog(oldest=...)`` the time the
oldest item has waited, whichever is passed first.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from invariant.backlog import Backlog
from invariant.domain.errors import ConfigurationError
from invariant.http.errors import MEDIA_TYPE

BRINGS_WORK = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Backpressure:
    """ASGI middleware refusing work with 503 while ``backlog`` is over its bound."""

    def __init__(self, app: ASGIApp, backlog: Backlog, *, retry_after: int = 1,
                 exempt: Sequence[str] = (), wait: float = 0.0) -> None:
        if retry_after < 1:
            raise ConfigurationError(f"retry_after is at least 1 second, got {retry_after}")
        if wait < 0:
            raise ConfigurationError(f"wait is 0 seconds or more, got {wait}")
        self.app = app
        self.backlog = backlog
        self.retry_after = retry_after
        self.exempt = tuple(exempt)
        self.wait = wait
        self.held = 0
        """Requests held until the backlog was back under its bound, then handled."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["method"] in BRINGS_WORK
                and not scope["path"].startswith(self.exempt) and await self.backlog.over()):
            if not self.wait or not await self.backlog.settle(self.wait):
                await self._busy()(scope, receive, send)
                return
            self.held += 1
        await self.app(scope, receive, send)

    def _busy(self) -> JSONResponse:
        backlog = self.backlog
        waiting, age = backlog.total, backlog.age
        if waiting > backlog.limit or backlog.oldest is None:
            why = (f"{waiting} items of background work are waiting, more than the "
                   f"{backlog.limit} this service accepts new work over")
        else:
            why = (f"background work has waited {age:.1f} s, longer than the "
                   f"{backlog.oldest} s this service accepts new work over")
        body = {"type": "urn:invariant:problem:busy", "title": "Busy", "status": 503,
                "detail": f"{why}; retry after {self.retry_after} s",
                "waiting": waiting, "limit": backlog.limit, "oldest": round(age, 3),
                "oldest_limit": backlog.oldest, "retry_after": self.retry_after}
        return JSONResponse(body, 503, {"Retry-After": str(self.retry_after)},
                            media_type=MEDIA_TYPE)
