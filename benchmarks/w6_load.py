"""W6's load script: customers ordering over HTTP in a closed loop, and the same loop
against the ceiling app.

The client is aiohttp on one event loop in the benchmark's own process (never shop's): it
spends less than half of the CPU per request that httpx does (0.3 against 0.7 ms at 1,200
to 1,700 requests/s here), and on two cores the load script must leave the other core to
the server it measures. Every answer is checked: a
status other than the one the API documents stops the run (:class:`LoadError`), except a
503 with ``Retry-After`` (shop refusing work while its backlog is over the bound): the
customer waits as told and sends the same request again (counted in ``Http.refused``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Coroutine, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

Headers = Mapping[str, str]


class LoadError(RuntimeError):
    """The server answered something the benchmark did not expect (or did not answer)."""


class Http:
    """A keep-alive client on one base URL; :meth:`call` checks the status."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.refused = 0
        """Requests answered 503 with Retry-After (and sent again after it)."""

    async def call(self, method: str, path: str, expect: int, *,
                   json: Any = None, headers: Headers | None = None) -> Any:
        """The JSON body of ``method path``; :class:`LoadError` unless it answered ``expect``
        (after as many 503s with ``Retry-After`` as shop answers, each waited out)."""
        while True:
            try:
                async with self.session.request(method, path, json=json,
                                                headers=headers) as r:
                    body = await r.read()
                    retry_after = r.headers.get("Retry-After", "")
                    if r.status == 503 != expect and retry_after.isdigit():
                        self.refused += 1
                    elif r.status != expect:
                        raise LoadError(f"{method} {path} answered {r.status} (expected "
                                        f"{expect}): {body[:500]!r}")
                    else:
                        return await r.json(content_type=None) if body else None
            except aiohttp.ClientError as exc:
                raise LoadError(f"{method} {path} failed: {type(exc).__name__}: {exc}"
                                ) from exc
            await asyncio.sleep(int(retry_after))


@asynccontextmanager
async def http_client(base_url: str, *, request_limit_s: float = 60.0
                      ) -> AsyncIterator[Http]:
    """A client with no connection limit (a closed loop of N customers holds N); a request
    unanswered after ``request_limit_s`` fails."""
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=request_limit_s)
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as session:
        yield Http(session)


@dataclass(frozen=True, slots=True)
class Placed:
    """One order the loop placed: wall-clock times (``time.time()``) of its first request
    and of the moment the place request was sent (the start of every latency W6 reports:
    shop may ship an order before its client has read the place response)."""

    order_id: str
    customer: int
    started: float
    placed: float


@dataclass(frozen=True, slots=True)
class Intake:
    """What a closed loop did between ``began`` and ``ended`` (wall-clock seconds)."""

    placed: tuple[Placed, ...]
    began: float
    ended: float
    requests: int

    @property
    def seconds(self) -> float:
        return self.ended - self.began


async def _all(loops: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run the loops together; the first failure stops them all and is raised as itself."""
    try:
        async with asyncio.TaskGroup() as group:
            for loop in loops:
                group.create_task(loop)
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None


async def order_loop(http: Http, customers: Sequence[Headers], products: Sequence[str],
                     seconds: float) -> Intake:
    """Each customer, until ``seconds`` have passed: start an order, add one unit of its
    product (customer ``i`` orders ``products[i % len]``), place it. An order under way at
    the deadline is finished, so every order started is placed."""
    placed: list[Placed] = []
    deadline = time.monotonic() + seconds

    async def customer(index: int, headers: Headers) -> None:
        line = {"product_id": products[index % len(products)], "quantity": 1}
        while time.monotonic() < deadline:
            started = time.time()
            order = await http.call("POST", "/orders", 201, json={}, headers=headers)
            order_id = order["order_id"]
            await http.call("POST", f"/orders/{order_id}/items", 201, json=line,
                            headers=headers)
            asked = time.time()
            await http.call("POST", f"/orders/{order_id}/place", 202, headers=headers)
            placed.append(Placed(order_id, index, started, asked))

    began = time.time()
    await _all(customer(index, headers) for index, headers in enumerate(customers))
    return Intake(tuple(placed), began, time.time(), requests=3 * len(placed))


async def ceiling_loop(http: Http, clients: int, seconds: float) -> Intake:
    """``clients`` loops of one ``POST /orders`` each against the ceiling app."""
    placed: list[Placed] = []
    deadline = time.monotonic() + seconds

    async def client(index: int) -> None:
        body = {"customer": f"c{index}", "product_id": "mouse", "quantity": 1}
        while time.monotonic() < deadline:
            started = time.time()
            created = await http.call("POST", "/orders", 201, json=body)
            placed.append(Placed(str(created["id"]), index, started, time.time()))

    began = time.time()
    await _all(client(index) for index in range(clients))
    return Intake(tuple(placed), began, time.time(), requests=len(placed))
