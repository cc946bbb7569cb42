"""The query cache in Redis, shared by every process of an application."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from invariant.domain.errors import ConfigurationError, StoreError
from invariant.extras import needs_extra
from invariant.projections.cache import MISSING

with needs_extra("redis"):
    from redis.asyncio import Redis
    from redis.exceptions import RedisError


class RedisCache:
    """Entries under ``<prefix>q:<key>`` (with their TTL), tag generations under
    ``<prefix>t:<tag>``.

    A tag's generation lives ``max_ttl`` seconds after its last bump, longer than any entry
    stamped before that bump, so a generation never falls back to a value an older entry
    was stamped with.
    """

    def __init__(self, client: Redis, *, prefix: str = "invariant:cache:",
                 max_ttl: float = 3600.0) -> None:
        self._redis = client
        self._prefix = prefix
        self._max_ttl_ms = int(max_ttl * 1000)

    def _tag_keys(self, tags: Iterable[str]) -> list[str]:
        return [f"{self._prefix}t:{t}" for t in tags]

    async def get(self, key: str) -> Any:
        try:
            raw = await self._redis.get(f"{self._prefix}q:{key}")
            if raw is None:
                return MISSING
            entry = orjson.loads(raw)
            tags = entry["t"]
            current = await self._redis.mget(self._tag_keys(tags)) if tags else []
        except RedisError as exc:
            raise StoreError(f"Redis cache read failed: {exc}") from exc
        if [int(g or 0) for g in current] != entry["s"]:
            return MISSING
        return entry["v"]

    async def stamp(self, tags: Sequence[str]) -> list[int]:
        if not tags:
            return []
        try:
            current = await self._redis.mget(self._tag_keys(tags))
        except RedisError as exc:
            raise StoreError(f"Redis cache read failed: {exc}") from exc
        return [int(g or 0) for g in current]

    async def put(self, key: str, value: Any, *, tags: Sequence[str], stamp: Sequence[int],
                  ttl: float) -> None:
        ttl_ms = int(ttl * 1000)
        if not 0 < ttl_ms <= self._max_ttl_ms:
            raise ConfigurationError(
                f"cache TTL {ttl} s must be positive and at most max_ttl "
                f"({self._max_ttl_ms / 1000:g} s) of this RedisCache"
            )
        data = orjson.dumps({"v": value, "t": list(tags), "s": list(stamp)})
        try:
            await self._redis.set(f"{self._prefix}q:{key}", data, px=ttl_ms)
        except RedisError as exc:
            raise StoreError(f"Redis cache write failed: {exc}") from exc

    async def invalidate(self, tags: Iterable[str]) -> None:
        keys = self._tag_keys(dict.fromkeys(tags))
        if not keys:
            return
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for k in keys:
                    pipe.incr(k)
                    pipe.pexpire(k, self._max_ttl_ms)
                await pipe.execute()
        except RedisError as exc:
            raise StoreError(f"Redis cache invalidation failed: {exc}") from exc
