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

With ``max_in_flight``, at most that many requests (reads too; not the ``exempt`` paths)
are handled at once; the others wait for one of them to end, in the order they came, for
``wait`` seconds at most when ``wait`` is set (then 503 as above). The event loop hands
its turns out to every task that is ready, in turn: 32 requests under way take 32 turns
for each one a background worker gets, and a hop of a process manager that awaits the
database five times waits behind them five times. Fewer requests under way leave the
workers more of the loop, so the time from a request to the end of its background work
falls, and with it the throughput a single process reaches where commands share commits
(a group commit joins the commands under way). So it is off by default: a bound for a
service whose latency matters more than its last orders per second (measured in
``docs/explanation/pipeline.md``).
"""

from __future__ import annotations

import asyncio
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
                 exempt: Sequence[str] = (), wait: float = 0.0,
                 max_in_flight: int | None = None) -> None:
        if retry_after < 1:
            raise ConfigurationError(f"retry_after is at least 1 second, got {retry_after}")
        if wait < 0:
            raise ConfigurationError(f"wait is 0 seconds or more, got {wait}")
        if max_in_flight is not None and max_in_flight < 1:
            raise ConfigurationError(
                f"max_in_flight is at least 1 request (None: no bound), got {max_in_flight}")
        self.app = app
        self.backlog = backlog
        self.retry_after = retry_after
        self.exempt = tuple(exempt)
        self.wait = wait
        self.held = 0
        """Requests held until the backlog was back under its bound, then handled."""
        self.max_in_flight = max_in_flight
        self._slots = None if max_in_flight is None else asyncio.Semaphore(max_in_flight)
        self.in_flight = 0
        """Requests being handled now (counted only with ``max_in_flight``)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        if scope["method"] in BRINGS_WORK and await self.backlog.over():
            if not self.wait or not await self.backlog.settle(self.wait):
                await self._busy()(scope, receive, send)
                return
            self.held += 1
        slots = self._slots
        if slots is None:
            await self.app(scope, receive, send)
            return
        if not await self._slot(slots):
            await self._full()(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            slots.release()

    async def _slot(self, slots: asyncio.Semaphore) -> bool:
        """One of the ``max_in_flight`` slots, waited for ``wait`` seconds at most (without
        bound when ``wait`` is 0; a free slot is taken without a turn of the loop); False
        when none came in time."""
        try:
            async with asyncio.timeout(self.wait or None):
                await slots.acquire()
        except TimeoutError:
            return False
        return True

    def _full(self) -> JSONResponse:
        return self._refusal(
            f"{self.in_flight} requests are being handled, the most this service handles "
            f"at once, and this one waited {self.wait} s for one of them to end",
            in_flight=self.in_flight, max_in_flight=self.max_in_flight)

    def _busy(self) -> JSONResponse:
        backlog = self.backlog
        waiting, age = backlog.total, backlog.age
        if waiting > backlog.limit or backlog.oldest is None:
            why = (f"{waiting} items of background work are waiting, more than the "
                   f"{backlog.limit} this service accepts new work over")
        else:
            why = (f"background work has waited {age:.1f} s, longer than the "
                   f"{backlog.oldest} s this service accepts new work over")
        return self._refusal(why, waiting=waiting, limit=backlog.limit,
                             oldest=round(age, 3), oldest_limit=backlog.oldest)

    def _refusal(self, why: str, **figures: object) -> JSONResponse:
        """503 problem+json saying ``why``, with ``figures`` and ``Retry-After``."""
        body = {"type": "urn:invariant:problem:busy", "title": "Busy", "status": 503,
                "detail": f"{why}; retry after {self.retry_after} s", **figures,
                "retry_after": self.retry_after}
        return JSONResponse(body, 503, {"Retry-After": str(self.retry_after)},
                            media_type=MEDIA_TYPE)
