"""Analytics' report in Redis (``SHOP_ANALYTICS_REDIS_URL``): the adapter of
:class:`~shop.analytics.application.SalesReportStore` for a shop whose counters live
beside, not in, its SQL database.

The consumer's inbox is in SQL and cannot share a transaction with Redis, so each message
is applied exactly once by Redis itself: one Lua script adds the message id to the set
``<prefix>seen`` and, only if it was not there, applies the message's changes (``HINCRBY``)
in the same atomic step. A redelivered message, a retry whose reply was lost, or a second
consumer racing on the same message changes nothing. Redis down: the script raises, the
consumer retries with backoff and then parks the message (replayed later, it still counts
once).

Keys (``<prefix>`` defaults to ``shop:analytics:{report}:``; the ``{report}`` hash tag
keeps them in one slot of a Redis Cluster, as one script must):

========================  ================================================================
``<prefix>seen``          set of the message ids applied
``<prefix>orders``        hash: ``orders_placed``/``orders_cancelled``/``orders_shipped``
``<prefix>units:<col>``   hash per column (ordered, cancelled, shipped): product id -> units
``<prefix>money:<col>``   hash per column (charged, refunded): currency -> minor units
========================  ================================================================

The report is rebuildable: it is a sum over ordering's and payments' integration events.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from invariant.domain.errors import ConfigurationError, UnavailableError
from invariant.extras import needs_extra
from invariant.messaging.consumer import External
from invariant.messaging.published_language import IntegrationEvent
from shop.analytics.application import (
    MONEY_COLUMNS,
    UNIT_COLUMNS,
    ProductUnits,
    Revenue,
    SalesReport,
    major,
    tally,
)
from shop.analytics.infrastructure import EVENTS
from shop.platform.consumers import external_consumer

with needs_extra("redis"):
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import RedisError

SETTING = "SHOP_ANALYTICS_REDIS_URL"
DEFAULT_PREFIX = "shop:analytics:{report}:"
_ERRORS = (RedisError, OSError)

_ADD = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
for i = 2, #KEYS do
  redis.call('HINCRBY', KEYS[i], ARGV[2 * i - 2], ARGV[2 * i - 1])
end
return 1
"""
"""KEYS[1]: the set of ids seen; KEYS[i] (i >= 2): the hash of change i-1, whose field and
delta are ARGV[2i-2] and ARGV[2i-1]; ARGV[1]: the message id. 1: applied, 0: seen before."""


class RedisSalesReports:
    """The sales report in Redis at ``url``, under ``prefix``; connected and closed by
    ``async with reports.connected():`` (the module's lifespan)."""

    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.url = url
        self.prefix = prefix
        self._redis: Redis | None = None
        self._add: Any = None
        self._consumer = external_consumer(self.add, *EVENTS)

    @property
    def consumer(self) -> External:
        return self._consumer

    @contextlib.asynccontextmanager
    async def connected(self) -> AsyncIterator[RedisSalesReports]:
        """Connect (a Redis that does not answer is a ConfigurationError naming the
        setting), and close on leaving. Outside it (an operator's command replaying a dead
        letter starts nothing) each call opens and closes a client of its own."""
        client = self._new_client()
        try:
            await client.ping()
        except _ERRORS as exc:
            await client.aclose()
            raise ConfigurationError(
                f"{SETTING}: cannot reach Redis at {redacted(self.url)} ({exc}); start it, "
                f"fix the URL, or unset {SETTING} to keep the report in SQL") from exc
        self._redis, self._add = client, client.register_script(_ADD)
        try:
            yield self
        finally:
            self._redis, self._add = None, None
            await client.aclose()

    def _new_client(self) -> Redis:
        return Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=5,
                              client_name="shop-analytics",
                              retry=Retry(NoBackoff(), 1))  # once more, on a fresh connection

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[tuple[Redis, Any]]:
        """The client and the counting script: the connected ones, or a client for this
        call only."""
        if self._redis is not None:
            yield self._redis, self._add
            return
        client = self._new_client()
        try:
            yield client, client.register_script(_ADD)
        finally:
            await client.aclose()

    async def add(self, message_id: str, event: IntegrationEvent) -> bool:
        """Count ``event`` unless message ``message_id`` was counted before (atomically in
        Redis); whether it was counted now."""
        counted = tally(event)
        keys = [f"{self.prefix}seen"]
        args: list[str | int] = [message_id]
        for name in counted.orders:
            keys.append(f"{self.prefix}orders")
            args += [name, 1]
        for column, product_id, quantity in counted.units:
            keys.append(f"{self.prefix}units:{column}")
            args += [product_id, quantity]
        for column, currency, units in counted.money:
            keys.append(f"{self.prefix}money:{column}")
            args += [currency, units]
        try:
            async with self._client() as (_, script):
                return bool(await script(keys=keys, args=args))
        except _ERRORS as exc:
            raise UnavailableError(f"the analytics report store (Redis) failed: {exc}"
                                   ) from exc

    async def report(self) -> SalesReport:
        """Everything counted so far (read in one MULTI: one moment's counts)."""
        names = ([f"{self.prefix}orders"]
                 + [f"{self.prefix}units:{c}" for c in UNIT_COLUMNS]
                 + [f"{self.prefix}money:{c}" for c in MONEY_COLUMNS])
        try:
            async with self._client() as (client, _), client.pipeline(transaction=True) as pipe:
                for name in names:
                    pipe.hgetall(name)
                found = await pipe.execute()
        except _ERRORS as exc:
            raise UnavailableError(f"the analytics report store (Redis) failed: {exc}"
                                   ) from exc
        orders, *rest = ({_text(k): int(v) for k, v in h.items()} for h in found)
        units, money = rest[:len(UNIT_COLUMNS)], rest[len(UNIT_COLUMNS):]
        products = sorted(set().union(*units))
        currencies = sorted(set().union(*money))
        charged, refunded = money
        ordered, cancelled, shipped = units
        return SalesReport.of(
            orders,
            [Revenue(c, major(charged.get(c, 0), c), major(refunded.get(c, 0), c))
             for c in currencies],
            [ProductUnits(p, ordered.get(p, 0), cancelled.get(p, 0), shipped.get(p, 0))
             for p in products])

    async def clear(self) -> None:
        """Forget everything counted (every key under the prefix), e.g. before rebuilding
        the report from the event stream."""
        async with self._client() as (client, _):
            keys = [key async for key in client.scan_iter(match=_glob(self.prefix) + "*")]
            if keys:
                await client.delete(*keys)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _glob(text: str) -> str:
    """``text`` with the characters of a SCAN pattern escaped."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def redacted(url: str) -> str:
    """``url`` without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
