"""Query cache: answers kept for a TTL and dropped by the events that change them.

Every entry is tagged (``"account:ACC-001"``); a projection says which tags an event makes
stale (:meth:`Projection.cache_tags`) and the runner invalidates them once the page that
applied the event has committed. Invalidation bumps a *generation* per tag, and an entry
remembers the generations it was computed under, so an answer computed from the old read
model and stored just after the invalidation is still recognised as stale (a plain delete
would let it in for a whole TTL).

Values are JSON (dicts, lists, strings, numbers): both backends store the encoded form, so
a hit is always a fresh copy.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""What :meth:`QueryCache.get` returns for an absent, expired or stale entry."""


class QueryCache(Protocol):
    """Where cached query answers live (in process, Redis, yours)."""

    async def get(self, key: str) -> Any:
        """The cached value, or :data:`MISSING`."""

    async def stamp(self, tags: Sequence[str]) -> list[int]:
        """The current generations of ``tags``: take them *before* computing a value."""

    async def put(self, key: str, value: Any, *, tags: Sequence[str], stamp: Sequence[int],
                  ttl: float) -> None:
        """Keep ``value`` for ``ttl`` seconds, unless ``tags`` move past ``stamp``."""

    async def invalidate(self, tags: Iterable[str]) -> None:
        """Make every entry tagged with one of ``tags`` stale."""


async def cached(cache: QueryCache, key: str, load: Callable[[], Awaitable[Any]], *,
                 tags: Sequence[str], ttl: float) -> Any:
    """The cached answer for ``key``, or ``await load()`` (then cached under ``tags``)."""
    hit = await cache.get(key)
    if hit is not MISSING:
        return hit
    stamp = await cache.stamp(tags)
    value = await load()
    await cache.put(key, value, tags=tags, stamp=stamp, ttl=ttl)
    return value


@dataclass(slots=True)
class _Entry:
    data: bytes
    tags: tuple[str, ...]
    stamp: tuple[int, ...]
    expires: float


class InMemoryCache:
    """A query cache in this process (one worker, tests)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._generations: dict[str, int] = {}

    async def get(self, key: str) -> Any:
        entry = self._entries.get(key)
        if entry is None:
            return MISSING
        if entry.expires <= self._clock() or entry.stamp != tuple(
            self._generations.get(t, 0) for t in entry.tags
        ):
            del self._entries[key]
            return MISSING
        return orjson.loads(entry.data)

    async def stamp(self, tags: Sequence[str]) -> list[int]:
        return [self._generations.get(t, 0) for t in tags]

    async def put(self, key: str, value: Any, *, tags: Sequence[str], stamp: Sequence[int],
                  ttl: float) -> None:
        self._entries[key] = _Entry(orjson.dumps(value), tuple(tags), tuple(stamp),
                                    self._clock() + ttl)

    async def invalidate(self, tags: Iterable[str]) -> None:
        for tag in tags:
            self._generations[tag] = self._generations.get(tag, 0) + 1
