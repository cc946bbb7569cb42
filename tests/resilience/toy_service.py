"""A real HTTP service for the resilient client's tests: uvicorn on a free port, in this
event loop, that a test stops and starts again on the same port, and tells how to answer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.ports import free_port


@dataclass
class ToyService:
    """Answers any path with ``statuses`` in turn (then 200); ``hold`` keeps every request
    waiting until it is set. Counts requests and the most in flight at once, and keeps the
    last request's headers."""

    port: int = field(default_factory=free_port)
    statuses: list[int] = field(default_factory=list)
    hold: asyncio.Event | None = None
    problems: bool = False
    """Answer an error as a problem document (application/problem+json)."""
    requests: int = 0
    last_headers: dict[str, str] = field(default_factory=dict)
    in_flight: int = 0
    most_in_flight: int = 0
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _thing(self, request: Request) -> JSONResponse:
        self.requests += 1
        self.last_headers = dict(request.headers)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        async with self._arrived:
            self._arrived.notify_all()
        try:
            if self.hold is not None:
                await self.hold.wait()
            status = self.statuses.pop(0) if self.statuses else 200
            if self.problems and status >= 400:
                return JSONResponse({"status": status, "title": "Unavailable"}, status,
                                    {"Retry-After": "2"},
                                    media_type="application/problem+json")
            return JSONResponse({"n": self.requests}, status_code=status)
        finally:
            self.in_flight -= 1

    async def until_in_flight(self, count: int) -> None:
        """Wait until ``count`` requests are being answered at once."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: self.in_flight >= count)

    async def start(self) -> None:
        app = Starlette(routes=[Route("/{path:path}", self._thing,
                                      methods=["GET", "POST", "PUT", "DELETE"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error",
                                lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        if self.hold is not None:
            self.hold.set()
        await self._task
        self._server = self._task = None
