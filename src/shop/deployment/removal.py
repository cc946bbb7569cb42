"""Taking a set away again: what the supervisor made for a plan (its roles and schemas
with their data, its NATS stream, analytics' Redis keys), for tests, benchmarks and anyone
done with a local set. Each part is removed even if another cannot be (a set that failed
to start may have made only some)."""

from __future__ import annotations

import contextlib

import asyncpg

from shop.deployment.plan import Plan
from shop.platform.contexts import CONTEXTS
from shop.platform.ownership import unprovision


async def remove(plan: Plan) -> None:
    """Drop the roles and schemas of ``plan``, delete its stream and its Redis keys."""
    import nats
    from redis.asyncio import Redis

    with contextlib.suppress(OSError, asyncpg.PostgresError):
        await unprovision(plan.admin_dsn, [plan.owner(c) for c in CONTEXTS])
    with contextlib.suppress(Exception):  # nats raises its own errors; none is fatal here
        client = await nats.connect(plan.broker_url, connect_timeout=5,
                                    max_reconnect_attempts=0)
        try:
            await client.jetstream().delete_stream(plan.channel.upper())
        finally:
            await client.close()
    with contextlib.suppress(Exception):
        redis = Redis.from_url(plan.redis_url)
        try:
            keys = [key async for key in redis.scan_iter(match=f"{plan.redis_prefix}*")]
            if keys:
                await redis.delete(*keys)
        finally:
            await redis.aclose()
