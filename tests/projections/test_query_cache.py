"""The query cache (seed example 70): TTL, and invalidation by the events that change the
cached data, in process and in Redis (against the real server)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from examples.bank.projections import AccountSummary, get_summary
from invariant.domain import ConfigurationError
from invariant.projections import MISSING, InMemoryCache, QueryCache, cached
from tests.conftest import require_server
from tests.projections.conftest import Bank, open_bank

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[QueryCache]:
    if request.param == "memory":
        yield InMemoryCache()
        return
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    from invariant.projections.redis_cache import RedisCache

    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        require_server("Redis", exc)
    prefix = f"test:{uuid.uuid4().hex}:"
    try:
        yield RedisCache(client, prefix=prefix, max_ttl=60)
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_a_value_is_served_from_the_cache_until_its_ttl(cache: QueryCache) -> None:
    loads: list[int] = []

    async def load() -> dict[str, Any]:
        loads.append(1)
        return {"balance": "1300.00", "n": len(loads)}

    first = await cached(cache, "summary:ACC-001", load, tags=["account:ACC-001"], ttl=0.3)
    second = await cached(cache, "summary:ACC-001", load, tags=["account:ACC-001"], ttl=0.3)
    assert first == second == {"balance": "1300.00", "n": 1}  # a hit: loaded once
    await asyncio.sleep(0.4)

    third = await cached(cache, "summary:ACC-001", load, tags=["account:ACC-001"], ttl=0.3)

    assert third == {"balance": "1300.00", "n": 2}  # expired: loaded again


async def test_invalidating_a_tag_drops_only_the_entries_tagged_with_it(
    cache: QueryCache,
) -> None:
    for key, tag in (("a", "account:A"), ("b", "account:B")):
        await cache.put(key, {"key": key}, tags=[tag, "volume"],
                        stamp=await cache.stamp([tag, "volume"]), ttl=30)

    await cache.invalidate(["account:A"])

    assert await cache.get("a") is MISSING
    assert await cache.get("b") == {"key": "b"}
    await cache.invalidate(["volume"])
    assert await cache.get("b") is MISSING


async def test_an_answer_computed_before_an_invalidation_is_never_served(
    cache: QueryCache,
) -> None:
    stamp = await cache.stamp(["account:A"])  # the query starts reading the old read model
    await cache.invalidate(["account:A"])  # an event changes the account meanwhile

    await cache.put("a", {"balance": "old"}, tags=["account:A"], stamp=stamp, ttl=30)

    assert await cache.get("a") is MISSING


async def test_hits_are_copies(cache: QueryCache) -> None:
    await cache.put("k", {"items": [1]}, tags=[], stamp=[], ttl=30)
    hit = await cache.get("k")
    hit["items"].append(2)
    assert await cache.get("k") == {"items": [1]}


async def test_the_runner_invalidates_what_applied_events_change(
    cache: QueryCache, tmp_path: Path
) -> None:
    async with open_bank("sqlite", tmp_path) as bank:
        runner = bank.runner([AccountSummary()], cache=cache)
        await runner.setup()
        await bank.seed_scenario()
        await runner.catch_up()

        async def summary(account: str) -> Any:
            return await cached(cache, f"summary:{account}", lambda: _summary(bank, account),
                                tags=[f"account:{account}"], ttl=30)

        assert (await summary("ACC-001"))["current_balance"] == "1300.00"
        assert (await summary("ACC-002"))["current_balance"] == "2300.00"
        position = await bank.deposit("ACC-001", "100")
        assert (await summary("ACC-001"))["current_balance"] == "1300.00"  # eventual

        await runner.catch_up()
        await runner.wait_until("account_summary", position, timeout=5)

        assert (await summary("ACC-001"))["current_balance"] == "1400.00"
        assert await cache.get("summary:ACC-002") != MISSING  # untouched account stays


async def _summary(bank: Bank, account: str) -> dict[str, Any]:
    view = await get_summary(bank.database, account)
    assert view is not None
    return {k: str(v) if isinstance(v, Decimal) else v
            for k, v in dataclasses.asdict(view).items() if k != "last_activity"}


async def test_redis_refuses_a_ttl_longer_than_its_tag_lifetime() -> None:
    from redis.asyncio import Redis

    from invariant.projections.redis_cache import RedisCache

    client = Redis.from_url(REDIS_URL)
    try:
        with pytest.raises(ConfigurationError, match="at most max_ttl"):
            await RedisCache(client, max_ttl=10).put("k", 1, tags=["t"], stamp=[0], ttl=11)
    finally:
        await client.aclose()
